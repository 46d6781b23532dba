/** Real WebSocket and HTTP clients for tests, recording what the server sends. */
import WebSocket from 'ws';
import { eventually } from './eventually.ts';

export interface CreatedSession {
  sessionId: string;
  ingestToken: string;
  websocketUrl: string;
  viewerUrl: string;
  channels: string[];
  [key: string]: unknown;
}

export async function createSession(baseUrl: string, body?: unknown): Promise<CreatedSession> {
  const response = await fetch(`${baseUrl}/api/v1/sessions`, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as CreatedSession;
}

/** A sample of a nullable session: null where there is no reading. */
export type NullableSample = { seq: number; t: number } & Record<string, number | null>;

/** Stores `samples` through HTTP ingest with the session's ingest token, `perRequest` a request. */
export async function storeSamples(baseUrl: string, session: CreatedSession, samples: NullableSample[], perRequest = 1_000): Promise<void> {
  for (let i = 0; i < samples.length; i += perRequest) {
    const response = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/samples`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session.ingestToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ samples: samples.slice(i, i + perRequest) }),
    });
    if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  }
}

export async function endSession(baseUrl: string, sessionId: string, token: string | null) {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/end`, {
    method: 'POST',
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export interface Sample {
  seq: number;
  t: number;
  [channel: string]: number;
}

export async function getData(baseUrl: string, sessionId: string, query = ''): Promise<{ samples: Sample[]; nextFromSeq: number | null }> {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data${query}`);
  if (response.status !== 200) throw new Error(`data answered ${response.status}`);
  return (await response.json()) as { samples: Sample[]; nextFromSeq: number | null };
}

export const dataMediaTypes = { json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv' } as const;
export type DataFormat = keyof typeof dataMediaTypes;

/** The samples of a /data body in `format` (and nextFromSeq, from a JSON body), each line's form checked. */
export function parseDataBody(
  format: DataFormat,
  body: string,
  channels: readonly string[],
): { samples: Sample[]; nextFromSeq?: number | null } {
  if (format === 'json') return JSON.parse(body);
  const lines = body.split('\n');
  if (lines.pop() !== '') throw new Error('the body does not end with a newline');
  if (format === 'ndjson') return { samples: lines.map((line) => JSON.parse(line)) };
  const header = lines.shift();
  if (header !== ['seq', 't', ...channels].join(',')) throw new Error(`CSV header ${header}`);
  return {
    samples: lines.map((line) => {
      const [seq, t, ...values] = line.split(',').map(Number);
      return { seq, t, ...Object.fromEntries(channels.map((name, c) => [name, values[c]])) };
    }),
  };
}

export interface Closed {
  code: number;
  reason: string;
}

/** A socket that records every text message as parsed JSON, and how it closed. */
export class RecordingSocket {
  // biome-ignore lint/suspicious/noExplicitAny: frames as the server sent them, each test reads the fields it expects
  readonly messages: Array<Record<string, any>> = [];
  closed: Closed | null = null;
  readonly socket: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.socket = new WebSocket(url, { headers });
    this.socket.on('message', (data, isBinary) => {
      if (!isBinary) this.messages.push(JSON.parse(data.toString()));
    });
    this.socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    this.socket.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  ofType(type: string) {
    return this.messages.filter((message) => message.type === type);
  }

  /** The highest seq acked so far, or null. */
  get lastAck(): number | null {
    const acks = this.ofType('ack');
    return acks.length === 0 ? null : Math.max(...acks.map((ack) => ack.seq as number));
  }

  /** Every sample received in samples_batch frames, in order. */
  get samples(): Sample[] {
    return this.ofType('samples_batch').flatMap((frame) => frame.payload.samples as Sample[]);
  }

  async waitForClose(timeoutMs = 5_000): Promise<Closed> {
    return eventually(
      () => {
        if (!this.closed) throw new Error('socket still open');
        return this.closed;
      },
      { timeoutMs },
    );
  }

  async waitForAck(seq: number, timeoutMs = 5_000): Promise<void> {
    await eventually(
      () => {
        if ((this.lastAck ?? -Infinity) < seq) throw new Error(`ack ${seq} not seen; last ${this.lastAck}`);
      },
      { timeoutMs },
    );
  }

  close(): void {
    this.socket.close();
  }
}

export interface UpgradeRefusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** The HTTP answer to an upgrade the server refuses before the handshake (no such socket, draining). */
export function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<UpgradeRefusal> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.terminate();
      reject(new Error(`${url} was upgraded`));
    });
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) }));
    });
  });
}

export function ingestUrl(wsUrl: string, sessionId: string, token?: string): string {
  return `${wsUrl}/api/v1/sessions/${sessionId}/ingest${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

export function liveUrl(wsUrl: string, sessionId: string, fromSeq?: number): string {
  return `${wsUrl}/api/v1/sessions/${sessionId}/live${fromSeq === undefined ? '' : `?fromSeq=${fromSeq}`}`;
}

export function makeSamples(fromSeq: number, count: number, channels = ['ax', 'ay', 'az']): Sample[] {
  return Array.from({ length: count }, (_, i) => {
    const seq = fromSeq + i;
    const sample: Sample = { seq, t: 1_700_000_000_000 + seq * 1.25 };
    channels.forEach((name, c) => {
      sample[name] = Math.sin(seq / 10 + c) * 9.81 + c / 10;
    });
    return sample;
  });
}

/** wavehouse_database_errors_total for one operation, read from /metrics (0 before the first). */
export async function databaseErrorCount(baseUrl: string, operation: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`wavehouse_database_errors_total{operation="${operation}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** A binary frame (docs/protocol.md) of samples given as [seq, t, ...values]. */
export function binaryFrame(rows: number[][]): Buffer {
  const n = rows.length;
  const width = rows[0].length - 2;
  const out = Buffer.alloc(8 + n * (width + 2) * 8);
  out.writeUInt8(1, 0);
  out.writeUInt16LE(width, 2);
  out.writeUInt32LE(n, 4);
  rows.forEach((row, i) => {
    row.forEach((value, column) => {
      out.writeDoubleLE(value, 8 + (column * n + i) * 8);
    });
  });
  return out;
}
