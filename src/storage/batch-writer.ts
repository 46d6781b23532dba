/**
 * The writer: takes accepted batches off the write queue, flushes them when a lane holds
 * `maxBatchSamples` or its oldest item is `maxBatchAgeMs` old (whichever comes first, so the
 * added latency is capped and commits stay large), writes them as chunk rows with one binary
 * COPY per flush, then tells each session what is committed (which sends the acks).
 * A lane holding a batch whose producer waits for its commit (an HTTP ingest request) is due
 * at once: nothing would fill it while it aged, and the wait would be the request's latency
 * (HTTP ingest p50 32 -> 21 ms, 0.12 -> 0.17 M samples/s; docs/performance.md). Batches that
 * arrive while a lane commits still go together in its next flush.
 *
 * One loop per lane of the queue (write-queue.ts), each committing one flush at a time on a
 * connection of its own: one lane's COPY overlaps another's commit instead of the encoding, the
 * COPY and the commit's fsync all taking turns (binary ingest 1.93 -> 2.2-2.7 M samples/s with
 * 2 lanes, about a tenth more with 4, no cost at half load; docs/performance.md). A session
 * lives in one lane, so its commits and acks stay in order.
 *
 * Error policy: a failed flush is retried with the same items, with capped and jittered
 * exponential backoff, for as long as it takes (cockatiel retry), behind a circuit breaker
 * that, after a run of failures, probes the database once a second instead of hammering it.
 * Nothing is dropped and nothing is acked meanwhile; the live path goes on and the queue's
 * bound pushes back on producers. The circuit breaker is shared by the lanes: the database is
 * one. Sessions another process has taken (FencedError) are not failures.
 * Lifecycle: start() runs the loops; drain() flushes everything and stops them.
 *
 * Tracing: each flush is one `wavehouse.commit` span, over all its attempts (each failure is
 * an exception event on it); its status is an error only if the flush never committed (the
 * drain ran out of time). The flush's log lines carry its traceId.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Span, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { CircuitState, ConsecutiveBreaker, circuitBreaker, ExponentialBackoff, handleWhen, retry, wrap } from 'cockatiel';
import type { Logger } from 'pino';
import { within } from '../deadlines.ts';
import { noopTracer, traceFields } from '../observability/tracing.ts';
import type { SampleBatch } from '../samples/sample-batch.ts';
import { type ChunkRow, sampleCountOf } from './chunk-codec.ts';
import { FencedError } from './commit-refusal.ts';
import type { ChunkCommitter, CommitMarker, SessionAdvance } from './sample-store.ts';
import type { QueuedBatch, QueuedSession, WriteLane, WriteQueue } from './write-queue.ts';

/** When a lane is flushed, and how its batches become chunk rows. */
export interface BatchLimits {
  maxBatchAgeMs: number;
  maxBatchSamples: number;
  maxChunkSamples: number;
}

/** What the writer reports (observability/metrics.ts gives the implementation). */
export interface WriterCounters {
  committed(samples: number, durationS: number): void;
  acked(latencyS: number): void;
  failed(): void;
}

export interface BatchWriterOptions {
  queue: WriteQueue;
  /** Where flushes are committed: the commit thread, or a SampleStore on this thread. */
  store: ChunkCommitter;
  limits: BatchLimits;
  log: Logger;
  counters: WriterCounters;
  /** Absent: the no-op tracer. */
  tracer?: Tracer;
}

const notFenced = handleWhen((error) => !(error instanceof FencedError));

