/**
 * How a live frame crosses the broker to other processes: its encoded JSON bytes (sent to
 * viewers as they are, never re-encoded) and its batch's columns (so receivers can cut
 * overlaps without parsing JSON), behind a small header.
 *
 * Layout (little-endian): kind u8 (1 samples, 2 session ended) | origin 16 bytes |
 * prevSeq f64 | channelCount u16 | sampleCount u32 | textLength u32 | text | columns f64[].
 */
import { LiveFrame } from '../samples/live-frames.ts';
import { SampleBatch } from '../samples/sample-batch.ts';

const headerBytes = 1 + 16 + 8 + 2 + 4 + 4;
const kindSamples = 1;
const kindEnded = 2;

export type BrokerMessage = { origin: string; kind: 'samples'; frame: LiveFrame } | { origin: string; kind: 'ended' };

function writeOrigin(out: Buffer, origin: string): void {
  out.write(origin.replace(/-/g, ''), 1, 16, 'hex');
}

function readOrigin(message: Buffer): string {
  return message.toString('hex', 1, 17);
}

export function normalizeOrigin(origin: string): string {
  return origin.replace(/-/g, '');
}

export function encodeFrameMessage(origin: string, frame: LiveFrame): Buffer {
  const { batch, bytes } = frame;
  const out = Buffer.allocUnsafe(headerBytes + bytes.length + batch.byteLength);
  out.writeUInt8(kindSamples, 0);
  writeOrigin(out, origin);
  out.writeDoubleLE(frame.prevSeq, 17);
  out.writeUInt16LE(batch.channelCount, 25);
  out.writeUInt32LE(batch.count, 27);
  out.writeUInt32LE(bytes.length, 31);
  bytes.copy(out, headerBytes);
  Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.byteLength).copy(out, headerBytes + bytes.length);
  return out;
}

export function encodeEndedMessage(origin: string): Buffer {
  const out = Buffer.alloc(headerBytes);
  out.writeUInt8(kindEnded, 0);
  writeOrigin(out, origin);
  return out;
}

/** Decodes a message; null when it is not one of ours (a stray publish on the channel). */
export function decodeMessage(message: Buffer): BrokerMessage | null {
  if (message.length < headerBytes) return null;
  const origin = readOrigin(message);
  const kind = message.readUInt8(0);
  if (kind === kindEnded) return { origin, kind: 'ended' };
  if (kind !== kindSamples) return null;
  const prevSeq = message.readDoubleLE(17);
  const channelCount = message.readUInt16LE(25);
  const count = message.readUInt32LE(27);
  const textLength = message.readUInt32LE(31);
  const columnsBytes = count * (channelCount + 2) * 8;
  if (message.length !== headerBytes + textLength + columnsBytes || count === 0) return null;
  const columns = new Float64Array(count * (channelCount + 2));
  new Uint8Array(columns.buffer).set(message.subarray(headerBytes + textLength));
  const bytes = message.subarray(headerBytes, headerBytes + textLength);
  return { origin, kind: 'samples', frame: LiveFrame.received(new SampleBatch(count, channelCount, columns), prevSeq, bytes) };
}
