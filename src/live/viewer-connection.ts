/**
 * One live viewer: history first, then live frames from the hub, with no gap and no
 * duplicate (docs/protocol.md, live socket).
 *
 * How: the viewer subscribes to the hub and takes the recent window in the same tick, so
 * every sample is either already accepted (in the database or the window) or arrives later
 * through the hub. Frames waiting to be sent sit in `pending`. Everything sent is filtered
 * by `lastSentSeq`, which only grows, so overlaps are cut and never resent.
 *
 * Gaps: each frame carries the seq accepted just before it (`prevSeq`). A frame whose
 * prevSeq is above `lastSentSeq` means samples were missed: frames another process
 * published before this one subscribed to the broker, or ones committed but older than the
 * window. The viewer then reads exactly that range from the database (waiting for it to be
 * committed) before sending the frame. So correctness never rests on timing.
 *
 * Bounds: `pending` is capped at `maxBufferedBytes`, and so are the socket's unsent bytes.
 * Past either, the viewer is closed with 1013 and resumes with fromSeq: one slow viewer
 * never holds memory or time from the producer or other viewers.
 *
 * Failures: the hub calls deliver and deliverEnd in the producer's frame handling, once per
 * viewer, so an exception there (a bug) must not leave the viewer: it would fail the
 * producer's frame and skip the other viewers. It closes this viewer with 1011 (it resumes
 * with fromSeq) and is reported.
 */
import { closeCodes } from '../contract/errors.ts';
import type { Subscriber } from '../fanout/hub.ts';
import { type LiveFrame, samplesMessage, sessionEndedMessage } from '../samples/live-frames.ts';
import type { SampleBatch } from '../samples/sample-batch.ts';

/** The part of a WebSocket a viewer's connection needs (viewer-socket.ts gives the implementation). */
export interface ViewerSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  /** Sends one whole WebSocket message, framed by the caller (samples/live-frames.ts). */
  write(message: Buffer): void;
  close(code: number, reason: string): void;
}

/** What a viewer reports (observability/metrics.ts gives the implementation). */
export interface ViewerCounters {
  frameSent(): void;
  slowClosed(): void;
  handlerFailed(): void;
}

/** Logs a bug met while handling the viewer (with its session id); the viewer closes itself. */
export type HandlerFailure = (error: unknown) => void;

/** Committed samples of the viewer's session in [fromSeq, toSeq], waiting until toSeq is committed. */
export type HistorySource = (fromSeq: number, toSeq: number) => AsyncIterable<SampleBatch>;

/**
 * Reports why reading history failed (logged and counted by the caller, http/failures.ts) and
 * tells a database out of reach (the viewer is told to retry: 1013) from anything else (1011).
 */
export type HistoryFailure = (error: unknown) => 'outage' | 'bug';

const OPEN = 1;
const drainPollMs = 5;

export interface ViewerConnectionOptions {
  socket: ViewerSocket;
  /** The session's channels as JSON keys (samples/sample-text.ts), for frames written from stored batches. */
  columnKeys: readonly Uint8Array[];
  /** The first seq to send; null: from now on. */
  fromSeq: number | null;
  history: HistorySource;
  /** The most this viewer may hold unsent, in its pending frames and in its socket each. */
  maxBufferedBytes: number;
  counters: ViewerCounters;
  historyFailed: HistoryFailure;
  handlerFailed: HandlerFailure;
}

export class ViewerConnection implements Subscriber {
  private mode: 'catching-up' | 'live' | 'closed' = 'live';
  private pending: Array<LiveFrame | 'end'> = [];
  private pendingBytes = 0;
  /** null: a viewer "from now on" that has not been sent anything yet. */
  private lastSentSeq: number | null;
  private readonly socket: ViewerSocket;
  private readonly columnKeys: readonly Uint8Array[];
  private readonly history: HistorySource;
  private readonly maxBufferedBytes: number;
  private readonly counters: ViewerCounters;
  private readonly historyFailed: HistoryFailure;
  private readonly handlerFailed: HandlerFailure;

  constructor(options: ViewerConnectionOptions) {
    this.socket = options.socket;
    this.columnKeys = options.columnKeys;
    this.lastSentSeq = options.fromSeq === null ? null : options.fromSeq - 1;
    this.history = options.history;
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.counters = options.counters;
    this.historyFailed = options.historyFailed;
    this.handlerFailed = options.handlerFailed;
  }

  get isClosed(): boolean {
    return this.mode === 'closed' || this.socket.readyState !== OPEN;
  }

  deliver(frame: LiveFrame): void {
    try {
      if (this.mode === 'catching-up') return this.hold(frame);
      if (this.mode === 'closed') return;
      if (this.hasGapBefore(frame)) {
        this.hold(frame);
        this.run(false, async () => false);
        return;
      }
      this.send(frame);
    } catch (error) {
      this.fail(error);
    }
  }

  deliverEnd(): void {
    try {
      if (this.mode === 'live') this.finish();
      else if (this.mode === 'catching-up') this.pending.push('end');
    } catch (error) {
      this.fail(error);
    }
  }

