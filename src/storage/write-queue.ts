/**
 * Accepted batches waiting to be committed, bounded in bytes, in lanes.
 *
 * The bound is what turns a slow or unreachable database into backpressure instead of memory
 * growth (docs/architecture.md, principle 2): above `maxQueuedBytes` the queue reports itself
 * full, the ingest sockets stop reading (TCP pushes back on producers), and they resume once
 * the queue has drained to half the bound. Items leave the queue only after they are committed,
 * so a failed commit is retried with the same items.
 *
 * Lanes: all of a session's batches go to one lane, chosen by its id, in acceptance order,
 * and each lane is committed by its own writer loop (batch-writer.ts). So one lane's COPY
 * runs while another waits for its commit, and yet a session's commits, and so its acks,
 * never overtake one another (an ack says every sample up to its seq is stored).
 */
import { within } from '../deadlines.ts';
import type { SampleBatch } from '../samples/sample-batch.ts';

/**
 * What the writer needs of a session whose batches it commits: its id and epoch for the rows,
 * and whom to tell that they are committed (the ack) or that another process took it.
 * Declared here, and implemented by sessions/session-state.ts, so that storage depends on no
 * session code while the ack still flows back up from the writer.
 */
export interface QueuedSession {
  readonly sessionId: string;
  /** The producer epoch this process claimed; every commit for the session carries it. */
  readonly epoch?: number;
  readonly fenced: boolean;
  fence(): void;
  markCommitted(seq: number): void;
}

export interface QueuedBatch {
  session: QueuedSession;
  batch: SampleBatch;
  enqueuedAtMs: number;
  /**
   * Its producer sends nothing more until this batch is committed (an HTTP ingest request):
   * nothing would fill the batch while it ages, so the writer commits it at once.
   */
  awaited: boolean;
}

/** One lane: a FIFO of batches that one writer loop commits in order. */
export class WriteLane {
  private items: QueuedBatch[] = [];
  private head = 0;
  queuedSamples = 0;
  /** How many of the queued items are awaited (QueuedBatch.awaited). */
  private awaitedItems = 0;
  private wake: (() => void) | null = null;
  private awaitedPushed: (() => void) | null = null;

  constructor(private readonly removed: (bytes: number, samples: number) => void) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get oldestEnqueuedAtMs(): number | null {
    return this.length === 0 ? null : this.items[this.head].enqueuedAtMs;
  }

  /** Whether a producer waits on a queued item: the lane is due now, whatever its age. */
  get holdsAwaited(): boolean {
    return this.awaitedItems > 0;
  }

  push(item: QueuedBatch): void {
    this.items.push(item);
    this.queuedSamples += item.batch.count;
    this.wake?.();
    if (item.awaited) {
      this.awaitedItems++;
      this.awaitedPushed?.();
    }
  }

  /** The oldest items holding up to `maxSamples` samples (always at least one item). */
  peek(maxSamples: number): QueuedBatch[] {
    const out: QueuedBatch[] = [];
    let samples = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (out.length > 0 && samples + item.batch.count > maxSamples) break;
      out.push(item);
      samples += item.batch.count;
    }
    return out;
  }

  /** Removes the `count` oldest items, once they are committed. */
  remove(count: number): void {
    let bytes = 0;
    let samples = 0;
    for (let i = this.head; i < this.head + count; i++) {
      bytes += this.items[i].batch.byteLength;
      samples += this.items[i].batch.count;
      if (this.items[i].awaited) this.awaitedItems--;
    }
    this.head += count;
    this.queuedSamples -= samples;
    // Compact now and then rather than shift() per item, which is O(n) each.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.removed(bytes, samples);
  }

  /** Resolves when an item is pushed (or at once if the lane holds any). */
  waitForItems(): Promise<void> {
    if (this.length > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
    });
  }

  /** Calls `listener` (once) when an awaited item is pushed, until the returned function is called. */
  onAwaitedPush(listener: () => void): () => void {
    this.awaitedPushed = () => {
      this.awaitedPushed = null;
      listener();
    };
    return () => {
      this.awaitedPushed = null;
    };
  }

  /** Wakes a waiting writer loop with nothing pushed, so it can notice it is being closed. */
  interrupt(): void {
    this.wake?.();
  }
}

export interface WriteQueueOptions {
  /** The bound in bytes, above which the queue reports itself full (WRITE_QUEUE_MAX_BYTES). */
  maxQueuedBytes: number;
  /** How many lanes, each committed by a writer loop of its own (WRITE_LANES); 1 by default. */
  lanes?: number;
}

export class WriteQueue {
  readonly lanes: readonly WriteLane[];
  queuedBytes = 0;
  queuedSamples = 0;
  private drainedListeners: Array<() => void> = [];
  private readonly maxQueuedBytes: number;

  constructor({ maxQueuedBytes, lanes = 1 }: WriteQueueOptions) {
    this.maxQueuedBytes = maxQueuedBytes;
    this.lanes = Array.from({ length: lanes }, () => new WriteLane((bytes, samples) => this.removed(bytes, samples)));
  }

  get isFull(): boolean {
    return this.queuedBytes >= this.maxQueuedBytes;
  }

  push(session: QueuedSession, batch: SampleBatch, nowMs: number, awaited = false): void {
    this.queuedBytes += batch.byteLength;
    this.queuedSamples += batch.count;
    this.laneOf(session).push({ session, batch, enqueuedAtMs: nowMs, awaited });
  }

  /** Calls `listener` once the queue is down to half its bound. */
  onceDrained(listener: () => void): void {
    this.drainedListeners.push(listener);
  }

  /** Whether the queue drains within `ms` (it may stay full while the database is out of reach). */
  drainedWithin(ms: number): Promise<boolean> {
    return within(new Promise<boolean>((resolve) => this.onceDrained(() => resolve(true))), ms, () => false);
  }

  interrupt(): void {
    for (const lane of this.lanes) lane.interrupt();
  }

  laneOf(session: QueuedSession): WriteLane {
    if (this.lanes.length === 1) return this.lanes[0];
    // Session ids are random UUIDs: their first 32 bits spread sessions evenly.
    return this.lanes[Number.parseInt(session.sessionId.slice(0, 8), 16) % this.lanes.length];
  }

  private removed(bytes: number, samples: number): void {
    this.queuedBytes -= bytes;
    this.queuedSamples -= samples;
    if (this.queuedBytes * 2 <= this.maxQueuedBytes && this.drainedListeners.length > 0) {
      const listeners = this.drainedListeners;
      this.drainedListeners = [];
      for (const listener of listeners) listener();
    }
  }
}
