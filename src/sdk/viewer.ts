/**
 * A live viewer that survives reconnects with no hole and no duplicate (docs/protocol.md,
 * live socket): every connection asks for `fromSeq` = last seen seq + 1, and any sample at or
 * below the last seen seq is dropped anyway, should a server ever resend one.
 *
 * Without `fromSeq` the viewer starts after the session's highest committed seq at start
 * (read with GET /sessions/{id}), not at the socket's "from now on": that gives every later
 * reconnect a precise place to resume from, even before the first sample arrives.
 *
 * Bounds: samples wait for the iterator in a queue of at most `maxQueuedSamples`. A consumer
 * that falls further behind makes the viewer disconnect, and it reconnects with fromSeq once
 * the consumer has caught up by half, the same remedy the server applies (1013) to a viewer
 * that reads too slowly. Without an iterator (events only) nothing is queued.
 *
 * Close policy (reconnecting-socket.ts): fatal codes (4404 unknown session, 1008 a bad
 * fromSeq, 4401 and 4403 a credential refused) stop the viewer; a 4401 for an expired access
 * token reconnects at once with a renewed one; anything else (1012 restart, 1013 too slow or the database out of
 * reach, 1006) reconnects after a capped, jittered backoff. The viewer is done only at the
 * `session_ended` frame, which the server sends before its 1000: a 1000 without it resumes
 * with fromSeq, and the server says again whether the session ended.
 */
import type { BackoffOptions } from './backoff.ts';
import { TypedEmitter } from './emitter.ts';
import { type CloseMeaning, fatalCode, ReconnectingSocket, type ServerFrame } from './reconnecting-socket.ts';
import type { AccessCredential, Sample } from './types.ts';
import type { WebSocketConstructor } from './websocket.ts';

export interface ViewerOptions {
  baseUrl: string;
  sessionId: string;
  /** Start at this seq (stored history first, then live). Default: after the last committed seq. */
  fromSeq?: number;
  /** Samples waiting for a slow iterator before the viewer disconnects until it catches up. */
  maxQueuedSamples?: number;
  backoff?: BackoffOptions;
  WebSocket?: WebSocketConstructor;
  fetch?: typeof fetch;
  /** Private mode: what the viewer reads with, asked for a current token at every (re)connect. */
  credential?: AccessCredential;
}

export class ViewerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ViewerError';
  }
}

export interface ViewerDisconnect {
  code: number;
  reason: string;
  willReconnect: boolean;
  /** null when the reconnect waits for the consumer instead of a timer. */
  retryInMs: number | null;
}

export interface ViewerEvents {
  /** New samples, in seq order, never one seen before. */
  samples: Sample[];
  ended: undefined;
  connected: { fromSeq: number };
  disconnected: ViewerDisconnect;
  error: ViewerError;
}

type State = 'idle' | 'connecting' | 'open' | 'retrying' | 'paused' | 'ended' | 'closed' | 'failed';

const maxSeq = 2 ** 53 - 1;

export class Viewer extends TypedEmitter<ViewerEvents> implements AsyncIterable<Sample> {
  private state: State = 'idle';
  private readonly link: ReconnectingSocket;
  /** -1 before anything (seqs start at 0); null until the start point is known. */
  private lastSeen: number | null;
  private lastDelivered: number | null = null;
  private failure: ViewerError | null = null;
  private readonly maxQueuedSamples: number;

  private iterating = false;
  private queue: Sample[][] = [];
  private queueHead = 0;
  private queued = 0;
  private waiting: { resolve: (result: IteratorResult<Sample>) => void; reject: (error: Error) => void } | null = null;

  constructor(private readonly options: ViewerOptions) {
    super();
    const { fromSeq, maxQueuedSamples = 100_000 } = options;
    if (fromSeq !== undefined && !(Number.isInteger(fromSeq) && fromSeq >= 0 && fromSeq <= maxSeq)) {
      throw new RangeError('fromSeq must be an integer from 0 to 2^53-1');
    }
    if (!(maxQueuedSamples >= 1)) throw new RangeError('maxQueuedSamples must be at least 1');
    this.maxQueuedSamples = maxQueuedSamples;
    this.lastSeen = fromSeq === undefined ? null : fromSeq - 1;
    this.link = new ReconnectingSocket(options, {
      readsSession: () => this.lastSeen === null,
      target: (session) => {
        if (session !== null) this.lastSeen = session.lastSeq ?? -1;
        return { path: `/sessions/${encodeURIComponent(options.sessionId)}/live?fromSeq=${this.lastSeen! + 1}` };
      },
      open: () => {
        this.state = 'open';
        this.emit('connected', { fromSeq: this.lastSeen! + 1 });
      },
      message: (frame) => this.onMessage(frame),
      closed: (code, reason, meaning) => this.onClose(code, reason, meaning),
      notFound: () => this.fail(new ViewerError('session_not_found', `no session ${options.sessionId}`)),
      denied: (error) => this.fail(new ViewerError(error.code, `the server refused the viewer's credential: ${error.message}`)),
    });
  }

