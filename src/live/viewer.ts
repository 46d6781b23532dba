/**
 * One live viewer: history first (database, then the recent window), then live frames from
 * the hub, with no gap and no duplicate (DESIGN, live socket).
 *
 * How: the viewer subscribes to the hub and takes the window snapshot in the same tick, so
 * every sample is either already accepted (in the database or the window) or arrives later
 * through the hub. Frames arriving during catch-up wait in `pending`; everything sent is
 * filtered by `lastSentSeq`, which only grows, so overlaps are cut and never resent.
 *
 * Bounds: while catching up, `pending` is capped at `maxBufferedBytes`; once live, the
 * socket's unsent bytes are. Past either, the viewer is closed with 1013 and resumes with
 * fromSeq: one slow viewer never holds memory or time from the producer or other viewers.
 */
import { closeCodes } from '../contract/errors.ts';
import type { Subscriber } from '../fanout/hub.ts';
import type { SampleBatch } from '../sessions/sample-batch.ts';
import { encodeSamplesFrame, sessionEndedFrame, type LiveFrame } from './live-frames.ts';

/** The part of a WebSocket a viewer needs. */
export interface ViewerSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Buffer, options: { binary: boolean }): void;
  close(code: number, reason: string): void;
}

const OPEN = 1;
/** Frames are JSON text; ws would send a Buffer as a binary frame unless told. */
const asText = { binary: false };
const drainPollMs = 5;

export class Viewer implements Subscriber {
  private mode: 'catching-up' | 'live' | 'closed';
  private pending: Array<LiveFrame | 'end'> = [];
  private pendingBytes = 0;
  private lastSentSeq: number;

  constructor(
    private readonly socket: ViewerSocket,
    private readonly keyPrefixes: readonly string[],
    fromSeq: number | null,
    private readonly maxBufferedBytes: number,
  ) {
    this.mode = fromSeq === null ? 'live' : 'catching-up';
    this.lastSentSeq = fromSeq === null ? -1 : fromSeq - 1;
  }

  get isClosed(): boolean {
    return this.mode === 'closed' || this.socket.readyState !== OPEN;
  }

  deliver(frame: LiveFrame): void {
    if (this.mode === 'live') this.send(frame);
    else if (this.mode === 'catching-up') {
      this.pending.push(frame);
      this.pendingBytes += frame.bytes.length;
      if (this.pendingBytes > this.maxBufferedBytes) this.closeSlow();
    }
  }

  deliverEnd(): void {
    if (this.mode === 'live') this.finish();
    else if (this.mode === 'catching-up') this.pending.push('end');
  }

  /**
   * Sends the history (batches from the database, then the window's frames), then what
   * arrived meanwhile, then goes live. `ended`: the session had ended when the viewer came.
   */
  async catchUp(history: AsyncIterable<SampleBatch>, window: readonly LiveFrame[], ended: () => Promise<boolean>): Promise<void> {
    for await (const batch of history) {
      if (this.isClosed) return;
      this.sendBatch(batch);
      await this.drained();
    }
    for (const frame of window) {
      if (this.isClosed) return;
      this.send(frame);
      await this.drained();
    }
    // Synchronous from here to going live, so nothing can slip in between.
    while (this.pending.length > 0) {
      const next = this.pending.shift()!;
      if (next === 'end') return this.finish();
      this.send(next);
      if (this.isClosed) return;
    }
    this.pendingBytes = 0;
    if (this.mode !== 'catching-up') return;
    this.mode = 'live';
    if (await ended()) this.finish();
  }

  /** The session had already ended when this viewer (without fromSeq) arrived, or it just did. */
  finish(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    if (this.socket.readyState !== OPEN) return;
    this.socket.send(sessionEndedFrame, asText);
    this.socket.close(closeCodes.normal.code, 'session ended');
  }

  /** The socket closed (by either side): stop all work for it. */
  closed(): void {
    this.mode = 'closed';
    this.pending = [];
  }

  private send(frame: LiveFrame): void {
    const { batch } = frame;
    if (batch.lastSeq <= this.lastSentSeq) return;
    if (batch.firstSeq <= this.lastSentSeq) {
      this.sendBatch(batch.slice(batch.indexAfterSeq(this.lastSentSeq), batch.count));
      return;
    }
    this.write(frame.bytes, batch.lastSeq);
  }

  private sendBatch(batch: SampleBatch): void {
    const start = batch.indexAfterSeq(this.lastSentSeq);
    if (start === batch.count) return;
    const fresh = start === 0 ? batch : batch.slice(start, batch.count);
    this.write(encodeSamplesFrame(fresh, this.keyPrefixes).bytes, fresh.lastSeq);
  }

  private write(bytes: Buffer, lastSeq: number): void {
    if (this.socket.readyState !== OPEN) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return this.closeSlow();
    this.socket.send(bytes, asText);
    this.lastSentSeq = lastSeq;
  }

  private closeSlow(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    this.pending = [];
    const { code } = closeCodes.try_again_later;
    this.socket.close(code, 'too far behind; reconnect with fromSeq');
  }

  /** Waits until the socket has sent most of what it holds, so history is read only as fast as it goes out. */
  private async drained(): Promise<void> {
    while (!this.isClosed && this.socket.bufferedAmount > this.maxBufferedBytes / 4) {
      await new Promise((resolve) => setTimeout(resolve, drainPollMs));
    }
  }
}
