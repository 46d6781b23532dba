/**
 * A producer that never loses what it pushed while the session is open (docs/protocol.md, "what
 * a producer must resend"). Its parts: the socket and its close codes (reconnecting-socket.ts),
 * seqs (seq-assigner.ts), acks and their waiters (ack-ledger.ts), the wait for an ack
 * (ack-deadline.ts), batches and frames (batch-sender.ts); here, what each event means.
 *
 * Invariants:
 * - Every pushed sample is kept until an ack covers it: in the buffer, encoded once, or,
 *   numbered by the SDK before the first accepted connection, waiting for its seq. Acks are
 *   cumulative: `ack N` drops every sample with seq <= N.
 * - After any reconnect the whole buffer is sent again, oldest first, before anything new;
 *   so is it after a `rate_limited` frame, once the hold is over. The server drops what it
 *   already accepted (seq at or below its highest) and acks it, so storage holds each sample
 *   exactly once.
 * - Samples went out on the current connection or not at all: a close makes every one of them
 *   unsent again, and nothing is sent but on an open connection.
 * - A connection counts as accepted at its first ack: the empty probe batch sent first is
 *   answered, after the server took the producer lock, with the session's highest committed
 *   seq, where SDK seqs go on, so a restarted producer process continues the stored seqs.
 *
 * Connection policy: fatal close codes (4401, 4403, 4404, 1008, 1009) and a refused read of the
 * session (401, 403; with the credential, else the ingest token) stop the producer; 1000 means
 * it ended; anything else (1006, 1011, 1012, 1013 while the database is out of reach, 4409 while
 * the previous lock lingers, no ack in `ackTimeoutMs`) reconnects after a backoff.
 *
 * Backpressure: `push` returns false once more than `maxUnackedSamples` are unacked; the
 * samples are kept all the same, and 'drain' (or `ready()`) says when to go on.
 */
import { closeCodes } from '../contract/errors.ts';
import { ingestTokenCredential } from './access-credentials.ts';
import { AckDeadline } from './ack-deadline.ts';
import { AckLedger } from './ack-ledger.ts';
import { BatchSender } from './batch-sender.ts';
import { TypedEmitter } from './emitter.ts';
import { ProducerError, type ProducerEvents, type ProducerOptions, producerSettings, sessionMismatch } from './producer-api.ts';
import { type CloseMeaning, fatalCode, ReconnectingSocket, type ServerFrame, type SocketTarget } from './reconnecting-socket.ts';
import { endSession } from './rest.ts';
import { SampleCodec } from './sample-json.ts';
import { SeqAssigner } from './seq-assigner.ts';
import { defaultChannels, type SampleInput, type Session } from './types.ts';
import { UnackedBuffer } from './unacked-buffer.ts';

type State = 'connecting' | 'open' | 'retrying' | 'ended' | 'closed' | 'failed';

/** An empty batch is answered with an ack of the highest committed seq: proof of acceptance. */
const probeFrame = '{"samples":[]}';

const nowMs = () => performance.timeOrigin + performance.now();

export class Producer extends TypedEmitter<ProducerEvents> {
  private state: State = 'connecting';
  private accepted = false;
  private session: Session | null = null;
  /** After a 4409, which also answers a producer of an ended session: look before trying again. */
  private mustCheckEnded = false;
  private ending = false;
  private failure: ProducerError | null = null;

  private readonly link: ReconnectingSocket;
  private readonly codec: SampleCodec;
  private readonly seqs = new SeqAssigner();
  private readonly buffer = new UnackedBuffer();
  private readonly acks: AckLedger;
  private readonly sender: BatchSender;
  private resentOnOpen = 0;
  private readonly ackDeadline: AckDeadline;
  private readonly rateLimitedRetryMs: number;

