/**
 * The frames the server sends viewers, encoded at most once per batch: the same bytes go to
 * every viewer of the session and to the broker (docs/architecture.md, principle 3). Viewers
 * are sent whole WebSocket messages, framed here once rather than by ws once per viewer
 * (live/viewer-socket.ts); the JSON text is a view into the same buffer, not a copy.
 *
 * Two levers keep this off the ingest hot path (profile in docs/performance.md):
 * - When the producer's frame holds exactly the accepted samples, each with its seq and t,
 *   the frame's own samples text is forwarded as it is: it was just validated, and every
 *   number in it parses to the float64 that is stored. Formatting doubles was the largest
 *   single cost of ingest.
 * - Either way the message is built only when first asked for (a viewer or the broker), so
 *   a session nobody watches never pays for it: framing every JSON frame eagerly, a 4 KB
 *   allocation and copy, was about 6 % of the server's CPU at full JSON ingest.
 * The batch rides along so a viewer joining mid-frame can be sent just the part it lacks.
 */
import type { SampleBatch } from './sample-batch.ts';
import { samplesJson } from './sample-text.ts';

const framePrefix = Buffer.from('{"type":"samples_batch","payload":{"samples":');
const frameSuffix = Buffer.from('}}');
const openBracket = Buffer.from('[');
const closeBracket = Buffer.from(']');

/** One unmasked, unfragmented WebSocket text message holding the parts (RFC 6455, 5.2): what a server sends. */
export function textMessage(parts: readonly Buffer[]): Buffer {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const message = Buffer.allocUnsafe(headerLength + length);
  message[0] = 0x81; // FIN, opcode 1: text
  if (headerLength === 2) message[1] = length;
  else if (headerLength === 4) {
    message[1] = 126;
    message.writeUInt16BE(length, 2);
  } else {
    message[1] = 127;
    message.writeBigUInt64BE(BigInt(length), 2);
  }
  let offset = headerLength;
  for (const part of parts) offset += part.copy(message, offset);
  return message;
}

/** The payload of a message made by textMessage. */
function payloadOf(message: Buffer): Buffer {
  return message.subarray(message[1] < 126 ? 2 : message[1] === 126 ? 4 : 10);
}

export class LiveFrame {
  private json: Buffer | null;
  private framed: Buffer | null = null;
  private samplesText: Buffer | null;

  /**
   * @param prevSeq The session's highest accepted seq before this batch (-1: none). A viewer
   * whose last seen seq is below it has missed samples (another process's frames published
   * before it subscribed, say) and fetches them from the database before going on.
   * @param samplesText The producer's own JSON array text of exactly these samples, if any.
   */
  constructor(
    readonly batch: SampleBatch,
    private readonly columnKeys: readonly Uint8Array[],
    readonly prevSeq: number,
    samplesText: Buffer | null = null,
    encoded: Buffer | null = null,
  ) {
    this.json = encoded;
    this.samplesText = encoded === null ? samplesText : null;
  }

  /** A frame received from another process, already encoded there. */
  static received(batch: SampleBatch, prevSeq: number, bytes: Buffer): LiveFrame {
    return new LiveFrame(batch, [], prevSeq, null, bytes);
  }

  /** The frame's JSON text: what the broker carries and byte bounds count. */
  get bytes(): Buffer {
    this.json ??= payloadOf(this.message);
    return this.json;
  }

  /** The frame as the WebSocket message every viewer is sent. */
  get message(): Buffer {
    if (this.framed === null) {
      if (this.json) this.framed = textMessage([this.json]);
      else if (this.samplesText) this.framed = textMessage([framePrefix, this.samplesText, frameSuffix]);
      else this.framed = samplesMessage(this.batch, this.columnKeys);
      this.samplesText = null;
    }
    return this.framed;
  }
}

/** The samples_batch message of `batch`, encoded straight into bytes. */
export function samplesMessage(batch: SampleBatch, columnKeys: readonly Uint8Array[]): Buffer {
  return textMessage([framePrefix, openBracket, samplesJson(batch, columnKeys), closeBracket, frameSuffix]);
}

export const sessionEndedMessage = textMessage([Buffer.from('{"type":"session_ended"}')]);
