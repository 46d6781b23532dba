/**
 * The `twelvedata` kind's polls against the stand-in with a clock the test moves: a New York
 * symbol read across the spring-forward change, poll after poll, every closed bar once, in
 * order, with the stand-in's values, and never the bar under way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UpstreamRecord } from '../../src/connectors/connector-kind.ts';
import { twelveData } from '../../src/connectors/twelvedata.ts';
import { TwelveDataStandIn } from '../../src/demo/twelvedata-stand-in.ts';

test('reads every closed bar once across polls and a DST change, and never the bar under way', async (t) => {
  // 06:30Z is 01:30 EST; New York springs forward at 07:00Z.
  let clockMs = Date.UTC(2024, 2, 10, 6, 30, 20);
  const standIn = await TwelveDataStandIn.start({ apiKey: 'KEY1', clock: () => clockMs, originMs: Date.UTC(2024, 2, 10, 5) });
  t.after(() => standIn.close());
  const config = { baseUrl: standIn.baseUrl, apiKey: 'KEY1', symbols: ['AAPL'], interval: '1min' as const };
  const fetch = async (url: URL) => (await globalThis.fetch(url)).text();
  const stored: UpstreamRecord[] = [];
  // Uneven steps, some inside one minute: polls overlap what is stored, and some find nothing new.
  for (const stepS of [0, 7, 50, 61, 300, 1, 1_200, 59, 600]) {
    clockMs += stepS * 1_000;
    const lastSeq = stored.at(-1)?.seq ?? null;
    const outcome = await twelveData.poll(config, 'twelvedata/AAPL/1min', { lastSeq, lastT: null }, { fetch, nowMs: clockMs });
    assert.deepEqual(outcome.spec.channels, ['open', 'high', 'low', 'close', 'volume']);
    for (const record of outcome.records) {
      assert.ok(record.seq > (stored.at(-1)?.seq ?? 0), 'ascending, above the cursor');
      assert.ok(record.seq + 60 <= clockMs / 1_000, 'closed');
    }
    stored.push(...outcome.records);
  }
  // The first poll took the bars closed in the last 30 minutes, from 06:00Z; the last is the one before the clock's minute.
  const bars = standIn.bars('AAPL', Date.UTC(2024, 2, 10, 6, 0), clockMs);
  assert.deepEqual(
    stored,
    bars.map((bar) => ({
      seq: bar.startMs / 1_000,
      t: bar.startMs,
      values: [bar.open, bar.high, bar.low, bar.close, bar.volume].map(Number),
    })),
  );
  assert.equal(stored.at(-1)?.seq, Math.floor(clockMs / 60_000) * 60 - 60);
  const crossing = stored.findIndex((record) => record.t === Date.UTC(2024, 2, 10, 7));
  assert.ok(crossing > 0 && stored[crossing].seq - stored[crossing - 1].seq === 60, 'one minute apart across the change');
  assert.ok(standIn.requests.every((request) => request.url.includes('apikey=KEY1') && request.credits === 1));
});
