/**
 * A Twelve Data stand-in: a real HTTP server on loopback serving `GET /time_series` as Twelve
 * Data does (values newest first as strings, datetimes the wall time of the symbol's exchange,
 * errors as `{"code", "message", "status": "error"}` with HTTP 200), for the demo and the tests.
 *
 * Bars are a seeded random walk of 1min bars (the only interval it serves) from `originMs`, the
 * same for the same seed; a new bar starts each minute of the stand-in's clock, which a test may
 * move (`clock`). The bar under way is served as Twelve Data serves it, its
 * values still moving: a client that stores it stores values that change.
 *
 * It counts every request and the credits it costs (one per symbol, whatever it answers), may
 * enforce a budget as Twelve Data does (a 429 in a 200 body), and meets the faults a test
 * queues (`fail`), one per request, in order.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerFault, isTransportFault, jsonHeaders, type TransportFault } from './upstream-faults.ts';

export type TwelveDataFault = TransportFault | 'error429' | 'badKey' | 'wrongTypes' | 'badDatetimes';

export interface StandInSymbol {
  readonly symbol: string;
  /** The exchange's IANA time zone: datetimes are written in it. */
  readonly timezone: string;
  /** Where the walk starts. */
  readonly price: number;
}

export interface TwelveDataStandInOptions {
  readonly apiKey: string;
  readonly symbols?: readonly StandInSymbol[];
  readonly seed?: number;
  /** The stand-in's now, epoch ms; the wall clock unless a test moves it. */
  readonly clock?: () => number;
  /** The first bar's start; a day before the clock's start unless set. */
  readonly originMs?: number;
  /** A budget it enforces, as Twelve Data's plans do; none unless set. */
  readonly creditsPerMinute?: number;
  readonly creditsPerDay?: number;
}

export interface StandInRequest {
  /** Wall-clock epoch ms of its arrival. */
  readonly atMs: number;
  /** Path and query. */
  readonly url: string;
  readonly credits: number;
}

/** One bar as the stand-in serves it: what Twelve Data's body holds, the datetime aside. */
export interface StandInBar {
  readonly startMs: number;
  readonly open: string;
  readonly high: string;
  readonly low: string;
  readonly close: string;
  readonly volume: string;
}

export const standInSymbols: readonly StandInSymbol[] = [
  { symbol: 'AAPL', timezone: 'America/New_York', price: 190 },
  { symbol: 'EUR/USD', timezone: 'UTC', price: 1.08 },
  { symbol: 'BTC/USD', timezone: 'UTC', price: 64_000 },
];

const minuteMs = 60_000;

/** A uniform number in [0, 1) for (seed, text, n): a small integer hash (mulberry32's mix), so the walk needs no stored state to replay. */
function uniform(seed: number, text: string, n: number): number {
  let h = seed ^ n;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), h | 1);
  h ^= h + Math.imul(h ^ (h >>> 7), h | 61);
  return ((h ^ (h >>> 14)) >>> 0) / 2 ** 32;
}

export class TwelveDataStandIn {
  readonly requests: StandInRequest[] = [];
  baseUrl = '';
  private readonly faults: TwelveDataFault[] = [];
  private readonly closes = new Map<string, number[]>();
  private readonly symbols: ReadonlyMap<string, StandInSymbol>;
  private readonly clock: () => number;
  private readonly originMs: number;
  private readonly seed: number;
  private readonly server = http.createServer((request, response) => this.answer(request, response));

  private constructor(private readonly options: TwelveDataStandInOptions) {
    this.symbols = new Map((options.symbols ?? standInSymbols).map((s) => [s.symbol, s]));
    this.clock = options.clock ?? Date.now;
    this.seed = options.seed ?? 1;
    this.originMs = options.originMs ?? Math.floor(this.clock() / minuteMs) * minuteMs - 1_440 * minuteMs;
  }

  static async start(options: TwelveDataStandInOptions): Promise<TwelveDataStandIn> {
    const standIn = new TwelveDataStandIn(options);
    standIn.server.listen(0, '127.0.0.1');
    await once(standIn.server, 'listening');
    standIn.baseUrl = `http://127.0.0.1:${(standIn.server.address() as AddressInfo).port}`;
    return standIn;
  }

  /** The next requests meet these faults, one each, in order. */
  fail(...faults: TwelveDataFault[]): void {
    this.faults.push(...faults);
  }

  get pendingFaults(): number {
    return this.faults.length;
  }

  /** The closed bars of `symbol` whose start is in [fromMs, toMs), oldest first, as served. */
  bars(symbol: string, fromMs: number, toMs: number): StandInBar[] {
    const bars: StandInBar[] = [];
    const first = this.originMs + Math.max(0, Math.ceil((fromMs - this.originMs) / minuteMs)) * minuteMs;
    for (let start = first; start < toMs && start + minuteMs <= this.clock(); start += minuteMs) bars.push(this.bar(symbol, start));
    return bars;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
  }

  /** The walk's close at the end of minute `n` after the origin. */
  private walk(symbol: string, n: number): number {
    let closes = this.closes.get(symbol);
    if (closes === undefined) {
      closes = [this.symbols.get(symbol)?.price ?? 100];
      this.closes.set(symbol, closes);
    }
    for (let k = closes.length; k <= n + 1; k++) closes.push(closes[k - 1] * (1 + (uniform(this.seed, symbol, k) - 0.5) / 500));
    return closes[n + 1];
  }

