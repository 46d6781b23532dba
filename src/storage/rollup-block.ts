/**
 * The stored layout of a roll-up block (migration 012, sample_rollups.summary): the occupied
 * buckets of one session at one resolution within one block of `bucketsPerBlock` buckets, in
 * little-endian float64 columns that decode with one copy into a Float64Array.
 *
 * A bucket holding one sample is stored as that sample (t, seq, values: 5 float64 for three
 * channels) rather than as a summary (26 float64): its summary follows from it, and a sparse
 * stream (an IoT node posting every 15 s) fills every fine bucket with one sample, where the full
 * form would cost 6.5 times the raw sample at each fine resolution.
 *
 *   header, 16 bytes: u8 version (1), u8 reserved, u16 channels, u32 summaries m, u32 singles s, u32 reserved
 *   summaries: t[m], count[m], then per channel count[m], sum[m], min[m], max[m], firstSeq[m], first[m], lastSeq[m], last[m]
 *   singles:   t[s], seq[s], then per channel value[s] (NaN: a null)
 *
 * Each section is in ascending t, and no t is in both. A block that cannot be what
 * encodeBlock wrote is refused with a RollupBlockError.
 */
import { addValue, type BucketSummary, emptyBucket } from '../aggregates/bucket-summary.ts';

/** A stored block that cannot be decoded: the only error decodeBlock throws. */
export class RollupBlockError extends Error {
  constructor(why: string) {
    super(`corrupt roll-up block: ${why}`);
    this.name = 'RollupBlockError';
  }
}

const version = 1;
const headerBytes = 16;
const channelFields = 8;
/** More than any session may have (the contract's limit is far lower); it bounds what a corrupt header can ask for. */
const maxChannels = 1024;

const summaryColumns = (channels: number) => 2 + channelFields * channels;
const singleColumns = (channels: number) => 2 + channels;

/** The single sample a bucket holds, when it holds one: its seq is the first and last seq of every non-null channel. */
function singleSeqOf(bucket: BucketSummary): number | null {
  if (bucket.count !== 1) return null;
  let seq: number | null = null;
  for (const channel of bucket.channels) {
    if (channel.count === 0) continue;
    if (seq !== null && seq !== channel.firstSeq) return null;
    seq = channel.firstSeq;
  }
  return seq;
}

/** `buckets` in ascending t, all with `channels` channels. */
export function encodeBlock(buckets: readonly BucketSummary[], channels: number): Buffer {
  const singles: Array<{ bucket: BucketSummary; seq: number }> = [];
  const summaries: BucketSummary[] = [];
  for (const bucket of buckets) {
    const seq = singleSeqOf(bucket);
    if (seq === null) summaries.push(bucket);
    else singles.push({ bucket, seq });
  }
  const m = summaries.length;
  const s = singles.length;
  const values = new Float64Array(m * summaryColumns(channels) + s * singleColumns(channels));
  summaries.forEach((bucket, i) => {
    values[i] = bucket.t;
    values[m + i] = bucket.count;
    bucket.channels.forEach((channel, c) => {
      const at = (2 + c * channelFields) * m + i;
      values[at] = channel.count;
      values[at + m] = channel.sum;
      values[at + 2 * m] = channel.min;
      values[at + 3 * m] = channel.max;
      values[at + 4 * m] = channel.firstSeq;
      values[at + 5 * m] = channel.first;
      values[at + 6 * m] = channel.lastSeq;
      values[at + 7 * m] = channel.last;
    });
  });
  const base = m * summaryColumns(channels);
  singles.forEach(({ bucket, seq }, i) => {
    values[base + i] = bucket.t;
    values[base + s + i] = seq;
    bucket.channels.forEach((channel, c) => {
      values[base + (2 + c) * s + i] = channel.count === 0 ? Number.NaN : channel.first;
    });
  });
  const out = Buffer.allocUnsafe(headerBytes + values.byteLength);
  out.writeUInt8(version, 0);
  out.writeUInt8(0, 1);
  out.writeUInt16LE(channels, 2);
  out.writeUInt32LE(m, 4);
  out.writeUInt32LE(s, 8);
  out.writeUInt32LE(0, 12);
  out.set(new Uint8Array(values.buffer), headerBytes);
  return out;
}

function checkAscending(values: Float64Array, from: number, count: number, section: string): void {
  for (let i = from + 1; i < from + count; i++) {
    if (!(values[i] > values[i - 1])) throw new RollupBlockError(`the ${section} are not in ascending t`);
  }
  for (let i = from; i < from + count; i++) if (!Number.isFinite(values[i])) throw new RollupBlockError(`a ${section} t is not finite`);
}

