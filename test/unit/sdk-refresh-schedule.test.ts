import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessCredential, refreshDelayMs } from '../../src/sdk/access-credentials.ts';

const s = 1_000;
const minute = 60 * s;

test('a token is refreshed at 80% of its lifetime or a minute before it expires, whichever is sooner', () => {
  assert.equal(refreshDelayMs(15 * minute), 12 * minute, '15 minutes: 3 minutes to spare');
  assert.equal(refreshDelayMs(60 * minute), 48 * minute);
  assert.equal(refreshDelayMs(200 * s), 140 * s, 'short enough that the minute is sooner');
  assert.equal(refreshDelayMs(5 * minute), 4 * minute, 'where the two agree');
});

test('a token shorter than two minutes is refreshed at half its life, never sooner than a second', () => {
  assert.equal(refreshDelayMs(100 * s), 50 * s);
  assert.equal(refreshDelayMs(minute), 30 * s);
  assert.equal(refreshDelayMs(2 * s), s);
  for (const lifetimeMs of [1_500, 0, -5 * s, Number.NaN]) assert.equal(refreshDelayMs(lifetimeMs), s, `lifetime ${lifetimeMs}`);
});

test('a token that lives longer than setTimeout can count is refreshed daily, not at once', () => {
  for (const lifetimeMs of [60 * 24 * minute * 30, Number.POSITIVE_INFINITY]) assert.equal(refreshDelayMs(lifetimeMs), 24 * 60 * minute);
});

test('the schedule only ever moves forward with the lifetime', () => {
  let previous = 0;
  for (let lifetimeMs = 0; lifetimeMs <= 2 * 60 * minute; lifetimeMs += 250) {
    const delayMs = refreshDelayMs(lifetimeMs);
    assert.ok(delayMs >= previous, `${lifetimeMs} ms: ${delayMs} < ${previous}`);
    assert.ok(delayMs < lifetimeMs || delayMs === s, `${lifetimeMs} ms: due at ${delayMs}, not before expiry`);
    previous = delayMs;
  }
});

test('a credential needs a non-empty key or token', () => {
  assert.throws(() => accessCredential({ baseUrl: 'http://127.0.0.1:1', apiKey: '' }), TypeError);
  assert.throws(() => accessCredential({ accessToken: '' }), TypeError);
});

test('a fixed token is what it gives, and has no newer one when refused', async () => {
  const credential = accessCredential({ accessToken: 'eyJ.a.b' });
  assert.equal(await credential.token(), 'eyJ.a.b');
  assert.equal(await credential.renew('eyJ.a.b'), null);
});