  /** The bar from `startMs`, as far as the clock has gone into it. */
  private bar(symbol: string, startMs: number): StandInBar {
    const n = (startMs - this.originMs) / minuteMs;
    const fraction = Math.max(0, Math.min(1, (this.clock() - startMs) / minuteMs));
    const open = this.walk(symbol, n - 1);
    const close = open + (this.walk(symbol, n) - open) * fraction;
    const spread = (uniform(this.seed + 1, symbol, n) * Math.abs(close - open) + open / 10_000) * fraction;
    const text = (value: number) => value.toFixed(5);
    return {
      startMs,
      open: text(open),
      high: text(Math.max(open, close) + spread),
      low: text(Math.min(open, close) - spread),
      close: text(close),
      volume: String(Math.floor(uniform(this.seed + 2, symbol, n) * 10_000 * fraction)),
    };
  }

  private series(found: StandInSymbol, url: URL): object {
    const local = localFormat(found.timezone);
    const start = url.searchParams.get('start_date');
    const end = url.searchParams.get('end_date');
    const dated = start !== null || end !== null;
    const size = Math.min(5_000, Math.max(1, Number(url.searchParams.get('outputsize') ?? (dated ? 5_000 : 30)) || 30));
    const values: object[] = [];
    const now = this.clock();
    const newest = this.originMs + Math.floor((now - this.originMs) / minuteMs) * minuteMs;
    for (let at = newest; at >= this.originMs && values.length < size; at -= minuteMs) {
      const datetime = local(at);
      // Wall times compare as text, a date before any time of its day: what Twelve Data's bounds do, a DST fall-back aside.
      if (start !== null && datetime < start) break;
      if (end !== null && datetime > end) continue;
      const { startMs: _, ...bar } = this.bar(found.symbol, at);
      values.push({ datetime, ...bar });
    }
    return {
      meta: {
        symbol: found.symbol,
        interval: '1min',
        currency: 'USD',
        exchange_timezone: found.timezone,
        exchange: 'STANDIN',
        type: 'Demo',
      },
      values,
      status: 'ok',
    };
  }

  /** The error Twelve Data would answer, if any: a key, a symbol, an interval, the budget. */
  private refusal(url: URL, credits: number): object | null {
    const error = (code: number, message: string) => ({ code, message, status: 'error' });
    if (url.searchParams.get('apikey') !== this.options.apiKey) {
      return error(401, '**apikey** parameter is incorrect or not specified.');
    }
    const spent = (sinceMs: number) => this.requests.filter((r) => r.atMs > sinceMs).reduce((total, r) => total + r.credits, 0);
    const dayStart = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    if (this.options.creditsPerMinute !== undefined && spent(Date.now() - minuteMs) > this.options.creditsPerMinute) {
      return error(429, `You have run out of API credits for the current minute. ${credits} API credits were used.`);
    }
    if (this.options.creditsPerDay !== undefined && spent(dayStart - 1) > this.options.creditsPerDay) {
      return error(429, 'You have run out of API credits for the day.');
    }
    if (url.searchParams.get('interval') !== '1min') return error(400, '**interval**: the stand-in serves 1min bars only.');
    if (!this.symbols.has(url.searchParams.get('symbol') ?? '')) return error(404, '**symbol** not found.');
    return null;
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', this.baseUrl);
    const credits = (url.searchParams.get('symbol') ?? '').split(',').length;
    this.requests.push({ atMs: Date.now(), url: request.url ?? '', credits });
    if (url.pathname !== '/time_series') {
      response.writeHead(404).end('not found');
      return;
    }
    const json = jsonHeaders;
    const refusal = this.refusal(url, credits);
    const found = this.symbols.get(url.searchParams.get('symbol') ?? '');
    const body = JSON.stringify(refusal ?? (found && this.series(found, url)));
    const fault = this.faults.shift();
    if (isTransportFault(fault)) {
      answerFault(fault, request, response, body, (pad) => `{"meta":{},"values":[],"status":"ok","pad":"${pad}"}`);
      return;
    }
    switch (fault) {
      case undefined:
        response.writeHead(200, json).end(body);
        return;
      case 'error429':
        response
          .writeHead(200, json)
          .end('{"code":429,"message":"You have run out of API credits for the current minute.","status":"error"}');
        return;
      case 'badKey':
        // As a careless upstream might: the key it was sent, in its message.
        response
          .writeHead(200, json)
          .end(JSON.stringify({ code: 401, message: `apikey ${url.searchParams.get('apikey')} is not valid`, status: 'error' }));
        return;
      case 'wrongTypes':
        response.writeHead(200, json).end(body.replace(/"open":"[^"]*"/g, '"open":"n/a"').replace(/"volume":"[^"]*"/g, '"volume":{"v":1}'));
        return;
      case 'badDatetimes':
        response.writeHead(200, json).end(body.replace(/"datetime":"[^"]*"/g, '"datetime":"yesterday"'));
        return;
    }
  }
}

/** Epoch ms as the exchange's wall time, `YYYY-MM-DD HH:MM:SS`. */
function localFormat(zone: string): (ms: number) => string {
  const format = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  return (ms) => {
    const part = Object.fromEntries(format.formatToParts(new Date(ms)).map(({ type, value }) => [type, value]));
    return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second}`;
  };
}