export class BatchWriter {
  private running = false;
  private draining = false;
  private loops: Array<Promise<void>> = [];
  /** The lanes' waits for their oldest batch to come of age, cut short by a drain. */
  private readonly pauses = new Set<AbortController>();
  /** Aborted when a drain runs out of time: stops retrying a database that stays down. */
  private readonly stop = new AbortController();
  /** Each lane's id in the commit markers (sample-store.ts): random, so no other writer, here or elsewhere, shares it. */
  private readonly laneIds: Map<WriteLane, string>;
  private readonly breaker = circuitBreaker(notFenced, { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(5) });
  private readonly policy = wrap(
    retry(notFenced, { maxAttempts: Number.POSITIVE_INFINITY, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 2_000 }) }),
    this.breaker,
  );
  healthy = true;
  private readonly queue: WriteQueue;
  private readonly store: ChunkCommitter;
  private readonly limits: BatchLimits;
  private readonly log: Logger;
  private readonly counters: WriterCounters;
  private readonly tracer: Tracer;

  constructor({ queue, store, limits, log, counters, tracer = noopTracer }: BatchWriterOptions) {
    this.queue = queue;
    this.store = store;
    this.limits = limits;
    this.log = log;
    this.counters = counters;
    this.tracer = tracer;
    this.laneIds = new Map(queue.lanes.map((lane) => [lane, randomUUID()]));
    this.policy.onFailure(() => {
      this.healthy = false;
      this.counters.failed();
    });
    this.policy.onSuccess(() => {
      this.healthy = true;
    });
  }

  start(): void {
    this.running = true;
    this.loops = this.queue.lanes.map((lane) => this.run(lane));
  }

  /** Flushes everything queued, then stops. Resolves even if the database stays down: bounded by `deadlineMs`. */
  async drain(deadlineMs: number): Promise<boolean> {
    this.draining = true;
    for (const pause of this.pauses) pause.abort();
    this.queue.interrupt();
    const flushed = await within(
      Promise.all(this.loops).then(() => true),
      deadlineMs,
      () => false,
    );
    this.running = false;
    this.stop.abort();
    this.queue.interrupt();
    return flushed;
  }

  private async run(lane: WriteLane): Promise<void> {
    while (this.running) {
      if (lane.length === 0) {
        if (this.draining) return;
        await lane.waitForItems();
        continue;
      }
      const oldest = lane.oldestEnqueuedAtMs ?? Date.now();
      const dueInMs = oldest + this.limits.maxBatchAgeMs - Date.now();
      if (!this.draining && !lane.holdsAwaited && lane.queuedSamples < this.limits.maxBatchSamples && dueInMs > 0) {
        await this.wait(dueInMs, lane);
        continue;
      }
      await this.flush(lane);
    }
  }

  private async flush(lane: WriteLane): Promise<void> {
    const span = this.tracer.startSpan('wavehouse.commit');
    try {
      const items = lane.peek(this.limits.maxBatchSamples);
      if (await this.commit(items, { laneId: this.laneIds.get(lane)!, flushId: randomUUID() }, span)) lane.remove(items.length);
    } finally {
      span.end();
    }
  }

  /** Commits `items` and acks what it stored; false when a drain ran out of time first. */
  private async commit(items: QueuedBatch[], marker: CommitMarker, span: Span): Promise<boolean> {
    let attempts = 0;
    let storable = items.filter((item) => !item.session.fenced);
    while (storable.length > 0) {
      const { rows, advances } = toChunks(storable, this.limits.maxChunkSamples);
      const samples = rows.reduce((sum, row) => sum + sampleCountOf(row), 0);
      span.setAttributes({
        'wavehouse.commit.samples': samples,
        'wavehouse.commit.chunk_rows': rows.length,
        'wavehouse.commit.sessions': advances.length,
      });
      const started = performance.now();
      try {
        await this.policy.execute(async () => {
          span.setAttribute('wavehouse.commit.attempts', ++attempts);
          // A failed attempt may have committed all the same (the connection died after COMMIT
          // reached the server); committing it again would collide with its own rows forever.
          // Only its marker tells: a chunk with the same end may be another process's, which
          // took one of the sessions meanwhile and resent it from the same seq. Every attempt
          // of this flush, before and after dropping fenced sessions, writes the same marker,
          // and what is left to store is a part of what any of them stored.
          try {
            if (attempts > 1 && (await this.store.isCommitted(marker))) return;
            await this.store.commitChunks(rows, advances, marker);
          } catch (error) {
            if (error instanceof FencedError) throw error;
            span.recordException(error as Error);
            this.log.error({ ...traceFields(span), err: error, circuit: CircuitState[this.breaker.state] }, 'commit failed; retrying');
            throw error;
          }
        }, this.stop.signal);
        this.counters.committed(samples, (performance.now() - started) / 1000);
        break;
      } catch (error) {
        if (!(error instanceof FencedError)) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'stopped before the commit succeeded' });
          return false;
        }
        // Not a database failure: those sessions belong to another process now, which gets
        // their unacked samples again from the producer. Drop them and commit the rest.
        this.log.warn(
          { ...traceFields(span), sessionIds: error.sessionIds },
          'sessions taken over by another process; their queued samples are dropped',
        );
        span.addEvent('sessions fenced', { 'wavehouse.session_ids': error.sessionIds });
        for (const item of storable) if (error.sessionIds.includes(item.session.sessionId)) item.session.fence();
        storable = storable.filter((item) => !item.session.fenced);
      }
    }
    const now = Date.now();
    for (const item of storable) this.counters.acked((now - item.enqueuedAtMs) / 1000);
    for (const advance of committedSessions(storable)) advance.session.markCommitted(advance.lastSeq);
    return true;
  }

  /** Waits `ms` for `lane`'s oldest batch to come of age, or less if an awaited batch arrives meanwhile. */
  private async wait(ms: number, lane: WriteLane): Promise<void> {
    const pause = new AbortController();
    this.pauses.add(pause);
    const stopListening = lane.onAwaitedPush(() => pause.abort());
    await sleep(ms, undefined, { signal: pause.signal }).catch(() => undefined);
    stopListening();
    this.pauses.delete(pause);
  }
}

