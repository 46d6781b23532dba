/**
 * The `twelvedata` kind: a stream per symbol keyed `twelvedata/<symbol>/<interval>`, channels
 * open, high, low, close, volume (nullable), `seq` = a bar's start in epoch seconds, `t` the same
 * in ms. Only closed bars are stored (a bar whose start + interval is after now is still open,
 * and its values still move), so a bar's values are final when it is stored once.
 *
 * Reading from the cursor: a new stream asks for the last 31 bars and keeps the closed ones of
 * the last 30 intervals; then each poll asks for as many bars as intervals have passed since
 * the stored lastSeq, and one more. Twelve Data answers the newest `outputsize` bars, cut at
 * `start_date` (a lower bound only: the UTC date the day before lastSeq, which is on or before
 * lastSeq's date in any exchange's time zone), so the last stored bar comes again and is dropped
 * as a duplicate. Past 5,000 intervals (Twelve Data's cap) the oldest missed bars are not read:
 * docs/connectors.md says so.
 *
 * Every request costs a credit per symbol in it (credit-budget.ts keeps the budget).
 */
import type { TwelveDataConfig } from '../contract/connector-schemas.ts';
import type { ConnectorKind, PollOutcome, StreamSpec, UpstreamRecord } from './connector-kind.ts';
import { barFields, parseSeries } from './twelvedata-series.ts';
import { UpstreamError } from './upstream-error.ts';

/** Each interval's length in seconds. */
export const intervalSeconds: Record<TwelveDataConfig['interval'], number> = {
  '1min': 60,
  '5min': 300,
  '15min': 900,
  '30min': 1_800,
  '45min': 2_700,
  '1h': 3_600,
  '2h': 7_200,
  '4h': 14_400,
  '1day': 86_400,
};

/** A new stream starts with the bars closed in this many intervals. */
export const backfillIntervals = 30;
/** Twelve Data's cap on outputsize. */
const maxOutputSize = 5_000;
const minuteMs = 60_000;

const defaultCredits = { perMinute: 8, perDay: 800 };

const spec = (key: string): StreamSpec => ({
  key,
  channels: [...barFields],
  mapping: barFields.map((field) => ({ channel: field, field, name: field })),
});

function seriesUrl(config: TwelveDataConfig, symbol: string, outputSize: number, startDate: string | null): URL {
  const query = [`symbol=${encodeURIComponent(symbol)}`, `interval=${config.interval}`, `outputsize=${outputSize}`];
  if (startDate !== null) query.push(`start_date=${startDate}`);
  query.push(`apikey=${encodeURIComponent(config.apiKey)}`);
  return new URL(`${config.baseUrl.replace(/\/+$/, '')}/time_series?${query.join('&')}`);
}

export const twelveData: ConnectorKind<TwelveDataConfig, 'twelvedata'> = {
  kind: 'twelvedata',
  secretKeys: ['apiKey'],
  streamKeys: (config) => config.symbols.map((symbol) => `twelvedata/${symbol}/${config.interval}`),
  baseUrl: (config) => config.baseUrl,
  credits: (config) => ({
    perMinute: config.creditsPerMinute ?? defaultCredits.perMinute,
    perDay: config.creditsPerDay ?? defaultCredits.perDay,
    perPoll: config.symbols.length,
    cost: (url) => (url.searchParams.get('symbol') ?? '').split(',').length,
  }),

  async poll(config, streamKey, cursor, { fetch, nowMs }): Promise<PollOutcome> {
    const symbol = streamKey.slice('twelvedata/'.length, -(config.interval.length + 1));
    const intervalS = intervalSeconds[config.interval];
    const nowS = Math.floor(nowMs / 1_000);
    const { lastSeq } = cursor;
    const url =
      lastSeq === null
        ? seriesUrl(config, symbol, backfillIntervals + 1, null)
        : seriesUrl(
            config,
            symbol,
            Math.min(maxOutputSize, Math.max(1, Math.ceil((nowS - lastSeq) / intervalS)) + 1),
            new Date((lastSeq - 86_400) * 1_000).toISOString().slice(0, 10),
          );
    const parsed = parseSeries(await fetch(url), config.apiKey);
    if (!parsed.ok) {
      // Twelve Data's minute credits come back on the minute: a refusal for them is not asked again before.
      throw new UpstreamError(parsed.message, false, parsed.code === 429 ? minuteMs - (nowMs % minuteMs) : null);
    }
    const after = lastSeq ?? nowS - (backfillIntervals + 1) * intervalS;
    const closed = parsed.series.bars
      .filter((bar) => bar.start > after && bar.start + intervalS <= nowS)
      .sort((a, b) => a.start - b.start)
      .filter((bar, i, bars) => i === 0 || bar.start !== bars[i - 1].start);
    const records: UpstreamRecord[] = closed.map((bar) => ({ seq: bar.start, t: bar.start * 1_000, values: bar.values }));
    return { spec: spec(streamKey), records, discards: parsed.series.discards, more: false };
  },
};
