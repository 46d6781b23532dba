/**
 * What a Producer's user sees besides the class: its options and their defaults, its events
 * and its error (producer.ts holds the logic).
 */
import type { BackoffOptions } from './backoff.ts';
import { type SendLimits, sendLimits } from './batch-sender.ts';
import type { AccessCredential, Session } from './types.ts';
import type { WebSocketConstructor } from './websocket.ts';

export interface ProducerOptions {
  baseUrl: string;
  sessionId: string;
  token: string;
  /** The session's channels, checked against the session at connect. Default ax, ay, az. */
  channels?: readonly string[];
  /** Whether pushed values may be null; the session must be nullable then (checked at connect). Default false. */
  nullable?: boolean;
  /** A batch goes out when it holds this many samples... */
  maxBatchSamples?: number;
  /** ...or when its oldest sample has waited this long, whichever comes first. */
  maxBatchDelayMs?: number;
  /** Above this many unacked samples, `push` returns false (the samples are still kept). Default 100,000. */
  maxUnackedSamples?: number;
  /** A connection with samples sent and no ack for this long is presumed dead and replaced. Default 30 s. */
  ackTimeoutMs?: number;
  /** How long to hold back after a `rate_limited` error frame before resending. Default 500 ms. */
  rateLimitedRetryMs?: number;
  /**
   * Frame limits for backlogs (a resend after a reconnect): at most this many samples and
   * bytes a frame. Defaults (1,000 samples, 512 KiB) sit under the server's default limits
   * (10,000 samples, 1 MiB); lower them for a server configured lower.
   */
  maxFrameSamples?: number;
  maxFrameBytes?: number;
  backoff?: BackoffOptions;
  /**
   * Called as `new WebSocket(url)`, so the token goes in the URL (`?token=`). Without it, Node
   * uses the `ws` package and sends the token as `Authorization: Bearer`, out of URLs that
   * proxies and servers log; browsers use their WebSocket, which cannot send headers.
   */
  WebSocket?: WebSocketConstructor;
  fetch?: typeof fetch;
  /**
   * What the producer reads the session with (its channels, its last seq); without it, the
   * ingest token, which reads its own session's record in either mode. The socket presents the
   * ingest token alone, which writes to the session and ends it.
   */
  credential?: AccessCredential;
}

/** The options a Producer runs on, defaults filled in; a RangeError when one is out of range. */
export function producerSettings(options: ProducerOptions): {
  limits: SendLimits;
  maxUnackedSamples: number;
  ackTimeoutMs: number;
  rateLimitedRetryMs: number;
} {
  const limits = sendLimits(options);
  const { maxUnackedSamples = 100_000, ackTimeoutMs = 30_000, rateLimitedRetryMs = 500 } = options;
  if (!(limits.maxBatchDelayMs >= 0 && maxUnackedSamples >= 1 && ackTimeoutMs > 0 && rateLimitedRetryMs >= 0)) {
    throw new RangeError('maxBatchDelayMs and rateLimitedRetryMs must be >= 0, maxUnackedSamples and ackTimeoutMs > 0');
  }
  return { limits, maxUnackedSamples, ackTimeoutMs, rateLimitedRetryMs };
}

export class ProducerError extends Error {
  constructor(
    /** A frame error code (docs/errors.md), or session_not_found, invalid_token, session_ended, closed, timeout... */
    readonly code: string,
    message: string,
    /** Fatal: the producer has stopped; pushes throw and pending flushes reject. */
    readonly fatal: boolean,
  ) {
    super(message);
    this.name = 'ProducerError';
  }
}

export interface DisconnectInfo {
  code: number;
  reason: string;
  willReconnect: boolean;
  retryInMs: number | null;
}

export interface ProducerEvents {
  /** A connection was accepted; `resentSamples` unacked samples went out again on it. */
  connected: { resentSamples: number };
  disconnected: DisconnectInfo;
  /** Samples went out (a resend after a reconnect included): `samples` of them, the last with `seq`. */
  sent: { seq: number; samples: number };
  ack: { seq: number; bufferedSamples: number };
  error: ProducerError;
  drain: undefined;
}

/** Why a producer cannot write to `session` as it was set up (fatal), or null when it can. */
export function sessionMismatch(session: Session, codec: { channels: readonly string[]; nullable: boolean }): ProducerError | null {
  const expected = codec.channels.join(',');
  if (session.channels.join(',') !== expected) {
    return new ProducerError('wrong_channels', `the session's channels are ${session.channels.join(', ')}, not ${expected}`, true);
  }
  if (codec.nullable && !session.nullable) {
    return new ProducerError('not_nullable', 'the producer sends nulls, and the session was not created nullable', true);
  }
  return null;
}