function committedSessions(items: readonly QueuedBatch[]): Iterable<{ session: QueuedSession; lastSeq: number }> {
  const last = new Map<QueuedSession, { session: QueuedSession; lastSeq: number }>();
  for (const item of items) last.set(item.session, { session: item.session, lastSeq: item.batch.lastSeq });
  return last.values();
}

/**
 * Merges consecutive batches of each session into chunks of at most `maxChunkSamples`
 * samples: fewer, larger rows are what makes a chunk layout fast to write and to read.
 */
export function toChunks(items: readonly QueuedBatch[], maxChunkSamples: number): { rows: ChunkRow[]; advances: SessionAdvance[] } {
  const bySession = new Map<QueuedSession, SampleBatch[]>();
  for (const item of items) {
    const list = bySession.get(item.session);
    if (list) list.push(item.batch);
    else bySession.set(item.session, [item.batch]);
  }
  const rows: ChunkRow[] = [];
  const advances: SessionAdvance[] = [];
  for (const [session, batches] of bySession) {
    let run: SampleBatch[] = [];
    let runSamples = 0;
    let total = 0;
    const closeRun = () => {
      if (run.length > 0) rows.push({ sessionId: session.sessionId, batches: run });
      run = [];
      runSamples = 0;
    };
    for (const whole of batches) {
      // A frame may hold more samples than a chunk (10,000 and 2,000 by default): split it, so
      // a chunk never exceeds the bound that reads page by.
      for (let start = 0; start < whole.count; start += maxChunkSamples) {
        const batch = whole.count <= maxChunkSamples ? whole : whole.slice(start, Math.min(whole.count, start + maxChunkSamples));
        if (runSamples > 0 && runSamples + batch.count > maxChunkSamples) closeRun();
        run.push(batch);
        runSamples += batch.count;
        total += batch.count;
      }
    }
    closeRun();
    advances.push({ sessionId: session.sessionId, sampleCount: total, lastSeq: batches[batches.length - 1].lastSeq, epoch: session.epoch });
  }
  return { rows, advances };
}