function checkCount(value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new RollupBlockError(`a count of ${value}`);
}

function decodeSummaries({ values, m, channels }: BlockColumns): BucketSummary[] {
  const buckets: BucketSummary[] = [];
  for (let i = 0; i < m; i++) {
    const bucket: BucketSummary = { t: values[i], count: values[m + i], channels: [] };
    for (let c = 0; c < channels; c++) {
      const at = (2 + c * channelFields) * m + i;
      bucket.channels.push({
        count: values[at],
        sum: values[at + m],
        min: values[at + 2 * m],
        max: values[at + 3 * m],
        firstSeq: values[at + 4 * m],
        first: values[at + 5 * m],
        lastSeq: values[at + 6 * m],
        last: values[at + 7 * m],
      });
    }
    buckets.push(bucket);
  }
  return buckets;
}

function decodeSingles({ values, base, s, channels }: BlockColumns): BucketSummary[] {
  const buckets: BucketSummary[] = [];
  for (let i = 0; i < s; i++) {
    const bucket = emptyBucket(values[base + i], channels);
    bucket.count = 1;
    for (let c = 0; c < channels; c++) addValue(bucket.channels[c], values[base + s + i], values[base + (2 + c) * s + i]);
    buckets.push(bucket);
  }
  return buckets;
}

/** Both sections as one list in ascending t (readBlock checked that no t is in both). */
function mergeByT(a: BucketSummary[], b: BucketSummary[]): BucketSummary[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out: BucketSummary[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j === b.length || (i < a.length && a[i].t < b[j].t)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

/**
 * A block's two sections as the float64 columns they are stored in (the layout above), checked:
 * summaries `values[field * m + i]`, singles `values[base + field * s + i]`. What decodeBlock
 * makes objects of, and what an aggregate folds from without them (rollup-store.ts).
 */
export interface BlockColumns {
  channels: number;
  m: number;
  s: number;
  base: number;
  values: Float64Array;
}

/** Counts that are whole, a channel's at most its bucket's; seqs that are whole; no t in both sections. */
function checkFields({ values, m, s, base, channels }: BlockColumns): void {
  for (let i = 0; i < m; i++) {
    const count = values[m + i];
    checkCount(count, Number.MAX_SAFE_INTEGER);
    for (let c = 0; c < channels; c++) checkCount(values[(2 + c * channelFields) * m + i], count);
  }
  for (let i = 0; i < s; i++) {
    const seq = values[base + s + i];
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RollupBlockError(`a seq of ${seq}`);
  }
  let j = 0;
  for (let i = 0; i < m; i++) {
    while (j < s && values[base + j] < values[i]) j++;
    if (j < s && values[base + j] === values[i]) throw new RollupBlockError(`the bucket at t ${values[i]} is stored twice`);
  }
}

export function readBlock(block: Uint8Array): BlockColumns {
  if (block.length < headerBytes) throw new RollupBlockError(`${block.length} bytes, shorter than the header`);
  const header = new DataView(block.buffer, block.byteOffset, headerBytes);
  if (header.getUint8(0) !== version) throw new RollupBlockError(`version ${header.getUint8(0)}`);
  const channels = header.getUint16(2, true);
  const m = header.getUint32(4, true);
  const s = header.getUint32(8, true);
  if (channels < 1 || channels > maxChannels) throw new RollupBlockError(`${channels} channels`);
  const expected = headerBytes + 8 * (m * summaryColumns(channels) + s * singleColumns(channels));
  if (block.length !== expected) throw new RollupBlockError(`${block.length} bytes where the header says ${expected}`);
  // The block sits at any offset of what was read; Float64Array needs 8-byte alignment.
  const values = new Float64Array((block.length - headerBytes) / 8);
  new Uint8Array(values.buffer).set(block.subarray(headerBytes));
  const base = m * summaryColumns(channels);
  checkAscending(values, 0, m, 'summaries');
  checkAscending(values, base, s, 'singles');
  const columns = { channels, m, s, base, values };
  checkFields(columns);
  return columns;
}

/** The buckets of a block, in ascending t, and its channel count. */
export function decodeBlock(block: Uint8Array): { channels: number; buckets: BucketSummary[] } {
  const columns = readBlock(block);
  return { channels: columns.channels, buckets: mergeByT(decodeSummaries(columns), decodeSingles(columns)) };
}
