/**
 * HTTP ingest (docs/protocol.md, HTTP ingest): one request is a producer for as long as it
 * runs. It attaches to the session through the coordinator as a socket producer does (so the
 * session's producer lock is held for the request, on every instance), has its body decoded
 * under the frame rules, hands the batch to the coordinator's commitFrame (the socket's
 * acceptFrame, then a wait for the commit), and detaches before it answers: after a 200, every sample it
 * carried is stored and any producer may attach at once on this instance. The lock stays here
 * for a short idle grace (INGEST_HTTP_LOCK_GRACE_MS, session-coordinator.ts) for the next
 * request; a producer on another instance waits that out rather than being refused.
 *
 * Order of refusals, as on the socket: the route answers 404 and 401; here, 409 (a producer
 * attached, or the session ended), then the body (400, 413), then the rate (429), then a full
 * write queue (503). Each of those stores nothing. A 503 for a commit not done in time is the
 * one refusal after acceptance: what was accepted is still committed when the database
 * allows, and the lock is held until then, so a resend is stored once (its seqs make it
 * duplicates) and cannot overtake it.
 *
 * One request at a time per session: a second, concurrent one is refused with 409 as a second
 * socket producer is with 4409.
 */
import type { FrameErrorCode, ProblemCode } from '../contract/errors.ts';
import type { SessionCoordinator } from '../sessions/session-coordinator.ts';
import type { ProducerHandle, SessionState } from '../sessions/session-state.ts';
import type { SessionRecord } from '../storage/session-repository.ts';
import type { FrameLimits } from './frame-decoder.ts';
import type { IngestCounters, ProducerLog } from './producer-connection.ts';
import { SessionSampleRates } from './rate-limits.ts';
import { type BodyMedia, bodyDecoders } from './sample-bodies.ts';

export interface HttpIngestLimits extends FrameLimits {
  maxSamplesPerS: number;
  httpCommitTimeoutMs: number;
}

/**
 * ack: the session's highest committed seq (-1: none); accepted: samples stored by this
 * request; duplicates: samples dropped as already there.
 */
export interface IngestReceipt {
  ack: number;
  accepted: number;
  duplicates: number;
}

export type IngestOutcome =
  | { ok: true; receipt: IngestReceipt }
  | {
      ok: false;
      code: ProblemCode & (FrameErrorCode | 'producer_conflict' | 'not_found' | 'service_unavailable');
      message: string;
      retryAfterS?: number;
    };

export interface HttpIngestOptions {
  coordinator: SessionCoordinator;
  limits: HttpIngestLimits;
  counters: IngestCounters;
  log: ProducerLog;
}

/**
 * Retry-After of a 429: the budget holds one second of samples, and a body holds at most
 * INGEST_MAX_FRAME_SAMPLES, which config.ts keeps within it, so after a second it fits.
 */
const rateRetryAfterS = 1;
/** Retry-After of a 503: as for a database out of reach, whose outage or restart takes seconds at least. */
const unavailableRetryAfterS = 5;

const nowMs = () => performance.timeOrigin + performance.now();

/** A request as the session's producer: acks are its answer, so it is told nothing on the way. */
class RequestProducer implements ProducerHandle {
  readonly awaitsCommit = true;
  sendAck(): void {}
  closeForEnd(): void {}
  closeForConflict(): void {}
  closeForDelete(): void {}
}

const refusal = (code: Extract<IngestOutcome, { ok: false }>['code'], message: string, retryAfterS?: number): IngestOutcome => ({
  ok: false,
  code,
  message,
  retryAfterS,
});

export class HttpIngest {
  private readonly rates: SessionSampleRates;

  constructor(private readonly options: HttpIngestOptions) {
    this.rates = new SessionSampleRates(options.limits.maxSamplesPerS);
  }

  /** Stores the samples of `body` in `session`, whose credential the caller has checked. */
  async ingest(session: SessionRecord, body: Buffer, media: BodyMedia): Promise<IngestOutcome> {
    if (session.status === 'ended') return refusal('session_ended', 'the session has ended');
    const producer = new RequestProducer();
    const attached = await this.options.coordinator.attachProducer(session.id, producer);
    if (!attached.ok) {
      if (attached.refusal === 'session_not_found') return refusal('not_found', `no session ${session.id}`);
      return attached.refusal === 'session_ended'
        ? refusal('session_ended', 'the session has ended')
        : refusal('producer_conflict', 'a producer is attached to this session; retry once it has left');
    }
    const { state } = attached;
    const outcome = await this.accept(state, session, body, media);
    const detached = this.options.coordinator.detachProducer(state, producer).catch((error: unknown) => {
      this.options.log.error({ err: error, sessionId: session.id }, 'detaching an HTTP ingest request failed');
    });
    // Not committed in time: the lock goes once it is, without the client waiting for it.
    if (outcome.ok) await detached;
    return outcome;
  }

  private async accept(state: SessionState, session: SessionRecord, body: Buffer, media: BodyMedia): Promise<IngestOutcome> {
    const { limits, counters, coordinator } = this.options;
    const receivedAtMs = nowMs();
    const decoded = bodyDecoders[media](body, session.channels, { ...limits, nullable: session.nullable }, receivedAtMs);
    if (!decoded.ok) {
      counters.rejected(decoded.code, 0);
      return refusal(decoded.code, decoded.message);
    }
    const { batch } = decoded;
    if (!this.rates.tryTake(session.id, batch.count, receivedAtMs)) {
      counters.rejected('rate_limited', batch.count);
      return refusal('rate_limited', `over ${limits.maxSamplesPerS} samples/s for this session; resend later`, rateRetryAfterS);
    }
    const frame = await coordinator.commitFrame(state, decoded, receivedAtMs, limits.httpCommitTimeoutMs);
    if (frame.kind === 'queue_full') {
      return refusal(
        'service_unavailable',
        'the write queue is full (the database is slow or out of reach); nothing was stored',
        unavailableRetryAfterS,
      );
    }
    if (frame.kind === 'ended') {
      counters.rejected('session_ended', batch.count);
      return refusal('session_ended', 'the session has ended');
    }
    const accepted = frame.stored;
    counters.accepted(accepted, batch.count - accepted);
    if (frame.kind === 'fenced') {
      return refusal('producer_conflict', 'another instance took this session meanwhile; resend what was not acked');
    }
    if (frame.kind === 'not_committed') {
      return refusal(
        'service_unavailable',
        `the samples were accepted but not committed within ${limits.httpCommitTimeoutMs} ms; ` +
          'resend them (what was stored is dropped as duplicates)',
        unavailableRetryAfterS,
      );
    }
    return { ok: true, receipt: { ack: state.committedSeq, accepted, duplicates: batch.count - accepted } };
  }
}
