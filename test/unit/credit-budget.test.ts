/**
 * The credit budget: whatever the sequence of requests and however the ledger goes through
 * storage (JSON) between them, what it lets through never passes the credits of any 60 s or
 * of any UTC day, and a request it refuses is let through at the time it names.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { CreditTerms } from '../../src/connectors/connector-kind.ts';
import { creditsView, paceMs, readLedger, spend } from '../../src/connectors/credit-budget.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const terms = (perMinute: number, perDay: number): CreditTerms => ({ perMinute, perDay, perPoll: 2, cost: () => 1 });

test('never lets more through than the budget of any 60 s or UTC day, and lets through at the time a refusal names', () => {
  const requests = fc.array(fc.tuple(fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: 1, max: 3 })), { maxLength: 120 });
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 10 }), fc.integer({ min: 3, max: 40 }), requests, (perMinute, perDay, gaps) => {
      const budget = terms(perMinute, perDay);
      let stored: unknown = null;
      let now = Date.UTC(2024, 4, 1, 23, 50);
      const paid: Array<[number, number]> = [];
      for (const [gap, cost] of gaps) {
        now += gap;
        const result = spend(readLedger(JSON.parse(JSON.stringify(stored)), now), budget, cost, now);
        if (result.ok) {
          stored = result.ledger;
          paid.push([now, cost]);
          continue;
        }
        assert.ok(result.availableAtMs > now);
        const later = spend(readLedger(stored, result.availableAtMs), budget, cost, result.availableAtMs);
        assert.ok(later.ok, `refused until ${result.availableAtMs}, and refused then`);
      }
      for (const [at] of paid) {
        const inMinute = paid.filter(([t]) => t >= at && t < at + 60_000).reduce((total, [, c]) => total + c, 0);
        assert.ok(inMinute <= perMinute, `${inMinute} credits in the 60 s from ${at}`);
        const day = new Date(at).toISOString().slice(0, 10);
        const inDay = paid.filter(([t]) => new Date(t).toISOString().slice(0, 10) === day).reduce((total, [, c]) => total + c, 0);
        assert.ok(inDay <= perDay, `${inDay} credits on ${day}`);
      }
    }),
    fuzzParameters(300),
  );
});

test('starts a new UTC day from nothing, keeps a day written by a clock ahead, and reads a garbled ledger as empty', () => {
  const budget = terms(8, 800);
  const night = Date.UTC(2024, 4, 1, 23, 59, 30);
  const spent = spend(readLedger(null, night), budget, 1, night);
  assert.ok(spent.ok);
  assert.deepEqual(creditsView(budget, spent.ledger, night + 1_000), { perMinute: 8, perDay: 800, spentLastMinute: 1, spentToday: 1 });
  assert.deepEqual(creditsView(budget, spent.ledger, night + 61_000), { perMinute: 8, perDay: 800, spentLastMinute: 0, spentToday: 0 });
  assert.equal(readLedger(spent.ledger, night - 86_400_000).spentToday, 1);
  assert.deepEqual(readLedger({ day: 7, spentToday: 'x', recent: [[1, 'a'], 'b'] }, night), {
    day: '2024-05-01',
    spentToday: 0,
    recent: [],
  });
  const dayOver = spend({ day: '2024-05-01', spentToday: 800, recent: [] }, budget, 1, night);
  assert.deepEqual(dayOver, { ok: false, availableAtMs: Date.UTC(2024, 4, 2) });
});

test('spaces polls so that a poll of every stream fits the minute and the day', () => {
  assert.equal(paceMs(terms(8, 800)), 2 * 108_000);
  assert.equal(paceMs(terms(1, 1_000_000)), 2 * 60_000);
});
