/**
 * Where a session's producer, its live viewers and the writer meet in one process.
 *
 * Ordering: attaching a producer, releasing a session after its producer left, and ending a
 * session run one at a time per session (a per-session promise chain), so a producer can
 * never attach between "the last write committed" and "the lock is released", and an end
 * never races an attach. Frames themselves are accepted synchronously on the hot path.
 * Nothing holds the chain without bound: an end waits for the session's commits for a
 * bounded time (during a database outage they may take as long as the outage), and if they
 * are not done by then, it answers so, and an attach queued behind it gets its answer.
 *
 * A session's state lives here while a producer is attached or its writes are pending, and
 * the process holds the session's producer lock (storage/producer-locks.ts) for exactly
 * that long. After that, the database alone knows the session.
 *
 * Idle grace: after a producer that awaits its commits (an HTTP ingest request) leaves, the
 * state and the lock stay here for `idleGraceMs`, so that the next request attaches with no
 * round trip: taking and releasing the lock and claiming the epoch were 6 of a request's 16 ms.
 * Any producer, socket or request, attaches here at once meanwhile. Another instance that finds
 * the lock taken waits out one grace and tries again before it refuses (or ends remotely): a
 * session that no request uses is never refused there, only answered up to a grace later.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FanoutHub } from '../fanout/hub.ts';
import type { LiveFrame } from '../samples/live-frames.ts';
import type { SampleBatch } from '../samples/sample-batch.ts';
import type { SessionRecord } from '../storage/session-repository.ts';
import type { WriteQueue } from '../storage/write-queue.ts';
import { type Acceptance, type FrameCommit, type ProducerHandle, SessionState } from './session-state.ts';

export interface SessionLookup {
  claimForProducer(id: string): Promise<{ record: SessionRecord; epoch: number } | null>;
  markEnded(id: string): Promise<SessionRecord | null>;
}

export interface LockPort {
  tryAcquire(sessionId: string): Promise<boolean>;
  release(sessionId: string): Promise<void>;
}

export type AttachOutcome =
  /** `claimed`: the session's record as this attach read it under the lock; null when the session was here already. */
  | { ok: true; state: SessionState; claimed: SessionRecord | null }
  | { ok: false; refusal: 'producer_conflict' | 'session_ended' | 'session_not_found' };

/** Asks the process holding a session's producer to end it; resolves with the ended session, or null if it did not happen in time. */
export type RemoteEnd = (sessionId: string) => Promise<SessionRecord | null>;

/** `not_committed`: what was accepted was not all committed in time; the end is not done, and nothing more is accepted. */
export type EndOutcome =
  | { ok: true; session: SessionRecord }
  | { ok: false; refusal: 'producer_elsewhere' | 'session_not_found' | 'not_committed' };

export interface SessionCoordinatorOptions {
  sessions: SessionLookup;
  locks: LockPort;
  hub: FanoutHub;
  queue: WriteQueue;
  /** Each session's recent window bound in bytes (LIVE_RECENT_WINDOW_BYTES). */
  windowMaxBytes: number;
  /** How to end a session whose producer is on another process; absent (no broker), it cannot be. */
  remoteEnd?: RemoteEnd | null;
  /** How long a session stays here after a producer that awaits its commits left (INGEST_HTTP_LOCK_GRACE_MS); 0: none. */
  idleGraceMs?: number;
  /** Tells the other processes that a session was deleted (the broker's control channel); absent (no broker), there are none. */
  announceDelete?: ((sessionId: string) => void) | null;
}

/** Beyond a grace, what another instance's release takes: its timer firing late, and the unlock's round trip. */
const graceReleaseMarginMs = 50;

export class SessionCoordinator {
  private readonly states = new Map<string, SessionState>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly sessions: SessionLookup;
  private readonly locks: LockPort;
  private readonly hub: FanoutHub;
  private readonly queue: WriteQueue;
  private readonly windowMaxBytes: number;
  private readonly remoteEnd: RemoteEnd | null;
  private readonly idleGraceMs: number;
  private readonly announceDelete: ((sessionId: string) => void) | null;
  /** The sessions kept in an idle grace, each released when its timer fires. */
  private readonly graces = new Map<SessionState, NodeJS.Timeout>();

