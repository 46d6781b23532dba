/**
 * `wavehouse demo prices`: a Twelve Data stand-in (a real HTTP server on loopback) serving 1min
 * bars of a few symbols, one `twelvedata` connector over them created over the REST API, and
 * each symbol's stream read back as hourly OHLC buckets from the session aggregate.
 *
 * The hour's bar is built from the minute bars' own channels: the first open, the highest
 * high, the lowest low, the last close (`fn=first,max,min,last` over open, high, low, close,
 * each fn's one meaningful channel taken). Over the close channel alone the high and low would
 * be wrong: a minute's high and low lie beyond its open and close, so the closes' extremes
 * understate the hour's range.
 */
import { createConnector } from '../sdk/connectors.ts';
import { apiUrl, type RequestOptions, requestJson } from '../sdk/rest.ts';
import { type DemoStream, deleteOldDemoConnectors } from './demo-connectors.ts';
import type { TwelveDataStandIn } from './twelvedata-stand-in.ts';

export interface PricesDemoOptions {
  baseUrl: string;
  /** connectors:write and sessions:read. */
  request: RequestOptions;
  standIn: TwelveDataStandIn;
  /** The key the stand-in takes. */
  apiKey: string;
  symbols: readonly string[];
  pollIntervalS: number;
  /** The connector's budget: it spaces the polls to fit it (docs/connectors.md). */
  creditsPerMinute: number;
  creditsPerDay: number;
}

export interface SymbolStream extends DemoStream {
  symbol: string;
}

export interface OhlcBucket {
  /** The hour's start, epoch ms. */
  t: number;
  /** Minute bars in it. */
  bars: number;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
}

export const hourMs = 3_600_000;

/**
 * A connector over the symbols. The connectors an earlier run left are deleted first; the
 * symbols' streams stay and are taken over by the new connector, which reads on from them.
 */
export async function startPricesDemo(options: PricesDemoOptions): Promise<SymbolStream[]> {
  const { baseUrl, request, symbols } = options;
  await deleteOldDemoConnectors(baseUrl, request, (old) => {
    const config = old.config as { symbols?: unknown };
    return old.kind === 'twelvedata' && Array.isArray(config.symbols) && config.symbols.some((symbol) => symbols.includes(symbol));
  });
  const connector = await createConnector(
    baseUrl,
    {
      kind: 'twelvedata',
      name: 'prices demo',
      config: {
        baseUrl: options.standIn.baseUrl,
        apiKey: options.apiKey,
        symbols: [...symbols],
        interval: '1min',
        creditsPerMinute: options.creditsPerMinute,
        creditsPerDay: options.creditsPerDay,
      },
      pollIntervalS: options.pollIntervalS,
    },
    request,
  );
  return symbols.map((symbol) => ({ symbol, connectorId: connector.id, key: `twelvedata/${symbol}/1min`, sessionId: null }));
}

type Cells = Record<string, Record<string, number | null>>;

/** The session's hourly OHLC buckets, oldest first, from one aggregate request. */
export async function hourlyOhlc(baseUrl: string, request: RequestOptions, sessionId: string): Promise<OhlcBucket[]> {
  const query = `bucketMs=${hourMs}&fn=first,max,min,last&channels=open,high,low,close`;
  const answer = await requestJson<{ buckets: Array<{ t: number; count: number } & Cells> }>(
    apiUrl(baseUrl, `/sessions/${encodeURIComponent(sessionId)}/aggregate?${query}`),
    { method: 'GET' },
    200,
    request,
  );
  return answer.buckets.map((bucket) => ({
    t: bucket.t,
    bars: bucket.count,
    open: bucket.open.first,
    high: bucket.high.max,
    low: bucket.low.min,
    close: bucket.close.last,
  }));
}