  constructor(private readonly options: ProducerOptions) {
    super();
    const { limits, maxUnackedSamples, ackTimeoutMs, rateLimitedRetryMs } = producerSettings(options);
    this.rateLimitedRetryMs = rateLimitedRetryMs;
    this.codec = new SampleCodec(options.channels ?? defaultChannels, options.nullable === true);
    this.acks = new AckLedger(maxUnackedSamples);
    this.ackDeadline = new AckDeadline(ackTimeoutMs, () => this.link.abandon(`no ack within ${ackTimeoutMs} ms`));
    this.sender = new BatchSender(
      this.buffer,
      limits,
      () => (this.finished ? null : this.link.socket),
      (seq, samples) => {
        this.ackDeadline.arm();
        this.emit('sent', { seq, samples });
      },
    );
    const linkOptions = { ...options, credential: options.credential ?? ingestTokenCredential(options.token) };
    this.link = new ReconnectingSocket(linkOptions, {
      readsSession: () => this.session === null || this.mustCheckEnded,
      target: (session) => this.target(session),
      // Also the connect timeout: the probe is answered on every accepted connection.
      opening: () => this.ackDeadline.arm(),
      open: (socket) => {
        socket.send(probeFrame);
        this.resentOnOpen = this.buffer.size;
        this.sender.sendNow();
      },
      message: (frame) => this.onMessage(frame),
      closed: (code, reason, meaning) => this.onClose(code, reason, meaning),
      notFound: () => this.fail(new ProducerError('session_not_found', `no session ${options.sessionId}`, true)),
      denied: (error) => this.fail(new ProducerError(error.code, `the server refused the session's read: ${error.message}`, true)),
    });
    void this.link.connect();
  }

  /** Pushed and not yet acked. */
  get bufferedSamples(): number {
    return this.buffer.size + this.seqs.waitingCount;
  }

  /** The highest seq acked, or null before the first ack. */
  get lastAckedSeq(): number | null {
    return this.acks.lastAckedSeq;
  }

  /** The seq of the last sample pushed, or null when it is not assigned yet (or nothing was pushed). */
  get lastPushedSeq(): number | null {
    return this.seqs.lastSeq;
  }

  /** On an accepted connection now. */
  get connected(): boolean {
    return this.accepted && this.state === 'open';
  }

  /**
   * Buffers samples and sends them in batches. Returns false when more than
   * `maxUnackedSamples` are unacked: wait for 'drain' or `ready()` before pushing more.
   * Throws (and pushes nothing) on a sample that does not fit the session's channels, on a
   * mix of samples with and without seq, on caller seqs that do not increase, and after
   * end(), close() or a fatal error.
   */
  push(input: SampleInput | readonly SampleInput[]): boolean {
    if (this.failure) throw this.failure;
    if (this.ending || this.state === 'closed' || this.state === 'ended') {
      throw new ProducerError('closed', 'push after end() or close()', true);
    }
    const samples: readonly SampleInput[] = Array.isArray(input) ? input : [input as SampleInput];
    this.seqs.admit(samples, (sample, index) => this.codec.validate(sample, index));
    if (samples.length === 0) return this.acks.withinBound;
    const now = nowMs();
    for (const sample of samples) {
      const t = sample.t ?? now;
      const seq = this.seqs.assign(sample, t);
      if (seq !== null) this.buffer.push(seq, this.codec.encode(seq, t, sample));
    }
    const withinBound = this.acks.pushed(samples.length);
    this.sender.schedule();
    return withinBound;
  }