  /** The seq of the last sample delivered, or null. */
  get lastSeq(): number | null {
    return this.lastDelivered;
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /** Connects, for use with events alone; iterating starts the viewer by itself. */
  start(): this {
    if (this.state === 'idle') void this.connect();
    return this;
  }

  /**
   * Drops the live socket as a network failure would: the viewer reconnects after its usual
   * backoff and resumes after the last seq seen, with no hole. For "reconnect" controls and
   * for testing the resume path end to end.
   */
  dropConnection(): void {
    const socket = this.link.socket;
    if (this.state === 'open' && socket !== null) socket.close(4000, 'dropped on request');
  }

  /** Stops; an iteration in progress finishes. */
  close(): void {
    if (this.state === 'closed' || this.state === 'failed' || this.state === 'ended') return;
    this.state = 'closed';
    this.stop();
    this.wake();
  }

  [Symbol.asyncIterator](): AsyncIterator<Sample> {
    if (this.iterating) throw new Error('a Viewer can be iterated only once');
    this.iterating = true;
    this.start();
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }

  private next(): Promise<IteratorResult<Sample>> {
    const sample = this.dequeue();
    if (sample !== undefined) {
      if (this.state === 'paused' && this.queued <= this.maxQueuedSamples / 2) void this.connect();
      return Promise.resolve({ done: false, value: sample });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.state === 'ended' || this.state === 'closed') return Promise.resolve({ done: true, value: undefined });
    if (this.state === 'paused') void this.connect();
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  private dequeue(): Sample | undefined {
    while (this.queue.length > 0) {
      const batch = this.queue[0];
      if (this.queueHead < batch.length) {
        this.queued--;
        return batch[this.queueHead++];
      }
      this.queue.shift();
      this.queueHead = 0;
    }
    return undefined;
  }

  /** Resolves a waiting `next()` with what there is now: a sample, the end, or the failure. */
  private wake(): void {
    const waiting = this.waiting;
    if (waiting === null) return;
    const sample = this.dequeue();
    if (sample !== undefined) {
      this.waiting = null;
      waiting.resolve({ done: false, value: sample });
    } else if (this.failure) {
      this.waiting = null;
      waiting.reject(this.failure);
    } else if (this.state === 'ended' || this.state === 'closed') {
      this.waiting = null;
      waiting.resolve({ done: true, value: undefined });
    }
  }

  private connect(): void {
    this.state = 'connecting';
    void this.link.connect();
  }

  private onMessage(frame: ServerFrame): void {
    const samples = (frame.payload as { samples?: unknown } | null | undefined)?.samples;
    if (frame.type === 'samples_batch' && Array.isArray(samples)) {
      this.onSamples(samples as Sample[]);
    } else if (frame.type === 'session_ended') {
      this.state = 'ended';
      this.stop();
      this.emit('ended', undefined);
      this.wake();
    }
  }

  private onSamples(samples: Sample[]): void {
    let fresh = samples;
    const lastSeen = this.lastSeen ?? -1;
    if (samples.length > 0 && samples[0].seq <= lastSeen) fresh = samples.filter((sample) => sample.seq > lastSeen);
    if (fresh.length === 0) return;
    this.lastSeen = fresh[fresh.length - 1].seq;
    this.lastDelivered = this.lastSeen;
    this.link.resetBackoff();
    this.emit('samples', fresh);
    if (!this.iterating || this.state === 'closed') return;
    this.queue.push(fresh);
    this.queued += fresh.length;
    this.wake();
    if (this.queued > this.maxQueuedSamples && this.state === 'open') {
      this.state = 'paused';
      this.stop();
      this.emit('disconnected', { code: 4000, reason: 'the consumer is behind', willReconnect: true, retryInMs: null });
    }
  }

  private onClose(code: number, reason: string, { outcome, name }: CloseMeaning): void {
    if (this.state === 'ended' || this.state === 'closed' || this.state === 'failed') return;
    if (outcome === 'fatal') {
      this.emit('disconnected', { code, reason, willReconnect: false, retryInMs: null });
      const message =
        name === 'session_not_found' ? `no session ${this.options.sessionId}` : `the server refused the live socket: ${reason}`;
      return this.fail(new ViewerError(fatalCode(name, reason), message));
    }
    this.state = 'retrying';
    this.emit('disconnected', { code, reason, willReconnect: true, retryInMs: this.link.retry() });
  }

  private fail(error: ViewerError): void {
    this.state = 'failed';
    this.failure = error;
    this.stop();
    this.emit('error', error);
    this.wake();
  }

  private stop(): void {
    this.link.stop('viewer stopped');
  }
}
