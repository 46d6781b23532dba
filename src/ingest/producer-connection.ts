/**
 * One producer's ingest socket (docs/protocol.md, ingest socket): decodes each frame, applies
 * the limits, hands accepted samples to the coordinator, answers bad frames with error frames,
 * and forwards acks. Frames are handled synchronously in arrival order; frames that arrive
 * before the producer is attached wait in a short queue.
 *
 * Backpressure: when the write queue is full the socket stops reading (ws pause), so TCP
 * pushes back on the producer; it resumes when the queue has drained.
 *
 * Failures: a bad frame is a value (an error frame). An exception while handling a frame or
 * sending an ack is a bug; it must not leave this class: thrown from a ws 'message' listener,
 * it would be an uncaught exception and end the process with every other socket. It closes
 * this socket with 1011 (the producer reconnects and resends what was not acked), is logged
 * at error with the session id and at most the frame's first 200 bytes, and is counted.
 */
import type { WebSocket } from 'ws';
import { closeCodes, type FrameErrorCode } from '../contract/errors.ts';
import { BatchSlabs } from '../samples/batch-slabs.ts';
import type { AttachOutcome, SessionCoordinator } from '../sessions/session-coordinator.ts';
import type { ProducerHandle, SessionState } from '../sessions/session-state.ts';
import type { WriteQueue } from '../storage/write-queue.ts';
import { decodeBinaryFrame, decodeTextFrame, type FrameLimits, type FrameRules } from './frame-decoder.ts';
import { RejectionCounter, SampleRateLimiter } from './rate-limits.ts';

export interface ProducerLimits extends FrameLimits {
  maxSamplesPerS: number;
  maxRejectedFramesPerMinute: number;
}

/** What the connection reports (observability/metrics.ts gives the implementation). */
export interface IngestCounters {
  frame(encoding: 'json' | 'binary'): void;
  accepted(newSamples: number, duplicateSamples: number): void;
  rejected(code: FrameErrorCode, samples: number): void;
  paused(): void;
  handlerFailed(): void;
}

/** The frame decoders; a test hands in a faulty one to see its failure stay within its socket. */
export interface FrameDecoders {
  text: typeof decodeTextFrame;
  binary: typeof decodeBinaryFrame;
}

const realDecoders: FrameDecoders = { text: decodeTextFrame, binary: decodeBinaryFrame };

/** Of a frame whose handling failed, this much is logged: enough to recognise it, never a whole frame. */
const loggedFrameBytes = 200;

export interface ProducerLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

function headOf(data: Buffer, isBinary: boolean): string {
  const head = data.subarray(0, loggedFrameBytes);
  return isBinary ? head.toString('hex') : head.toString('utf8');
}

const nowMs = () => performance.timeOrigin + performance.now();

export interface ProducerConnectionOptions {
  socket: WebSocket;
  sessionId: string;
  /** The session's channels, in the order its frames give values. */
  channels: readonly string[];
  /** Whether the session's values may be null. */
  nullable: boolean;
  coordinator: SessionCoordinator;
  /** Watched for backpressure: while it is full, the socket is not read. */
  queue: WriteQueue;
  limits: ProducerLimits;
  log: ProducerLog;
  counters: IngestCounters;
  /** Absent: the real ones. */
  decoders?: FrameDecoders;
}

export class ProducerConnection implements ProducerHandle {
  /** A socket streams on without waiting for acks: its batches age with the rest. */
  readonly awaitsCommit = false;
  private state: SessionState | null = null;
  private early: Array<{ data: Buffer; isBinary: boolean }> | null = [];
  private readonly rateLimiter: SampleRateLimiter;
  private readonly rejections: RejectionCounter;
  private paused = false;
  private readonly slabs = new BatchSlabs();
  private readonly socket: WebSocket;
  private readonly sessionId: string;
  private readonly channels: readonly string[];
  private readonly coordinator: SessionCoordinator;
  private readonly queue: WriteQueue;
  private readonly limits: ProducerLimits;
  private readonly frameRules: FrameRules;
  private readonly log: ProducerLog;
  private readonly counters: IngestCounters;
  private readonly decoders: FrameDecoders;

  constructor(options: ProducerConnectionOptions) {
    this.socket = options.socket;
    this.sessionId = options.sessionId;
    this.channels = options.channels;
    this.coordinator = options.coordinator;
    this.queue = options.queue;
    this.limits = options.limits;
    this.frameRules = {
      maxFrameBytes: options.limits.maxFrameBytes,
      maxFrameSamples: options.limits.maxFrameSamples,
      nullable: options.nullable,
    };
    this.log = options.log;
    this.counters = options.counters;
    this.decoders = options.decoders ?? realDecoders;
    this.rateLimiter = new SampleRateLimiter(this.limits.maxSamplesPerS, nowMs());
    this.rejections = new RejectionCounter(this.limits.maxRejectedFramesPerMinute);
  }