  /**
   * Starts a viewer with fromSeq: the database up to the window, then the window's frames,
   * then what arrived meanwhile, then live. `ended` tells whether the session had ended.
   */
  start(window: readonly LiveFrame[], ended: () => Promise<boolean>): void {
    for (const frame of window) this.hold(frame);
    this.run(true, ended, window.length > 0 ? window[0].batch.firstSeq - 1 : Number.MAX_SAFE_INTEGER);
  }

  /** The session was deleted: close with 4404 at once, whatever is still pending. */
  deliverDeleted(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    this.pending = [];
    try {
      this.socket.close(closeCodes.session_not_found.code, 'session deleted');
    } catch (error) {
      this.fail(error);
    }
  }

  /** The session ended: send `session_ended` and close with 1000. */
  finish(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    if (this.socket.readyState !== OPEN) return;
    this.socket.write(sessionEndedMessage);
    this.socket.close(closeCodes.normal.code, 'session ended');
  }

  private fail(error: unknown): void {
    this.mode = 'closed';
    this.pending = [];
    this.counters.handlerFailed();
    this.handlerFailed(error);
    this.socket.close(closeCodes.internal_error.code, 'internal error; reconnect with fromSeq');
  }

  /** The socket closed (by either side): stop all work for it. */
  closed(): void {
    this.mode = 'closed';
    this.pending = [];
  }

  private hold(frame: LiveFrame): void {
    this.pending.push(frame);
    this.pendingBytes += frame.bytes.length;
    if (this.pendingBytes > this.maxBufferedBytes) this.closeSlow();
  }

  private hasGapBefore(frame: LiveFrame): boolean {
    return this.lastSentSeq !== null && frame.prevSeq > this.lastSentSeq;
  }

  private run(initial: boolean, ended: () => Promise<boolean>, initialUpToSeq = 0): void {
    this.mode = 'catching-up';
    this.catchUp(initial, ended, initialUpToSeq).catch((error: unknown) => {
      if (this.mode === 'closed') return;
      this.mode = 'closed';
      if (this.historyFailed(error) === 'outage')
        this.socket.close(closeCodes.try_again_later.code, 'database unavailable; reconnect with fromSeq');
      else this.socket.close(closeCodes.internal_error.code, 'could not read history; reconnect with fromSeq');
    });
  }

  private async catchUp(initial: boolean, ended: () => Promise<boolean>, initialUpToSeq: number): Promise<void> {
    // A viewer with fromSeq first reads everything below the window: it is all committed.
    let range: [number, number] | null = initial && this.lastSentSeq !== null ? [this.lastSentSeq + 1, initialUpToSeq] : null;
    for (;;) {
      if (range) {
        for await (const batch of this.history(range[0], range[1])) {
          if (this.isClosed) return;
          this.sendBatch(batch);
          await this.drained();
        }
        if (this.isClosed) return;
      }
      // Synchronous from here to going live (or to the next gap), so nothing slips in between.
      range = null;
      while (this.pending.length > 0) {
        const next = this.pending[0];
        if (next === 'end') return this.finish();
        if (this.hasGapBefore(next)) {
          range = [this.lastSentSeq! + 1, next.prevSeq];
          break;
        }
        this.pending.shift();
        this.pendingBytes -= next.bytes.length;
        this.send(next);
        if (this.isClosed) return;
      }
      if (range === null) break;
    }
    this.mode = 'live';
    if (initial && (await ended())) this.finish();
  }

  private send(frame: LiveFrame): void {
    const { batch } = frame;
    if (this.lastSentSeq !== null && batch.lastSeq <= this.lastSentSeq) return;
    if (this.lastSentSeq !== null && batch.firstSeq <= this.lastSentSeq) return this.sendBatch(batch);
    this.write(frame.message, batch.lastSeq);
  }

  private sendBatch(batch: SampleBatch): void {
    const start = this.lastSentSeq === null ? 0 : batch.indexAfterSeq(this.lastSentSeq);
    if (start === batch.count) return;
    const fresh = start === 0 ? batch : batch.slice(start, batch.count);
    this.write(samplesMessage(fresh, this.columnKeys), fresh.lastSeq);
  }

  private write(message: Buffer, lastSeq: number): void {
    if (this.socket.readyState !== OPEN) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return this.closeSlow();
    this.socket.write(message);
    this.lastSentSeq = lastSeq;
    this.counters.frameSent();
  }

  private closeSlow(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    this.pending = [];
    this.counters.slowClosed();
    this.socket.close(closeCodes.try_again_later.code, 'too far behind; reconnect with fromSeq');
  }

  /** Waits until the socket has sent most of what it holds, so history is read only as fast as it goes out. */
  private async drained(): Promise<void> {
    while (!this.isClosed && this.socket.bufferedAmount > this.maxBufferedBytes / 4) {
      await new Promise((resolve) => setTimeout(resolve, drainPollMs));
    }
  }
}
