/**
 * The writer: takes accepted batches off the write queue, flushes them when the queue holds
 * `maxBatchSamples` or its oldest item is `maxBatchAgeMs` old (whichever comes first, so the
 * added latency is capped and commits stay large), writes them as chunk rows with one binary
 * COPY per flush, then tells each session what is committed (which sends the acks).
 *
 * Error policy: a failed flush is retried with the same items, with capped exponential
 * backoff, for as long as it takes (cockatiel retry), behind a circuit breaker that, after a
 * run of failures, probes the database once a second instead of hammering it. Nothing is
 * dropped and nothing is acked meanwhile; the live path goes on and the queue's bound pushes
 * back on producers. Sessions another process has taken (FencedError) are not failures.
 * Lifecycle: start() runs the loop; drain() flushes everything and stops the loop.
 *
 * Tracing: each flush is one `wavehouse.commit` span, over all its attempts (each failure is
 * an exception event on it); its status is an error only if the flush never committed (the
 * drain ran out of time). The flush's log lines carry its traceId.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { CircuitState, ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, retry, wrap } from 'cockatiel';
import type { Logger } from 'pino';
import { noopTracer, traceFields } from '../observability/tracing.ts';
import { SampleBatch } from '../sessions/sample-batch.ts';
import type { SessionState } from '../sessions/session-state.ts';
import type { ChunkRow } from './chunk-codec.ts';
import { FencedError, type SampleStore, type SessionAdvance } from './sample-store.ts';
import type { QueuedBatch, WriteQueue } from './write-queue.ts';

export interface BatchWriterOptions {
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

const notFenced = handleWhen((error) => !(error instanceof FencedError));

export class BatchWriter {
  private running = false;
  private draining = false;
  private loop: Promise<void> | null = null;
  private pause: AbortController | null = null;
  /** The flush in progress (there is one at a time), for the failure listener. */
  private span: Span | null = null;
  /** Aborted when a drain runs out of time: stops retrying a database that stays down. */
  private readonly stop = new AbortController();
  private readonly breaker = circuitBreaker(notFenced, { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(5) });
  private readonly policy = wrap(
    retry(notFenced, { maxAttempts: Number.POSITIVE_INFINITY, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 2_000 }) }),
    this.breaker,
  );
  healthy = true;

  constructor(
    private readonly queue: WriteQueue,
    private readonly store: SampleStore,
    private readonly options: BatchWriterOptions,
    private readonly log: Logger,
    private readonly counters: WriterCounters,
    private readonly tracer: Tracer = noopTracer,
  ) {
    this.policy.onFailure(({ reason }) => {
      this.healthy = false;
      this.counters.failed();
      if (!('error' in reason)) return;
      this.span?.recordException(reason.error);
      this.log.error({ ...traceFields(this.span), err: reason.error, circuit: CircuitState[this.breaker.state] }, 'commit failed; retrying');
    });
    this.policy.onSuccess(() => {
      this.healthy = true;
    });
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Flushes everything queued, then stops. Resolves even if the database stays down: bounded by `deadlineMs`. */
  async drain(deadlineMs: number): Promise<boolean> {
    this.draining = true;
    this.pause?.abort();
    this.queue.interrupt();
    const timer = sleep(deadlineMs, 'timeout' as const, { ref: false });
    const outcome = await Promise.race([this.loop?.then(() => 'done' as const), timer]);
    this.running = false;
    this.stop.abort();
    this.queue.interrupt();
    return outcome === 'done';
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.queue.length === 0) {
        if (this.draining) return;
        await this.queue.waitForItems();
        continue;
      }
      const oldest = this.queue.oldestEnqueuedAtMs ?? Date.now();
      const dueInMs = oldest + this.options.maxBatchAgeMs - Date.now();
      if (!this.draining && this.queue.queuedSamples < this.options.maxBatchSamples && dueInMs > 0) {
        await this.wait(dueInMs);
        continue;
      }
      await this.flush(this.queue.peek(this.options.maxBatchSamples));
    }
  }

  private async flush(items: QueuedBatch[]): Promise<void> {
    const span = this.tracer.startSpan('wavehouse.commit');
    this.span = span;
    try {
      await this.commit(items, span);
    } finally {
      span.end();
      this.span = null;
    }
  }

  private async commit(items: QueuedBatch[], span: Span): Promise<void> {
    let attempts = 0;
    let storable = items.filter((item) => !item.session.fenced);
    while (storable.length > 0) {
      const { rows, advances } = toChunks(storable, this.options.maxChunkSamples);
      const samples = rows.reduce((sum, row) => sum + row.batch.count, 0);
      span.setAttributes({ 'wavehouse.commit.samples': samples, 'wavehouse.commit.chunk_rows': rows.length, 'wavehouse.commit.sessions': advances.length });
      const started = performance.now();
      try {
        await this.policy.execute(async ({ attempt }) => {
          span.setAttribute('wavehouse.commit.attempts', ++attempts);
          // A failed attempt may have committed all the same (the connection died after COMMIT
          // reached the server); committing it again would collide with its own rows forever.
          // The flush is one transaction, so one of its rows is stored only if all of it is.
          if (attempt > 0 && (await this.store.hasChunk(rows[0]))) return;
          await this.store.commitChunks(rows, advances);
        }, this.stop.signal);
        this.counters.committed(samples, (performance.now() - started) / 1000);
        break;
      } catch (error) {
        if (!(error instanceof FencedError)) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'stopped before the commit succeeded' });
          return; // stopped: the drain ran out of time
        }
        // Not a database failure: those sessions belong to another process now, which gets
        // their unacked samples again from the producer. Drop them and commit the rest.
        this.log.warn({ ...traceFields(span), sessionIds: error.sessionIds }, 'sessions taken over by another process; their queued samples are dropped');
        span.addEvent('sessions fenced', { 'wavehouse.session_ids': error.sessionIds });
        for (const item of storable) if (error.sessionIds.includes(item.session.sessionId)) item.session.fence();
        storable = storable.filter((item) => !item.session.fenced);
      }
    }
    this.queue.remove(items.length);
    const now = Date.now();
    for (const item of storable) this.counters.acked((now - item.enqueuedAtMs) / 1000);
    for (const advance of committedSessions(storable)) advance.session.markCommitted(advance.lastSeq);
  }

  private async wait(ms: number): Promise<void> {
    this.pause = new AbortController();
    await sleep(ms, undefined, { signal: this.pause.signal }).catch(() => undefined);
    this.pause = null;
  }
}

function committedSessions(items: readonly QueuedBatch[]): Iterable<{ session: SessionState; lastSeq: number }> {
  const last = new Map<SessionState, { session: SessionState; lastSeq: number }>();
  for (const item of items) last.set(item.session, { session: item.session, lastSeq: item.batch.lastSeq });
  return last.values();
}

/**
 * Merges consecutive batches of each session into chunks of at most `maxChunkSamples`
 * samples: fewer, larger rows are what makes a chunk layout fast to write and to read.
 */
export function toChunks(items: readonly QueuedBatch[], maxChunkSamples: number): { rows: ChunkRow[]; advances: SessionAdvance[] } {
  const bySession = new Map<SessionState, SampleBatch[]>();
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
      if (run.length > 0) rows.push({ sessionId: session.sessionId, batch: SampleBatch.concat(run) });
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
