/**
 * The writer's transactions on a thread of their own. A commit is several round trips to
 * PostgreSQL (BEGIN, COPY, the counters, COMMIT), and on the main thread each one waits for the
 * event loop to come back to the connection, behind every producer frame that arrived
 * meanwhile. Under JSON ingest the main thread is busy most of the time, so those waits were
 * most of a commit's time and all of its tail (ack p99 at half load; docs/performance.md). Here
 * the round trips run on a loop with nothing else to do; the main thread encodes each commit's
 * COPY body (it holds the batches), hands it over without a copy, and waits for one answer,
 * which brings the body's memory back for the next one (body-buffers.ts says why).
 *
 * The thread is started once, and start() is bounded: a thread that neither loads nor reaches
 * the database within `startTimeoutMs` is terminated and start() fails saying so, rather than
 * app start hanging without a word (a database behind a pooler that accepts connections and
 * then queues them, say). A thread that exits before start() succeeded is reported by start()
 * rejecting, and only so: the app is still being built then, and closes what it opened
 * (app.ts) before its caller decides what to do. One that stops unasked after a successful
 * start (a crash, or out of memory) fails what is in flight and every request after it, and
 * reports it through `onStop`: without it nothing more can be committed or acked, so the app
 * treats that as fatal (serve.ts exits, for the supervisor to start a fresh process;
 * producers resend what was not acked). It is not restarted in place: on Node 20 under tsx's
 * loader hooks, starting a thread soon after one was killed blocked the main thread for
 * minutes in a test that did so.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { within } from '../deadlines.ts';
import { BodyBuffers } from './body-buffers.ts';
import { type ChunkRow, encodeCopyBinary } from './chunk-codec.ts';
import { FencedError } from './commit-refusal.ts';
import { type ChunkCommitter, type CommitMarker, type SessionAdvance, type TimedAdvance, withTRanges } from './sample-store.ts';

/** What the thread is started with (its workerData): plain data, copied to it. */
export interface CommitThreadData {
  databaseUrl: string;
  /** Connections of the thread's pool: one per writer lane, since a lane commits one flush at a time. */
  connections: number;
  logLevel: string;
  /** Whether commits keep the roll-ups (WRITE_ROLLUPS). */
  rollups: boolean;
}

export type CommitRequest =
  | { id: number; type: 'commit'; body: Uint8Array; advances: readonly TimedAdvance[]; marker?: CommitMarker }
  | { id: number; type: 'isCommitted'; marker: CommitMarker }
  | { id: number; type: 'ping' };

/** A commit's answer carries its body's memory back (`memory`), whatever the outcome. */
export type CommitResponse = (
  | { id: number; ok: true; committed?: boolean }
  | { id: number; ok: false; fenced: string[] }
  | { id: number; ok: false; error: { message: string; code?: string } }
) & { memory?: ArrayBuffer };

export interface CommitThreadOptions extends Omit<CommitThreadData, 'rollups'> {
  /** Default true. */
  rollups?: boolean;
  log: Logger;
  /** Told when the thread stops unasked after a successful start: nothing more can be committed. */
  onStop?: (error: Error) => void;
  /**
   * How long start() waits for the thread's first answer: loading it (tsx compiles its
   * TypeScript; about 0.5 s here) and one query on its pool. Above the pool's own 5 s connect
   * timeout, so that a database that refuses or never accepts is reported by pg's error first.
   */
  startTimeoutMs?: number;
  /** Where bodies' memory comes from and returns to; a test may look into its own. */
  bodies?: BodyBuffers;
}

const defaultStartTimeoutMs = 15_000;

interface Waiter {
  resolve: (response: CommitResponse & { ok: true }) => void;
  reject: (error: Error) => void;
}

export class CommitThread implements ChunkCommitter {
  private thread: Worker | null = null;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;
  /** Why requests are refused: set by close() or by the thread stopping on its own. */
  private stopped: Error | null = null;
  /** Whether start() succeeded: only a stop after that is reported through onStop. */
  private started = false;

  private readonly data: CommitThreadData;
  private readonly log: Logger;
  private readonly onStop: (error: Error) => void;
  private readonly startTimeoutMs: number;
  private readonly bodies: BodyBuffers;

