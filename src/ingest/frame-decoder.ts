/**
 * Turns one producer text frame into a SampleBatch, or says which contract rule it breaks.
 * Pure: no I/O, no session state (sequence rules against the session live in
 * sessions/session-state.ts). Hand-written rather than a compiled schema because the key
 * set depends on the session's channels and this runs for every sample on the hot path.
 * The usual `{"samples":[...]}` frame of valid samples takes the byte scanner of
 * json-frame-scanner.ts; every other frame, and every invalid one, is parsed here.
 *
 * Accepted shapes (docs/protocol.md, ingest socket): one Sample; `{"samples":[...]}`;
 * `{"type":"samples_batch","payload":{"samples":[...]}}`; and the binary frame
 * (docs/protocol.md): an 8-byte header then the stored column layout itself, so a batch
 * is stored without re-encoding.
 */
import { isUtf8 } from 'node:buffer';
import type { FrameErrorCode } from '../contract/errors.ts';
import { type BatchAllocator, SampleBatch } from '../samples/sample-batch.ts';
import { scanJsonFrame } from './json-frame-scanner.ts';

export type DecodedFrame =
  /** samplesText: the frame's own bytes of its samples array, when it can be forwarded as it is (samples/live-frames.ts). */
  { ok: true; batch: SampleBatch; hasSeq: boolean; samplesText: Buffer | null } | { ok: false; code: FrameErrorCode; message: string };

export interface FrameLimits {
  maxFrameBytes: number;
  maxFrameSamples: number;
}

/** What a frame of one session must respect: the limits, and whether a value may be null. */
export interface FrameRules extends FrameLimits {
  /**
   * A nullable session's values may be null: JSON `null`, or in a binary frame any NaN (a
   * float64 value is never NaN otherwise, so NaN is free to mean null). A null is held as NaN
   * from here on, and every output writes it back as null (samples/sample-text.ts).
   */
  nullable?: boolean;
}

const reject = (code: FrameErrorCode, message: string): DecodedFrame => ({ ok: false, code, message });

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function keyCount(object: object): number {
  let count = 0;
  for (const _ in object) count++;
  return count;
}

/**
 * The samples array of a frame (null when the frame is a single Sample), and whether the
 * frame holds nothing else, so that its array text is the only `[...]` in its bytes.
 */
function samplesOf(frame: Record<string, unknown>): { samples: unknown[] | null; bare: boolean } | 'bad' {
  if ('type' in frame) {
    if (frame.type !== 'samples_batch' || !isPlainObject(frame.payload)) return 'bad';
    const { samples } = frame.payload;
    if (!Array.isArray(samples)) return 'bad';
    return { samples, bare: keyCount(frame) === 2 && keyCount(frame.payload) === 1 };
  }
  if ('samples' in frame) return Array.isArray(frame.samples) ? { samples: frame.samples, bare: keyCount(frame) === 1 } : 'bad';
  return { samples: null, bare: false };
}

export function decodeTextFrame(
  data: Buffer | string,
  channels: readonly string[],
  limits: FrameRules,
  receivedAtMs: number,
  allocate: BatchAllocator = SampleBatch.allocate,
): DecodedFrame {
  if (data.length > limits.maxFrameBytes) {
    return reject('frame_too_large', `frame is ${data.length} bytes; the limit is ${limits.maxFrameBytes}`);
  }
  if (typeof data !== 'string') {
    const scanned = scanJsonFrame(data, channels, limits.maxFrameSamples, receivedAtMs, allocate);
    if (scanned) {
      return {
        ok: true,
        batch: scanned.batch,
        hasSeq: scanned.hasSeq,
        samplesText: scanned.hasSeq && scanned.everyT ? scanned.samplesText : null,
      };
    }
  }
  let frame: unknown;
  try {
    frame = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return reject('invalid_frame', 'frame is not valid JSON');
  }
  if (!isPlainObject(frame)) return reject('invalid_frame', 'frame must be a JSON object');
  const listed = samplesOf(frame);
  if (listed === 'bad') {
    return reject('invalid_frame', 'frame must be a Sample, {"samples":[...]} or {"type":"samples_batch","payload":{"samples":[...]}}');
  }
  const samples = listed.samples ?? [frame];
  const decoded = decodeSampleList(samples, channels, limits, receivedAtMs, allocate);
  if (!decoded.ok || !listed.bare || !decoded.hasSeq || !decoded.everyT || typeof data === 'string') return decoded;
  return { ...decoded, samplesText: samplesTextOf(data) };
}

/**
 * Samples already parsed into values (a frame's list, or the lines of an NDJSON or CSV body
 * of HTTP ingest, ingest/sample-bodies.ts), under the frame's rules and sample limit.
 */
export function decodeSampleList(
  samples: unknown[],
  channels: readonly string[],
  limits: FrameRules,
  receivedAtMs: number,
  allocate: BatchAllocator = SampleBatch.allocate,
): DecodedFrame & { everyT?: boolean } {
  if (samples.length > limits.maxFrameSamples) {
    return reject('frame_too_large', `frame holds ${samples.length} samples; the limit is ${limits.maxFrameSamples}`);
  }
  return decodeSamples(samples, channels, receivedAtMs, allocate, limits.nullable === true);
}

/**
 * The frame's own text of its samples array, to forward to viewers; null when it cannot be cut
 * out safely. Keys and values were just checked to be the fixed keys, channel names and
 * numbers, none of which holds a bracket, so a frame's only '[' and ']' bound its samples
 * array. But JSON.parse keeps a repeated key's last value and drops the others unchecked:
 * in `{"samples":"[","samples":[...]}` the first '[' is in a string, and the text cut from it
 * was not JSON; a dropped value may also hold bytes that are not UTF-8, which a WebSocket
 * text frame may not carry. Such a frame is encoded afresh instead.
 */
