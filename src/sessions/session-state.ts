/**
 * What one process knows about one session while a producer streams into it: the sequence
 * rules (docs/protocol.md, "Sequence rules"), what is accepted but not yet
 * committed, and a recent window of encoded frames for viewers that join with fromSeq.
 *
 * Invariants:
 * - committedSeq <= highestAcceptedSeq; -1 means none.
 * - The window holds a contiguous suffix of the accepted frames, and every sample before
 *   its first frame is committed. So a viewer's catch-up reads the database below the
 *   window and the window above it, with no gap (live/viewer-connection.ts, catchUp,
 *   relies on this).
 * - Frames leave the window only once committed, and only while it is over its byte bound.
 */
import { within } from '../deadlines.ts';
import { LiveFrame } from '../samples/live-frames.ts';
import type { SampleBatch } from '../samples/sample-batch.ts';
import { jsonColumnKeys } from '../samples/sample-text.ts';
import type { QueuedSession } from '../storage/write-queue.ts';

export type Acceptance = { kind: 'accepted'; batch: SampleBatch; frame: LiveFrame } | { kind: 'duplicate' } | { kind: 'ended' };

/**
 * What a producer that awaits its commits got for a frame (SessionCoordinator.commitFrame):
 * `queue_full` and `ended` stored nothing; else `stored` new samples were accepted, and are
 * committed, or will be once the database allows (`not_committed`), or never here (`fenced`).
 */
export type FrameCommit = { kind: 'queue_full' } | { kind: 'ended' } | { kind: 'committed' | 'not_committed' | 'fenced'; stored: number };

/** What a session needs of its producer's connection. */
export interface ProducerHandle {
  /**
   * It sends nothing more until what it sent is committed (an HTTP ingest request): its
   * batches are committed at once rather than left to age (write-queue.ts, QueuedBatch).
   */
  readonly awaitsCommit: boolean;
  sendAck(seq: number): void;
  /** The session ended: close after the final ack, which has already been sent. */
  closeForEnd(): void;
  /** Another process took this session's producer lock during a database outage. */
  closeForConflict(): void;
  /** The session was deleted: close at once (4404); nothing more of it is acked or stored. */
  closeForDelete(): void;
}

export interface SessionStateOptions {
  sessionId: string;
  channels: readonly string[];
  /** The highest seq already stored (the record's lastSeq); -1 for none. */
  lastCommittedSeq: number;
  /** The recent window's bound in bytes (LIVE_RECENT_WINDOW_BYTES). */
  windowMaxBytes: number;
  /** The producer epoch this process claimed; every commit for the session carries it. */
  epoch?: number;
}

export class SessionState implements QueuedSession {
  readonly sessionId: string;
  readonly channels: readonly string[];
  /** The producer epoch this process claimed; every commit for the session carries it. */
  readonly epoch?: number;
  readonly columnKeys: Buffer[];
  highestAcceptedSeq: number;
  committedSeq: number;
  ended = false;
  /** Another process took this session (its fencing epoch moved on): nothing more is stored here. */
  fenced = false;
  producer: ProducerHandle | null = null;
  private readonly windowMaxBytes: number;
  private readonly window: LiveFrame[] = [];
  private windowBytes = 0;
  private commitWaiters: Array<{ seq: number; resolve: () => void }> = [];

  constructor({ sessionId, channels, lastCommittedSeq, windowMaxBytes, epoch }: SessionStateOptions) {
    this.sessionId = sessionId;
    this.channels = channels;
    this.epoch = epoch;
    this.windowMaxBytes = windowMaxBytes;
    this.columnKeys = jsonColumnKeys(channels);
    this.highestAcceptedSeq = lastCommittedSeq;
    this.committedSeq = lastCommittedSeq;
  }

  /** False once fenced: what is pending then will never be committed here. */
  get hasPendingWrites(): boolean {
    return !this.fenced && this.committedSeq < this.highestAcceptedSeq;
  }

  /**
   * Applies the sequence rules to a decoded batch: assigns seqs when the producer sent none,
   * drops what is at or below the highest accepted seq, and encodes the rest once.
   */
  accept(batch: SampleBatch, hasSeq: boolean, samplesText: Buffer | null = null): Acceptance {
    if (this.ended || this.fenced) return { kind: 'ended' };
    if (batch.count === 0) return { kind: 'duplicate' };
    let fresh = batch;
    if (!hasSeq) {
      const next = Math.max(this.highestAcceptedSeq + 1, 1);
      for (let i = 0; i < batch.count; i++) batch.columns[i] = next + i;
    } else if (batch.firstSeq <= this.highestAcceptedSeq) {
      const start = batch.indexAfterSeq(this.highestAcceptedSeq);
      if (start === batch.count) return { kind: 'duplicate' };
      fresh = batch.slice(start, batch.count);
    }
    // The producer's text is forwarded only when it holds exactly what was accepted.
    const frame = new LiveFrame(fresh, this.columnKeys, this.highestAcceptedSeq, fresh === batch ? samplesText : null);
    this.highestAcceptedSeq = fresh.lastSeq;
    this.window.push(frame);
    // Counted by the batch's size, not the text's, so that an unwatched frame is never encoded.
    this.windowBytes += fresh.byteLength;
    this.trimWindow();
    return { kind: 'accepted', batch: fresh, frame };
  }

  /** Another process took the session: stop accepting, and tell the producer to go there. */
  fence(): void {
    if (this.fenced) return;
    this.fenced = true;
    for (const waiter of this.commitWaiters) waiter.resolve();
    this.commitWaiters = [];
    this.producer?.closeForConflict();
  }

  /** Called by the writer once everything up to `seq` is committed. */
  markCommitted(seq: number): void {
    if (seq <= this.committedSeq) return;
    this.committedSeq = seq;
    this.producer?.sendAck(seq);
    this.trimWindow();
    if (this.commitWaiters.length > 0) {
      const due = this.commitWaiters.filter((waiter) => waiter.seq <= seq);
      this.commitWaiters = this.commitWaiters.filter((waiter) => waiter.seq > seq);
      for (const waiter of due) waiter.resolve();
    }
  }

  /** Resolves once everything accepted so far is committed. */
  whenCommitted(): Promise<void> {
    const seq = this.highestAcceptedSeq;
    if (seq <= this.committedSeq || this.fenced) return Promise.resolve();
    return new Promise((resolve) => this.commitWaiters.push({ seq, resolve }));
  }

  /** Whether everything accepted so far is committed within `ms`. */
  committedWithin(ms: number): Promise<boolean> {
    return within(
      this.whenCommitted().then(() => true),
      ms,
      () => false,
    );
  }

  /** The window's frames, oldest first; the array is a copy the caller may keep. */
  windowSnapshot(): LiveFrame[] {
    return this.window.slice();
  }

  private trimWindow(): void {
    while (this.windowBytes > this.windowMaxBytes && this.window.length > 0) {
      const oldest = this.window[0];
      if (oldest.batch.lastSeq > this.committedSeq) return;
      this.window.shift();
      this.windowBytes -= oldest.batch.byteLength;
    }
  }
}