  constructor(options: SessionCoordinatorOptions) {
    ({ sessions: this.sessions, locks: this.locks, hub: this.hub, queue: this.queue, windowMaxBytes: this.windowMaxBytes } = options);
    this.remoteEnd = options.remoteEnd ?? null;
    this.idleGraceMs = options.idleGraceMs ?? 0;
    this.announceDelete = options.announceDelete ?? null;
  }

  get activeSessionCount(): number {
    return this.states.size;
  }

  attachProducer(sessionId: string, producer: ProducerHandle): Promise<AttachOutcome> {
    return this.serialize(sessionId, async (): Promise<AttachOutcome> => {
      let state = this.states.get(sessionId);
      let claimedRecord: SessionRecord | null = null;
      if (state?.producer) return { ok: false, refusal: 'producer_conflict' };
      if (state?.ended) return { ok: false, refusal: 'session_ended' };
      if (!state) {
        if (!(await this.acquire(sessionId))) return { ok: false, refusal: 'producer_conflict' };
        // Read after taking the lock: only now is the stored lastSeq final.
        const claimed = await this.sessions.claimForProducer(sessionId).catch(async (error: unknown) => {
          await this.locks.release(sessionId);
          throw error;
        });
        if (!claimed || claimed.record.status === 'ended') {
          await this.locks.release(sessionId);
          return { ok: false, refusal: claimed ? 'session_ended' : 'session_not_found' };
        }
        const { record, epoch } = claimed;
        claimedRecord = record;
        state = new SessionState({
          sessionId,
          channels: record.channels,
          lastCommittedSeq: record.lastSeq ?? -1,
          windowMaxBytes: this.windowMaxBytes,
          epoch,
        });
        this.states.set(sessionId, state);
      }
      state.producer = producer;
      return { ok: true, state, claimed: claimedRecord };
    });
  }

  /** Applies the sequence rules, then hands what is new to the viewers and to the writer. */
  acceptFrame(state: SessionState, batch: SampleBatch, hasSeq: boolean, samplesText: Buffer | null, nowMs: number): Acceptance {
    const result = state.accept(batch, hasSeq, samplesText);
    if (result.kind === 'accepted') {
      this.hub.publish(state.sessionId, result.frame);
      this.queue.push(state, result.batch, nowMs, state.producer?.awaitsCommit ?? false);
    } else if (result.kind === 'duplicate' && !state.hasPendingWrites) {
      // Nothing pending: answer now. Otherwise the next commit's cumulative ack covers it.
      state.producer?.sendAck(state.committedSeq);
    }
    return result;
  }

  /**
   * acceptFrame for a producer that awaits its commits (an HTTP ingest request, a connector's
   * poll): waits for room in a full write queue, then for the commit, each at most `waitMs`.
   */
  async commitFrame(
    state: SessionState,
    frame: { batch: SampleBatch; hasSeq: boolean; samplesText: Buffer | null },
    nowMs: number,
    waitMs: number,
  ): Promise<FrameCommit> {
    if (this.queue.isFull && !(await this.queue.drainedWithin(waitMs))) return { kind: 'queue_full' };
    const result = this.acceptFrame(state, frame.batch, frame.hasSeq, frame.samplesText, nowMs);
    if (result.kind === 'ended') return { kind: 'ended' };
    const stored = result.kind === 'accepted' ? result.batch.count : 0;
    const upTo = state.highestAcceptedSeq;
    const committed = await state.committedWithin(waitMs);
    if (state.fenced) return { kind: 'fenced', stored };
    return { kind: committed && state.committedSeq >= upTo ? 'committed' : 'not_committed', stored };
  }

  /** The producer's connection closed: once its writes are committed, let the session go. */
  async detachProducer(state: SessionState, producer: ProducerHandle): Promise<void> {
    if (state.producer !== producer) return;
    state.producer = null;
    await state.whenCommitted();
    if (producer.awaitsCommit && this.idleGraceMs > 0) this.keepForGrace(state);
    else await this.serialize(state.sessionId, () => this.releaseIfIdle(state));
  }

  /**
   * Ends a session once everything accepted for it is committed (docs/protocol.md, ending),
   * waiting at most `commitWaitMs` for that. Idempotent: one that was not committed in time is
   * finished by the next.
   */
  endSession(sessionId: string, commitWaitMs: number): Promise<EndOutcome> {
    return this.serialize(sessionId, async (): Promise<EndOutcome> => {
      const state = this.states.get(sessionId);
      if (state) return this.endHere(state, commitWaitMs);
      if (!(await this.acquire(sessionId))) {
        const session = await this.remoteEnd?.(sessionId);
        return session ? { ok: true, session } : { ok: false, refusal: 'producer_elsewhere' };
      }
      try {
        const session = await this.sessions.markEnded(sessionId);
        if (!session) return { ok: false, refusal: 'session_not_found' };
        this.hub.publishEnd(sessionId);
        return { ok: true, session };
      } finally {
        await this.locks.release(sessionId);
      }
    });
  }

