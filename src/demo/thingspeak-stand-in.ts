/**
 * A ThingSpeak stand-in: a real HTTP server on loopback serving `GET
 * /channels/{id}/feeds.json` as ThingSpeak does (the newest `results` entries of the
 * `start`..`end` window, whole seconds, UTC), with knobs for what a real upstream does on a bad
 * day. A fault is queued for the next requests (`fail`), so a test says exactly what the
 * connector meets, in order. `wavehouse demo iot` runs it too, with live channels: a channel
 * gains an entry every `everyMs` of the stand-in's clock, which a test makes run fast.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerFault, isTransportFault, jsonHeaders, type TransportFault } from './upstream-faults.ts';

export type Fault = TransportFault | 'status429' | 'minusOne' | 'zero' | 'wrongTypes' | 'shuffledDuplicates';

export interface Entry {
  readonly entryId: number;
  readonly t: number;
  readonly values: ReadonlyArray<string | null>;
}

/** A channel that gains an entry every `everyMs` of the clock, from when it is added. */
export interface LiveChannel {
  readonly fields: Array<string | null>;
  readonly everyMs: number;
  readonly values: (entryId: number) => Array<string | null>;
  /** More members of the feed's `channel` object, as a real channel has them (name, description, latitude...). */
  readonly metadata: Record<string, string>;
}

interface Channel {
  fields: Array<string | null>;
  readKey: string | null;
  entries: Entry[];
  live?: { spec: LiveChannel; fromMs: number };
}

export interface StandInOptions {
  /** Epoch ms now; live channels add entries by it. Default Date.now. */
  clock?: () => number;
  /** Default 0: any free port, on 127.0.0.1. */
  port?: number;
}

/** Entry times start here, a second apart (plus what a test adds). */
const baseMs = Date.UTC(2024, 4, 1, 10, 0, 0);

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000', '');
}

/** `YYYY-MM-DD HH:MM:SS` (UTC) in ms, as ThingSpeak reads start and end. */
function readTime(text: string | null): number | null {
  if (text === null) return null;
  const ms = Date.parse(`${text.replace(' ', 'T')}Z`);
  return Number.isFinite(ms) ? ms : null;
}

export class ThingSpeakStandIn {
  readonly channels = new Map<number, Channel>();
  /** Every request's URL (path and query), in order. */
  readonly requests: string[] = [];
  private readonly faults: Fault[] = [];
  private readonly server = http.createServer((request, response) => this.answer(request, response));
  private readonly clock: () => number;
  baseUrl = '';

  private constructor(clock: () => number) {
    this.clock = clock;
  }

  static async start({ clock = Date.now, port = 0 }: StandInOptions = {}): Promise<ThingSpeakStandIn> {
    const standIn = new ThingSpeakStandIn(clock);
    standIn.server.listen(port, '127.0.0.1');
    await once(standIn.server, 'listening');
    standIn.baseUrl = `http://127.0.0.1:${(standIn.server.address() as AddressInfo).port}`;
    return standIn;
  }

  addChannel(id: number, fields: Array<string | null>, readKey: string | null = null): void {
    this.channels.set(id, { fields, readKey, entries: [] });
  }

  /** A channel whose first entry comes within `spec.everyMs` of now, by the clock. */
  addLiveChannel(id: number, spec: LiveChannel): void {
    this.channels.set(id, { fields: spec.fields, readKey: null, entries: [], live: { spec, fromMs: this.clock() } });
  }

  /** The channel's entries as of the clock now. */
  entries(id: number): readonly Entry[] {
    const channel = this.channels.get(id);
    if (channel === undefined) return [];
    this.catchUp(channel);
    return channel.entries;
  }

  /** Appends `count` entries, a second apart; values are `entryId * (field index + 1)`, field 2 blank every third entry. */
  addEntries(id: number, count: number): void {
    const channel = this.channels.get(id)!;
    for (let i = 0; i < count; i++) {
      const entryId = channel.entries.length + 1;
      const values = channel.fields.map((name, f) => (name === null || (f === 1 && entryId % 3 === 0) ? null : String(entryId * (f + 1))));
      channel.entries.push({ entryId, t: baseMs + entryId * 1_000, values });
    }
  }

