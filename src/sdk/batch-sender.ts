/**
 * What of a producer's unacked buffer goes out when: a batch once `maxBatchSamples` wait or
 * the oldest has waited `maxBatchDelayMs`; frames under the server's limits; nothing while
 * more than 1 MiB sits in the socket or during a hold after a `rate_limited` frame.
 *
 * `sentCount` samples at the front of the buffer went out on the current connection; the
 * rest are unsent. A lost connection or a `rate_limited` frame makes all of them unsent again.
 */
import type { UnackedBuffer } from './unacked-buffer.ts';
import { OPEN, type WebSocketLike } from './websocket.ts';

export interface SendLimits {
  maxBatchSamples: number;
  maxBatchDelayMs: number;
  maxFrameSamples: number;
  maxFrameBytes: number;
}

/** The server's default per-frame sample limit. */
const serverMaxFrameSamples = 10_000;
/**
 * Past this many bytes queued in the socket, sending waits: a server that stopped reading (its
 * write queue is full, docs/protocol.md flow control) leaves our samples in our counted buffer
 * instead of in a second, uncounted copy inside the socket.
 */
const maxSocketBufferedBytes = 1024 * 1024;
const socketDrainPollMs = 10;
/** What a frame adds to its samples: `{"samples":[` and `]}`. */
const frameOverheadChars = '{"samples":[]}'.length;

/** The limits with their defaults, or a RangeError naming the first one out of range. */
export function sendLimits(options: Partial<SendLimits>): SendLimits {
  const { maxBatchSamples = 50, maxBatchDelayMs = 50 } = options;
  const { maxFrameSamples = Math.max(1_000, maxBatchSamples), maxFrameBytes = 512 * 1024 } = options;
  if (!(Number.isInteger(maxFrameSamples) && maxFrameSamples >= 1 && maxFrameSamples <= serverMaxFrameSamples)) {
    throw new RangeError(`maxFrameSamples must be an integer from 1 to ${serverMaxFrameSamples}`);
  }
  if (!(Number.isInteger(maxBatchSamples) && maxBatchSamples >= 1 && maxBatchSamples <= maxFrameSamples)) {
    throw new RangeError(`maxBatchSamples must be an integer from 1 to maxFrameSamples (${maxFrameSamples})`);
  }
  if (!(maxFrameBytes >= 1024)) throw new RangeError('maxFrameBytes must be at least 1024');
  return { maxBatchSamples, maxBatchDelayMs, maxFrameSamples, maxFrameBytes };
}

export class BatchSender {
  private sent = 0;
  /** No sending before this time (Date.now()). */
  private holdUntilMs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  // Samples are ASCII (channel names are restricted to A-Z a-z 0-9 _ . -), so characters are bytes.
  private readonly maxFrameChars: number;

  constructor(
    private readonly buffer: UnackedBuffer,
    private readonly limits: SendLimits,
    /** The open socket to send on, or null. */
    private readonly socket: () => WebSocketLike | null,
    /** After frames went out: `samples` of them, the last with `seq`. */
    private readonly onSent: (seq: number, samples: number) => void,
  ) {
    this.maxFrameChars = limits.maxFrameBytes - frameOverheadChars;
  }

  /** Samples sent on the current connection and not yet acked. */
  get sentCount(): number {
    return this.sent;
  }

  /** Sends now if a batch is full, else once the oldest unsent sample has waited its delay. */
  schedule(): void {
    const unsent = this.buffer.size - this.sent;
    if (unsent <= 0 || this.timer) return;
    if (unsent >= this.limits.maxBatchSamples) this.sendNow();
    else this.timer = setTimeout(() => this.sendNow(), this.limits.maxBatchDelayMs);
  }

  /** Sends every unsent sample now, in frames under the server's limits. */
  sendNow(): void {
    this.cancel();
    const socket = this.socket();
    if (socket === null || socket.readyState !== OPEN) return;
    const holdMs = this.holdUntilMs - Date.now();
    if (holdMs > 0) {
      this.timer = setTimeout(() => this.sendNow(), holdMs);
      return;
    }
    const sentBefore = this.sent;
    while (this.sent < this.buffer.size) {
      if (socket.bufferedAmount > maxSocketBufferedBytes) {
        this.timer = setTimeout(() => this.sendNow(), socketDrainPollMs);
        break;
      }
      const texts = this.buffer.take(this.sent, this.limits.maxFrameSamples, this.maxFrameChars);
      socket.send(`{"samples":[${texts.join(',')}]}`);
      this.sent += texts.length;
    }
    // After the loop, so that a listener that pushes more does not re-enter it.
    if (this.sent > sentBefore) this.onSent(this.buffer.seqAt(this.sent - 1), this.sent - sentBefore);
  }

  /** An ack dropped `count` samples from the front of the buffer. */
  acked(count: number): void {
    this.sent = Math.max(0, this.sent - count);
  }

  /** Sends everything unacked again, after `holdMs`: the server dropped a frame (`rate_limited`). */
  resendAfter(holdMs: number): void {
    this.holdUntilMs = Date.now() + holdMs;
    this.sent = 0;
    this.schedule();
  }

  /** The connection is gone, and with it what was sent on it: nothing is sent until the next. */
  connectionLost(): void {
    this.cancel();
    this.sent = 0;
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