  /**
   * Another process asked to end a session: only the process holding its producer acts.
   * In the session's chain, so that a producer still attaching here is seen once attached.
   */
  endIfLocal(sessionId: string, commitWaitMs: number): Promise<void> {
    return this.serialize(sessionId, async () => {
      const state = this.states.get(sessionId);
      if (state) await this.endHere(state, commitWaitMs);
    });
  }

  /**
   * The session was deleted (its row says so already): its producer and viewers are closed
   * with 4404 here, and on every other process, which hear of it through `announceDelete`.
   */
  sessionDeleted(sessionId: string): Promise<void> {
    this.announceDelete?.(sessionId);
    return this.closeDeletedHere(sessionId);
  }

  /**
   * Closes what this process holds of a deleted session. In the session's chain, so that a
   * producer still attaching (its claim read the row before the delete) is closed once
   * attached. What it had accepted is still committed, to a row that is only hidden, and then
   * the session is let go as after any producer.
   */
  closeDeletedHere(sessionId: string): Promise<void> {
    this.hub.closeDeleted(sessionId);
    return this.serialize(sessionId, async () => {
      const state = this.states.get(sessionId);
      if (!state) return;
      state.ended = true;
      state.producer?.closeForDelete();
      await this.releaseIfIdle(state);
    });
  }

  /**
   * Not done in time, the session stays ended here, accepting nothing more, while its writes
   * go on being retried: the caller asked to end it and will ask again (a producer told
   * `session_ended` meanwhile is told what will be so). The database says so once that end
   * is committed.
   */
  private async endHere(state: SessionState, commitWaitMs: number): Promise<EndOutcome> {
    state.ended = true;
    if (!(await state.committedWithin(commitWaitMs))) return { ok: false, refusal: 'not_committed' };
    const session = await this.sessions.markEnded(state.sessionId);
    if (!session) return { ok: false, refusal: 'session_not_found' };
    this.hub.publishEnd(state.sessionId);
    state.producer?.closeForEnd();
    await this.releaseIfIdle(state);
    return { ok: true, session };
  }

  /** Frames accepted here and maybe not yet committed, for a viewer's catch-up. */
  recentFrames(sessionId: string): LiveFrame[] {
    return this.states.get(sessionId)?.windowSnapshot() ?? [];
  }

  /** The lock of `sessionId` was lost to another process (see ProducerLocks). */
  lockLost(sessionId: string): void {
    const state = this.states.get(sessionId);
    if (!state) return;
    this.states.delete(sessionId);
    state.producer?.closeForConflict();
  }

  /** The session's lock; if another instance holds it, perhaps for an idle grace, it is tried once more after one. */
  private async acquire(sessionId: string): Promise<boolean> {
    if (await this.locks.tryAcquire(sessionId)) return true;
    if (this.idleGraceMs === 0) return false;
    await sleep(this.idleGraceMs + graceReleaseMarginMs);
    return this.locks.tryAcquire(sessionId);
  }

  /** Releases `state` once it has been idle for a grace; a producer attaching meanwhile keeps it. */
  private keepForGrace(state: SessionState): void {
    clearTimeout(this.graces.get(state));
    const timer = setTimeout(() => {
      this.graces.delete(state);
      this.serialize(state.sessionId, () => this.releaseIfIdle(state)).catch(() => undefined);
    }, this.idleGraceMs);
    // A grace never keeps a process alive: exiting frees the lock with its connection.
    timer.unref();
    this.graces.set(state, timer);
  }

  private async releaseIfIdle(state: SessionState): Promise<void> {
    if (state.producer !== null || state.hasPendingWrites || this.states.get(state.sessionId) !== state) return;
    this.states.delete(state.sessionId);
    await this.locks.release(state.sessionId);
  }

  private serialize<T>(sessionId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(sessionId) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.chains.set(sessionId, tail);
    void tail.then(() => {
      if (this.chains.get(sessionId) === tail) this.chains.delete(sessionId);
    });
    return result;
  }
}