  /** Starts listening at once (no frame is lost), then attaches to the session. */
  async start(): Promise<void> {
    // Not read until attached (a database round trip): what arrives meanwhile waits in
    // `early`, which the pause bounds to what the socket had already buffered.
    this.socket.pause();
    this.socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.early) this.early.push({ data, isBinary });
      else this.handleGuarded(data, isBinary);
    });
    this.socket.once('close', () => {
      if (this.state) this.detach(this.state);
    });
    let outcome: AttachOutcome;
    try {
      outcome = await this.coordinator.attachProducer(this.sessionId, this);
    } finally {
      // Read again either way: a refused socket must read the peer's closing handshake.
      this.socket.resume();
    }
    if (!outcome.ok) {
      const reason = outcome.refusal === 'session_not_found' ? closeCodes.session_not_found : closeCodes.producer_conflict;
      const text =
        outcome.refusal === 'session_ended'
          ? 'session has ended'
          : outcome.refusal === 'producer_conflict'
            ? 'a producer is already connected'
            : 'unknown session';
      this.socket.close(reason.code, text);
      return;
    }
    this.state = outcome.state;
    if (this.socket.readyState !== this.socket.OPEN) {
      this.detach(this.state);
      return;
    }
    const early = this.early ?? [];
    this.early = null;
    for (const frame of early) this.handleGuarded(frame.data, frame.isBinary);
  }

  /** Called by the writer's commit path: a failure here must stay with this producer. */
  sendAck(seq: number): void {
    try {
      if (this.socket.readyState === this.socket.OPEN) this.socket.send(`{"type":"ack","seq":${seq}}`);
    } catch (error) {
      this.fail(error, null);
    }
  }

  closeForEnd(): void {
    this.socket.close(closeCodes.normal.code, 'session ended');
  }

  closeForConflict(): void {
    this.socket.close(closeCodes.producer_conflict.code, 'another producer took this session');
  }

  closeForDelete(): void {
    this.socket.close(closeCodes.session_not_found.code, 'session deleted');
  }

  private handleGuarded(data: Buffer, isBinary: boolean): void {
    try {
      this.handle(data, isBinary);
    } catch (error) {
      this.fail(error, { data, isBinary });
    }
  }

  private fail(error: unknown, frame: { data: Buffer; isBinary: boolean } | null): void {
    const seen = frame === null ? {} : { frameBytes: frame.data.length, frameHead: headOf(frame.data, frame.isBinary) };
    this.log.error({ err: error, sessionId: this.sessionId, ...seen }, 'a producer socket handler failed; closing it with 1011');
    this.counters.handlerFailed();
    this.socket.close(closeCodes.internal_error.code, 'internal error; reconnect and resend what was not acked');
  }

  /**
   * Detaching waits for what was accepted to be committed; its failure is logged, never left an
   * unhandled rejection (which ends the process).
   */
  private detach(state: SessionState): void {
    this.coordinator.detachProducer(state, this).catch((error: unknown) => {
      this.log.error({ err: error, sessionId: this.sessionId }, 'detaching a closed producer failed');
    });
  }

  private handle(data: Buffer, isBinary: boolean): void {
    const state = this.state!;
    // Closing (ended, shutdown): nothing more is accepted, so nothing can be left unacked here.
    if (this.socket.readyState !== this.socket.OPEN) return;
    const receivedAtMs = nowMs();
    this.counters.frame(isBinary ? 'binary' : 'json');
    this.slabs.mark();
    const decoded = isBinary
      ? this.decoders.binary(data, this.channels.length, this.frameRules, this.slabs.allocate)
      : this.decoders.text(data, this.channels, this.frameRules, receivedAtMs, this.slabs.allocate);
    if (!decoded.ok) {
      this.slabs.dropSinceMark();
      return this.reject(decoded.code, decoded.message);
    }
    const { batch } = decoded;
    if (!this.rateLimiter.tryTake(batch.count, receivedAtMs)) {
      this.slabs.dropSinceMark();
      // Not misbehaviour (docs/protocol.md, flow control): the producer is told, stores
      // nothing, and may resend.
      this.counters.rejected('rate_limited', batch.count);
      return this.sendError('rate_limited', `over ${this.limits.maxSamplesPerS} samples/s; resend later`);
    }
    const result = this.coordinator.acceptFrame(state, batch, decoded.hasSeq, decoded.samplesText, receivedAtMs);
    // Only a frame accepted whole is kept: of a partial duplicate, a copy of its new samples is.
    if (result.kind !== 'accepted' || result.batch !== batch) this.slabs.dropSinceMark();
    if (result.kind === 'ended') {
      this.counters.rejected('session_ended', batch.count);
      return this.sendError('session_ended', 'the session has ended');
    }
    const fresh = result.kind === 'accepted' ? result.batch.count : 0;
    this.counters.accepted(fresh, batch.count - fresh);
    if (this.queue.isFull && !this.paused) this.pauseUntilDrained();
  }

  private reject(code: FrameErrorCode, message: string): void {
    this.counters.rejected(code, 0);
    this.sendError(code, message);
    if (this.rejections.recordAndCheck(Date.now())) {
      this.log.warn({ sessionId: this.sessionId }, 'closing producer after too many rejected frames');
      this.socket.close(closeCodes.policy_violation.code, 'too many rejected frames');
    }
  }

  private sendError(code: FrameErrorCode, message: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify({ type: 'error', code, message }));
  }

  private pauseUntilDrained(): void {
    this.paused = true;
    this.counters.paused();
    this.socket.pause();
    this.queue.onceDrained(() => {
      this.paused = false;
      this.socket.resume();
    });
  }
}