function samplesTextOf(data: Buffer): Buffer | null {
  const start = data.indexOf(0x5b);
  const end = data.lastIndexOf(0x5d);
  if (data.indexOf(0x5b, start + 1) !== -1 || data.indexOf(0x5d) !== end) return null;
  const text = data.subarray(start, end + 1);
  return isUtf8(text) ? text : null;
}

function decodeSamples(
  samples: unknown[],
  channels: readonly string[],
  receivedAtMs: number,
  allocate: BatchAllocator,
  nullable: boolean,
): DecodedFrame & { everyT?: boolean } {
  const n = samples.length;
  const width = channels.length;
  const batch = allocate(n, width);
  const columns = batch.columns;
  const hasSeq = n > 0 && isPlainObject(samples[0]) && 'seq' in samples[0];
  if (!hasSeq) columns.fill(0, 0, n); // session-state.ts numbers them
  let previousSeq = -1;
  let everyT = true;
  for (let i = 0; i < n; i++) {
    const sample = samples[i];
    if (!isPlainObject(sample)) return reject('invalid_frame', `sample ${i} is not an object`);
    let keyCount = 0;
    for (const _ in sample) keyCount++;
    const seq = sample.seq;
    if ((seq !== undefined) !== hasSeq) {
      return reject('invalid_frame', 'either every sample of a frame has a seq or none has');
    }
    if (hasSeq) {
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
        return reject('invalid_frame', `sample ${i}: seq must be an integer from 0 to 2^53-1`);
      }
      if (seq <= previousSeq) return reject('seq_not_increasing', `sample ${i}: seq ${seq} does not follow ${previousSeq}`);
      previousSeq = seq;
      columns[i] = seq;
      keyCount--;
    }
    const t = sample.t;
    if (t === undefined) {
      columns[n + i] = receivedAtMs;
      everyT = false;
    } else {
      if (typeof t !== 'number' || !Number.isFinite(t)) return reject('invalid_frame', `sample ${i}: t must be a finite number`);
      columns[n + i] = t;
      keyCount--;
    }
    if (keyCount !== width) {
      return reject('wrong_channels', `sample ${i}: channels must be exactly ${channels.join(', ')}`);
    }
    for (let c = 0; c < width; c++) {
      const value = sample[channels[c]];
      if (value === null && nullable) {
        columns[(c + 2) * n + i] = Number.NaN;
        continue;
      }
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return value === undefined
          ? reject('wrong_channels', `sample ${i}: channels must be exactly ${channels.join(', ')}`)
          : reject('invalid_frame', `sample ${i}: ${channels[c]} must be a finite number${nullable ? ' or null' : ''}`);
      }
      columns[(c + 2) * n + i] = value;
    }
  }
  return { ok: true, batch, hasSeq, samplesText: null, everyT };
}

/** Binary frame header: u8 version, u8 flags, u16 channelCount, u32 sampleCount, all little-endian. */
export const binaryHeaderBytes = 8;
export const binaryFrameVersion = 1;

export function decodeBinaryFrame(
  data: Buffer,
  channelCount: number,
  limits: FrameRules,
  allocate: BatchAllocator = SampleBatch.allocate,
): DecodedFrame {
  if (data.length > limits.maxFrameBytes) {
    return reject('frame_too_large', `frame is ${data.length} bytes; the limit is ${limits.maxFrameBytes}`);
  }
  if (data.length < binaryHeaderBytes || data[0] !== binaryFrameVersion || data[1] !== 0) {
    return reject('invalid_frame', `a binary frame starts with version ${binaryFrameVersion} and flags 0 (docs/protocol.md)`);
  }
  const width = data.readUInt16LE(2);
  const n = data.readUInt32LE(4);
  if (width !== channelCount) return reject('wrong_channels', `the session has ${channelCount} channels; the frame has ${width}`);
  if (n > limits.maxFrameSamples) return reject('frame_too_large', `frame holds ${n} samples; the limit is ${limits.maxFrameSamples}`);
  if (data.length !== binaryHeaderBytes + n * (width + 2) * 8) {
    return reject(
      'invalid_frame',
      `a binary frame of ${n} samples x ${width} channels is ${binaryHeaderBytes + n * (width + 2) * 8} bytes, not ${data.length}`,
    );
  }
  const batch = allocate(n, width);
  const columns = batch.columns;
  // Copied rather than viewed: the socket's buffer may sit at any byte offset.
  new Uint8Array(columns.buffer, columns.byteOffset, columns.byteLength).set(data.subarray(binaryHeaderBytes));
  let previousSeq = -1;
  for (let i = 0; i < n; i++) {
    const seq = columns[i];
    if (!Number.isSafeInteger(seq) || seq < 0) return reject('invalid_frame', `sample ${i}: seq must be an integer from 0 to 2^53-1`);
    if (seq <= previousSeq) return reject('seq_not_increasing', `sample ${i}: seq ${seq} does not follow ${previousSeq}`);
    previousSeq = seq;
  }
  // t must be finite; so must values, but for a nullable session's NaNs (nulls). Infinities never pass.
  const checkedUpTo = limits.nullable === true ? 2 * n : columns.length;
  for (let i = n; i < checkedUpTo; i++) {
    if (!Number.isFinite(columns[i])) return reject('invalid_frame', `sample ${i % n}: t and values must be finite numbers`);
  }
  for (let i = checkedUpTo; i < columns.length; i++) {
    if (columns[i] === Number.POSITIVE_INFINITY || columns[i] === Number.NEGATIVE_INFINITY) {
      return reject('invalid_frame', `sample ${i % n}: values must be finite numbers or NaN (null)`);
    }
  }
  return { ok: true, batch, hasSeq: true, samplesText: null };
}