  constructor({
    databaseUrl,
    connections,
    logLevel,
    rollups = true,
    log,
    onStop = () => undefined,
    startTimeoutMs = defaultStartTimeoutMs,
    bodies = new BodyBuffers(),
  }: CommitThreadOptions) {
    this.data = { databaseUrl, connections, logLevel, rollups };
    this.log = log;
    this.onStop = onStop;
    this.startTimeoutMs = startTimeoutMs;
    this.bodies = bodies;
  }

  /** Whether the thread is up: started, and neither closed nor stopped on its own. */
  get running(): boolean {
    return this.thread !== null && this.stopped === null;
  }

  /**
   * Starts the thread and waits until it answers with a connection open, so that the first
   * commit does not pay for either. A thread that fails to start is not left running: it
   * would keep the process alive.
   */
  async start(): Promise<void> {
    if (this.thread || this.stopped) throw new Error('the commit thread is started once');
    const thread = new Worker(new URL('./commit-thread-entry.mjs', import.meta.url), { workerData: this.data });
    thread.on('message', (response: CommitResponse) => this.settle(response));
    thread.on('error', (error) => this.log.error({ err: error }, 'commit thread failed'));
    thread.on('exit', (code) => this.exited(code));
    this.thread = thread;
    try {
      await within(this.request({ id: 0, type: 'ping' }), this.startTimeoutMs, () => {
        // `||`, not `??`: a socket URL (postgres:///db?host=/run/postgresql) has an empty host.
        const url = URL.parse(this.data.databaseUrl);
        const database = url?.host || url?.searchParams.get('host') || 'the database';
        throw new Error(
          `the commit thread did not start within ${this.startTimeoutMs} ms: it did not load, or did not get an answer from ${database}`,
        );
      });
      this.started = true;
    } catch (error) {
      this.stopped ??= error as Error;
      await thread.terminate();
      throw error;
    }
  }

  async commitChunks(rows: readonly ChunkRow[], advances: readonly SessionAdvance[], marker?: CommitMarker): Promise<void> {
    const body = encodeCopyBinary(rows, (size) => this.bodies.take(size));
    await this.request({ id: 0, type: 'commit', body, advances: withTRanges(advances, rows), marker }, [body.buffer as ArrayBuffer]);
  }

  async isCommitted(marker: CommitMarker): Promise<boolean> {
    const response = await this.request({ id: 0, type: 'isCommitted', marker });
    return response.committed === true;
  }

  /**
   * Stops the thread once its connections have closed (cut after `graceMs`); what is still in
   * flight fails. The writer has drained before this.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.stopped ??= new Error('the commit thread is closed');
    const thread = this.thread;
    if (!thread) return;
    const exited = new Promise((resolve) => thread.once('exit', resolve));
    thread.postMessage({ type: 'close' });
    // terminate() resolves once the thread has exited.
    await within(exited, graceMs, () => thread.terminate());
  }

  private request(request: CommitRequest, transfer: ArrayBuffer[] = []): Promise<CommitResponse & { ok: true }> {
    const thread = this.thread;
    if (this.stopped || !thread) return Promise.reject(this.stopped ?? new Error('the commit thread is not started'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      try {
        thread.postMessage({ ...request, id }, transfer);
      } catch (error) {
        this.waiting.delete(id);
        reject(error);
      }
    });
  }

  private exited(code: number): void {
    this.thread = null;
    const unasked = this.stopped === null;
    this.stopped ??= new Error(`the commit thread stopped (exit code ${code})`);
    for (const waiter of this.waiting.values()) waiter.reject(this.stopped);
    this.waiting.clear();
    // Before start() succeeded, the waiting ping has just been failed with the reason: start()
    // rejects with it, and the app's build closes what it opened before anyone exits.
    if (unasked && this.started) {
      this.log.fatal({ err: this.stopped }, 'the commit thread stopped: nothing more can be committed');
      this.onStop(this.stopped);
    }
  }

  private settle(response: CommitResponse): void {
    if (response.memory) this.bodies.give(response.memory);
    const waiter = this.waiting.get(response.id);
    if (!waiter) return;
    this.waiting.delete(response.id);
    if (response.ok) waiter.resolve(response);
    else if ('fenced' in response) waiter.reject(new FencedError(response.fenced));
    else waiter.reject(Object.assign(new Error(response.error.message), { code: response.error.code }));
  }
}
