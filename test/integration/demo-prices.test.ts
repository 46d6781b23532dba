/**
 * `wavehouse demo prices` against the real server: the Twelve Data stand-in's symbols pulled by
 * the connector the demo created over REST, on the wall clock (the service's connectors have no
 * other). Every closed bar the stand-in served is stored exactly once, through a credit error
 * in a 200 body, and the hourly OHLC buckets the demo reads equal those computed here from the
 * stand-in's own bars. The command itself prints a viewer link per symbol and the buckets, keeps
 * its key off the terminal, and stops everything on SIGINT.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findSessions } from '../../src/demo/demo-connectors.ts';
import { hourlyOhlc, hourMs, type OhlcBucket, type SymbolStream, startPricesDemo } from '../../src/demo/prices-demo.ts';
import { type StandInBar, standInSymbols, TwelveDataStandIn } from '../../src/demo/twelvedata-stand-in.ts';
import type { AccessCredential } from '../../src/sdk/types.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { connectorSettings } from '../support/connectors.ts';
import { assertStopsOnSigint, demoKeyKeptSecret, startDemoCommand } from '../support/demo-command.ts';
import { eventually } from '../support/eventually.ts';

const apiKey = 'demoPricesKey42';
const fixed = (key: string): AccessCredential => ({ token: async () => key, renew: async () => null, close: () => undefined });

/** The hour buckets of the bars, as the demo's aggregate must answer them. */
function offlineOhlc(bars: readonly StandInBar[]): OhlcBucket[] {
  const hours = new Map<number, StandInBar[]>();
  for (const bar of bars) {
    const t = Math.floor(bar.startMs / hourMs) * hourMs;
    hours.set(t, [...(hours.get(t) ?? []), bar]);
  }
  return [...hours].map(([t, hour]) => ({
    t,
    bars: hour.length,
    open: Number(hour[0].open),
    high: Math.max(...hour.map((bar) => Number(bar.high))),
    low: Math.min(...hour.map((bar) => Number(bar.low))),
    close: Number(hour.at(-1)!.close),
  }));
}

test('the prices demo stores every closed bar once through a credit error, and its OHLC buckets are right', {
  timeout: 120_000,
}, async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t, connectorSettings());
  const { key } = await createKey(databaseUrl, { name: 'demo', role: 'admin' });
  const request = { credential: fixed(key) };
  const standIn = await TwelveDataStandIn.start({ apiKey });
  t.after(() => standIn.close());
  const symbols = standInSymbols.map((s) => s.symbol);
  const streams = await startPricesDemo({
    baseUrl,
    request,
    standIn,
    apiKey,
    symbols,
    pollIntervalS: 0.05,
    creditsPerMinute: 6_000,
    creditsPerDay: 1e6,
  });
  await eventually(() => findSessions(baseUrl, request, streams).then((all) => assert.ok(all)), { timeoutMs: 15_000 });
  const connector = () => call(`${baseUrl}/api/v1/connectors/${streams[0].connectorId}`, 'GET', bearer(key)).then((a) => a.body);

  /** Every bar the stand-in has closed since the first stored, each stored once with its values; answers the last stored start. */
  const assertAllStoredOnce = async (stream: SymbolStream) => {
    const { body } = await call(`${baseUrl}/api/v1/sessions/${stream.sessionId}/data`, 'GET', bearer(key));
    const stored = body.samples as Array<Record<string, number>>;
    const closed = standIn.bars(stream.symbol, stored[0].t, Date.now());
    assert.deepEqual(
      stored,
      closed.map((bar) => ({
        seq: bar.startMs / 1_000,
        t: bar.startMs,
        ...Object.fromEntries((['open', 'high', 'low', 'close', 'volume'] as const).map((f) => [f, Number(bar[f])])),
      })),
    );
    return stored.at(-1)!.t;
  };
  const backfilled = await eventually(
    async () => {
      const lasts = [];
      for (const stream of streams) lasts.push(await assertAllStoredOnce(stream));
      return Math.min(...lasts);
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );

  // A credit error in a 200 body: the connector fails that poll, waits for the next minute's credits, and reads on.
  standIn.fail('error429');
  await eventually(async () => assert.match((await connector()).lastError ?? '', /Twelve Data answered 429/), { timeoutMs: 10_000 });
  await eventually(
    async () => {
      assert.equal((await connector()).state, 'running');
      for (const stream of streams) assert.ok((await assertAllStoredOnce(stream)) > backfilled, `${stream.symbol}: a bar after the error`);
    },
    { timeoutMs: 80_000, intervalMs: 500 },
  );

  for (const stream of streams) {
    const { body } = await call(`${baseUrl}/api/v1/sessions/${stream.sessionId}/data`, 'GET', bearer(key));
    const stored = body.samples as Array<{ t: number }>;
    const bars = standIn.bars(stream.symbol, stored[0].t, stored.at(-1)!.t + 1);
    assert.equal(bars.length, stored.length);
    assert.deepEqual(await hourlyOhlc(baseUrl, request, stream.sessionId!), offlineOhlc(bars));
  }
});

test('the command prints a viewer link per symbol and the OHLC buckets, and stops everything on SIGINT', { timeout: 90_000 }, async (t) => {
  const { cli, dataDir } = await startDemoCommand(t, ['prices', '--port', '0', '--poll', '0.5']);
  const symbols = standInSymbols.map((s) => s.symbol);
  await eventually(
    () => {
      const named = [...cli.stdout().matchAll(/^viewer\s+\S+\/view\/[0-9a-f-]{36} \((.+)\)$/gm)].map((match) => match[1]);
      assert.deepEqual(named, symbols, cli.stdout() + cli.stderr());
      for (const symbol of symbols)
        assert.match(cli.stdout(), new RegExp(`^${symbol}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:00 UTC  O H L C `, 'm'));
      assert.match(cli.stdout(), /^connector (running|failing)/m);
    },
    { timeoutMs: 50_000, intervalMs: 200 },
  );
  await demoKeyKeptSecret(cli, dataDir);
  await assertStopsOnSigint(cli);
});