  /** Resolves at once when at most `maxUnackedSamples` are unacked, else at the next 'drain'. */
  ready(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.acks.withinBound) return Promise.resolve();
    if (this.finished) return Promise.reject(new ProducerError('closed', 'the producer has stopped', true));
    return this.acks.drained();
  }

  /**
   * Sends what is batched now and resolves when everything pushed so far is acked, i.e.
   * committed. Rejects on a fatal error, on close(), or after `timeoutMs` (not fatal).
   */
  flush({ timeoutMs }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.state === 'closed') return Promise.reject(new ProducerError('closed', 'the producer is closed', true));
    if (this.acks.unacked === 0) return Promise.resolve();
    const late = () => new ProducerError('timeout', `flush: ${this.bufferedSamples} samples still unacked after ${timeoutMs} ms`, false);
    const acked = this.acks.allAcked(timeoutMs, late);
    this.sender.sendNow();
    return acked;
  }

  /** Flushes, then ends the session (REST), and stops. Resolves with the ended session. */
  async end({ timeoutMs }: { timeoutMs?: number } = {}): Promise<Session> {
    if (this.failure) throw this.failure;
    if (this.state === 'closed') throw new ProducerError('closed', 'the producer is closed', true);
    this.ending = true;
    if (this.state !== 'ended') await this.flush({ timeoutMs });
    const session = await endSession(this.options.baseUrl, this.options.sessionId, this.options.token, { fetch: this.options.fetch });
    this.finishEnded();
    return session;
  }

  /** Stops at once. Samples not yet acked are given up; pending flushes reject. */
  close(): void {
    if (this.state === 'closed' || this.state === 'failed' || this.state === 'ended') return;
    this.state = 'closed';
    this.stopEverything();
    this.acks.rejectAll(new ProducerError('closed', 'the producer was closed', true));
  }

  private get finished(): boolean {
    return this.state === 'ended' || this.state === 'closed' || this.state === 'failed';
  }

  /** Checks the session when it was read; the ingest token goes in a header where the socket can send one. */
  private target(session: Session | null): SocketTarget | null {
    if (session !== null) {
      this.mustCheckEnded = false;
      if (session.status === 'ended') {
        this.sessionEnded();
        return null;
      }
      const mismatch = sessionMismatch(session, this.codec);
      if (mismatch !== null) {
        this.fail(mismatch);
        return null;
      }
      this.session = session;
    }
    return { path: `/sessions/${encodeURIComponent(this.options.sessionId)}/ingest`, ingestToken: this.options.token };
  }

  private onMessage(frame: ServerFrame): void {
    if (frame.type === 'ack' && typeof frame.seq === 'number') this.onAck(frame.seq);
    else if (frame.type === 'error') this.onErrorFrame(String(frame.code), String(frame.message));
  }

  private onAck(seq: number): void {
    const acceptedNow = !this.accepted;
    if (acceptedNow) {
      this.accepted = true;
      this.state = 'open';
      this.link.resetBackoff();
      for (const numbered of this.seqs.start(Math.max(seq, this.session?.lastSeq ?? 0, 0) + 1)) {
        this.buffer.push(numbered.seq, this.codec.encode(numbered.seq, numbered.sample.t, numbered.sample));
      }
    }
    const dropped = this.buffer.dropThrough(seq);
    this.acks.acked(seq, dropped);
    this.sender.acked(dropped);
    this.ackDeadline.clear();
    if (this.sender.sentCount > 0) this.ackDeadline.arm();
    if (acceptedNow) this.emit('connected', { resentSamples: this.resentOnOpen });
    this.emit('ack', { seq, bufferedSamples: this.bufferedSamples });
    if (this.acks.settle()) this.emit('drain', undefined);
    this.sender.schedule();
  }

  private onErrorFrame(code: string, message: string): void {
    if (code === 'rate_limited') {
      // Not misbehaviour: hold back, then send everything unacked again (what the server
      // already has is dropped as duplicates and acked).
      this.emit('error', new ProducerError(code, message, false));
      this.sender.resendAfter(this.rateLimitedRetryMs);
      return;
    }
    if (code === 'session_ended') return this.sessionEnded();
    // Every sample was validated at push, so a rejected frame means the SDK and the server
    // disagree about the contract: stop loudly rather than drop data quietly.
    this.fail(new ProducerError(code, `the server rejected a frame: ${message}`, true));
  }

  private onClose(code: number, reason: string, { outcome, name }: CloseMeaning): void {
    this.accepted = false;
    this.sender.connectionLost();
    this.ackDeadline.clear();
    if (this.finished) return;
    if (outcome === 'ended') {
      if (!this.ending) return this.sessionEnded();
      this.emit('disconnected', { code, reason, willReconnect: false, retryInMs: null });
      return this.finishEnded();
    }
    if (outcome === 'fatal') {
      this.emit('disconnected', { code, reason, willReconnect: false, retryInMs: null });
      const message = `the server closed the ingest socket with ${code}${reason ? ` (${reason})` : ''}`;
      return this.fail(new ProducerError(fatalCode(name, reason), message, true));
    }
    if (code === closeCodes.producer_conflict.code) this.mustCheckEnded = true;
    this.state = 'retrying';
    this.emit('disconnected', { code, reason, willReconnect: true, retryInMs: this.link.retry() });
  }

  private sessionEnded(): void {
    if (this.ending) return this.finishEnded();
    this.fail(new ProducerError('session_ended', 'the session was ended; nothing more can be sent', true));
  }

  private finishEnded(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.stopEverything();
    this.acks.rejectAll(new ProducerError('session_ended', `the session ended with ${this.bufferedSamples} samples unacked`, true));
  }

  private fail(error: ProducerError): void {
    if (this.finished) return;
    this.state = 'failed';
    this.failure = error;
    this.stopEverything();
    this.emit('error', error);
    this.acks.rejectAll(error);
  }

  private stopEverything(): void {
    this.sender.connectionLost();
    this.ackDeadline.clear();
    this.link.stop('producer stopped');
    this.accepted = false;
  }
}