  /** The next requests meet these faults, one each, in order. */
  fail(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  get pendingFaults(): number {
    return this.faults.length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
  }

  /**
   * Adds a live channel's entries that have come due. Entry ids count `everyMs` periods since
   * the epoch, as a channel that has long been publishing has large ids: a demo restarted on
   * the same database reads on from the entries its streams hold, as it would from ThingSpeak.
   * Their t is in whole seconds, as ThingSpeak's created_at.
   */
  private catchUp(channel: Channel): void {
    if (channel.live === undefined) return;
    const { spec, fromMs } = channel.live;
    const first = Math.floor(fromMs / spec.everyMs) + 1;
    const due = Math.floor(this.clock() / spec.everyMs);
    for (let entryId = (channel.entries.at(-1)?.entryId ?? first - 1) + 1; entryId <= due; entryId++) {
      channel.entries.push({ entryId, t: Math.floor((entryId * spec.everyMs) / 1_000) * 1_000, values: spec.values(entryId) });
    }
  }

  private feed(id: number, channel: Channel, url: URL): object {
    const results = Math.min(Number(url.searchParams.get('results') ?? 100), 8_000);
    const start = readTime(url.searchParams.get('start'));
    const end = readTime(url.searchParams.get('end'));
    const inWindow = channel.entries.filter((e) => (start === null || e.t >= start) && (end === null || e.t < end + 1_000));
    const named = Object.fromEntries(channel.fields.flatMap((name, f) => (name === null ? [] : [[`field${f + 1}`, name]])));
    const createdMs = channel.live?.fromMs ?? baseMs;
    const updated = channel.entries.at(-1)?.t ?? createdMs;
    return {
      channel: {
        id,
        name: `channel ${id}`,
        ...channel.live?.spec.metadata,
        created_at: iso(Math.floor(createdMs / 1_000) * 1_000),
        updated_at: iso(updated),
        last_entry_id: channel.entries.at(-1)?.entryId ?? 0,
        ...named,
      },
      feeds: inWindow.slice(-results).map((e) => ({
        created_at: iso(e.t),
        entry_id: e.entryId,
        ...Object.fromEntries(e.values.flatMap((v, f) => (channel.fields[f] === null ? [] : [[`field${f + 1}`, v]]))),
      })),
    };
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    this.requests.push(request.url ?? '');
    const url = new URL(request.url ?? '/', this.baseUrl);
    const match = /^\/channels\/(\d+)\/feeds\.json$/.exec(url.pathname);
    const channel = match ? this.channels.get(Number(match[1])) : undefined;
    if (!match || !channel) {
      response.writeHead(404).end('not found');
      return;
    }
    this.catchUp(channel);
    if (channel.readKey !== null && url.searchParams.get('api_key') !== channel.readKey) {
      response.writeHead(200, { 'content-type': 'application/json' }).end('-1');
      return;
    }
    const body = JSON.stringify(this.feed(Number(match[1]), channel, url));
    const fault = this.faults.shift();
    const json = jsonHeaders;
    if (isTransportFault(fault)) {
      answerFault(fault, request, response, body, (pad) => `{"channel":{},"feeds":[],"pad":"${pad}"}`);
      return;
    }
    switch (fault) {
      case undefined:
        response.writeHead(200, json).end(body);
        return;
      case 'status429':
        response.writeHead(429, { 'retry-after': '0' }).end('slow down');
        return;
      case 'minusOne':
        response.writeHead(200, json).end('-1');
        return;
      case 'zero':
        response.writeHead(200, json).end('0');
        return;
      case 'wrongTypes':
        response
          .writeHead(200, json)
          .end(body.replace(/"field1":"(\d+)"/g, '"field1":{"v":$1}').replace(/"field3":"(\d+)"/g, '"field3":"n/a"'));
        return;
      case 'shuffledDuplicates': {
        const parsed = JSON.parse(body) as { feeds: unknown[] };
        parsed.feeds = [...parsed.feeds, ...parsed.feeds].reverse();
        response.writeHead(200, json).end(JSON.stringify(parsed));
        return;
      }
    }
  }
}
