/**
 * The bench's samples and producer frames, generated once so that no load generator spends
 * its time in JSON.stringify (the figure would then be the client's, not the server's).
 *
 * Every sample is a function of its seq (a hash, no state), so the export seed, the
 * serialization limit and the ingest frames all hold the same kind of data, and any process
 * can regenerate it. Values look like a phone accelerometer in m/s^2 with 4 decimals; `t` is
 * epoch milliseconds at 1 kHz with a fraction, 16 characters, as the protocol's example.
 */
import { SampleBatch } from '../../src/samples/sample-batch.ts';

export const channels = ['ax', 'ay', 'az'] as const;
export const channelCount = channels.length;
const tBase = 1_732_345_678_901.25;

function hash(value: number): number {
  // A 32-bit integer mix (murmur3's finalizer) of the low 32 bits: cheap, stateless, well spread.
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const round4 = (value: number) => Math.round(value * 1e4) / 1e4;

export function tOf(seq: number): number {
  return tBase + seq;
}

export function channelValue(seq: number, channel: number): number {
  const unit = (hash(seq * 3 + channel) % 20_001) / 10_000 - 1; // [-1, 1] in steps of 1e-4
  return channel === 2 ? round4(9.81 + unit / 2) : round4(unit);
}

/** Fills a batch's columns `[seq x n, t x n, ax x n, ay x n, az x n]` for seqs firstSeq, firstSeq+1, ... */
export function fillBatch(batch: SampleBatch, firstSeq: number): void {
  const n = batch.count;
  const columns = batch.columns;
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + i;
    columns[i] = seq;
    columns[n + i] = tOf(seq);
    for (let c = 0; c < channelCount; c++) columns[(c + 2) * n + i] = channelValue(seq, c);
  }
}

export function makeBatch(firstSeq: number, count: number): SampleBatch {
  const batch = SampleBatch.allocate(count, channelCount);
  fillBatch(batch, firstSeq);
  return batch;
}

/**
 * Ingest seqs start here, so that every seq has exactly 12 digits and a frame's text can be
 * reused with only its seq digits rewritten in place (9e11 seqs of room per session).
 */
export const ingestSeqBase = 100_000_000_000;
const seqDigits = 12;

export interface FrameSource {
  readonly samplesPerFrame: number;
  readonly frameBytes: number;
  /** A frame of seqs firstSeq .. firstSeq + samplesPerFrame - 1; the buffer is reused by the next call. */
  frame(firstSeq: number): Buffer;
  /** Whether ws must send it as a binary message. */
  readonly binary: boolean;
}

/**
 * `{"samples":[{"seq":...,"t":...,"ax":...,"ay":...,"az":...}, ...]}` text, a few variants
 * with different values, seq digits patched per frame. Reusing the buffer is safe: a ws
 * client masks every message into a new buffer inside send() (ws 8 Sender, readOnly data).
 */
export class JsonFrames implements FrameSource {
  readonly binary = false;
  private readonly templates: Buffer[] = [];
  private readonly seqOffsets: number[][] = [];
  private next = 0;
  readonly frameBytes: number;

  constructor(
    readonly samplesPerFrame: number,
    variants = 16,
  ) {
    for (let v = 0; v < variants; v++) {
      const first = ingestSeqBase + v * samplesPerFrame;
      const parts: string[] = [];
      for (let i = 0; i < samplesPerFrame; i++) {
        const seq = first + i;
        parts.push(`{"seq":${seq},"t":${tOf(seq)},"ax":${channelValue(seq, 0)},"ay":${channelValue(seq, 1)},"az":${channelValue(seq, 2)}}`);
      }
      const text = `{"samples":[${parts.join(',')}]}`;
      const offsets: number[] = [];
      let from = 0;
      for (let i = 0; i < samplesPerFrame; i++) {
        from = text.indexOf('"seq":', from) + 6;
        offsets.push(from);
      }
      this.templates.push(Buffer.from(text));
      this.seqOffsets.push(offsets);
    }
    this.frameBytes = Math.round(this.templates.reduce((sum, t) => sum + t.length, 0) / variants);
  }

  frame(firstSeq: number): Buffer {
    const v = this.next++ % this.templates.length;
    const buffer = this.templates[v];
    const offsets = this.seqOffsets[v];
    for (let i = 0; i < offsets.length; i++) {
      let value = firstSeq + i;
      for (let d = offsets[i] + seqDigits - 1; d >= offsets[i]; d--) {
        buffer[d] = 48 + (value % 10);
        value = Math.floor(value / 10);
      }
    }
    return buffer;
  }
}

/** The binary frame of docs/protocol.md: 8-byte header, then float64 LE columns; the seq column is rewritten per frame. */
export class BinaryFrames implements FrameSource {
  readonly binary = true;
  private readonly templates: Array<{ buffer: Buffer; columns: Float64Array }> = [];
  private next = 0;
  readonly frameBytes: number;

  constructor(
    readonly samplesPerFrame: number,
    variants = 16,
  ) {
    const n = samplesPerFrame;
    this.frameBytes = 8 + 8 * n * (channelCount + 2);
    for (let v = 0; v < variants; v++) {
      const memory = new ArrayBuffer(this.frameBytes);
      const header = new DataView(memory);
      header.setUint8(0, 1);
      header.setUint8(1, 0);
      header.setUint16(2, channelCount, true);
      header.setUint32(4, n, true);
      const columns = new Float64Array(memory, 8);
      const batch = new SampleBatch(n, channelCount, columns);
      fillBatch(batch, ingestSeqBase + v * n);
      this.templates.push({ buffer: Buffer.from(memory), columns });
    }
  }

  frame(firstSeq: number): Buffer {
    const template = this.templates[this.next++ % this.templates.length];
    for (let i = 0; i < this.samplesPerFrame; i++) template.columns[i] = firstSeq + i;
    return template.buffer;
  }
}
