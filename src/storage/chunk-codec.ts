/**
 * The stored chunk payload and the binary COPY streams that carry chunk rows.
 *
 * Payload: the chunk's samples column by column as little-endian float64, `[seq x n, t x n,
 * ch0 x n, ...]` (layout 0), or, when the chunk's seqs run without a gap, the same without its
 * seq column, `[t x n, ch0 x n, ...]` (layout 1; migration 003): (1 + channels) x 8 bytes a
 * sample. Each column is its batches' memory for that column, joined, written as it is, which
 * is why Wavehouse requires a little-endian host (checked at start in app.ts). The chunk
 * compressor later replaces sealed chunks with compressed ones (layout 2, chunk-compression.ts),
 * which every reader takes through batchFromPayload as it takes the others.
 *
 * COPY binary format: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 */
import { SampleBatch, type TRange, widen } from '../samples/sample-batch.ts';
import { CorruptChunkError } from './bit-stream.ts';
import { decompressPayload } from './chunk-compression.ts';

/**
 * One chunk row: consecutive batches of one session, in seq order, stored as one payload.
 * They are written into the COPY body straight from their own memory rather than first
 * concatenated into one batch: one copy of each sample on the main thread instead of two
 * (the second copy and its allocation were ~3 % of the main thread at JSON ingest).
 * The batches are at least one, have one channel count, and their seqs rise from each batch
 * to the next (batch-writer.ts's toChunks makes them so): the payload's size and its layout
 * are worked out from that.
 */
export interface ChunkRow {
  sessionId: string;
  batches: readonly SampleBatch[];
}

export function lastSeqOf(row: ChunkRow): number {
  return row.batches[row.batches.length - 1].lastSeq;
}

export function sampleCountOf(row: ChunkRow): number {
  let count = 0;
  for (const batch of row.batches) count += batch.count;
  return count;
}

/** The lowest and highest t of the row's samples (migration 008: min_t, max_t). */
export function tRangeOf(row: ChunkRow): TRange {
  let range = row.batches[0].tRange;
  for (let i = 1; i < row.batches.length; i++) range = widen(range, row.batches[i].tRange);
  return range;
}

/**
 * sample_chunks.payload_layout: whether the payload holds its seqs or they are implied by
 * first_seq, or holds them compressed with the rest (migration 014).
 */
export const payloadLayouts = { withSeqs: 0, seqsImplied: 1, compressed: 2 } as const;
export type PayloadLayout = (typeof payloadLayouts)[keyof typeof payloadLayouts];

/** The statement encodeCopyBinary's output is for. */
export const copyChunksSql =
  'COPY sample_chunks (session_id, first_seq, last_seq, sample_count, payload_layout, min_t, max_t, payload) FROM STDIN (FORMAT binary)';

const copySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Per row: field count, then seven fixed-width fields with their lengths, then the payload's length. */
const rowFixedBytes = 2 + (4 + 16) + (4 + 8) + (4 + 8) + (4 + 4) + (4 + 2) + (4 + 8) + (4 + 8) + 4;

/** Layout 1 when the row's seqs run without a gap, so first_seq implies them all. */
function layoutOf(row: ChunkRow, count: number): PayloadLayout {
  return lastSeqOf(row) - row.batches[0].firstSeq + 1 === count ? payloadLayouts.seqsImplied : payloadLayouts.withSeqs;
}

/**
 * The samples of one stored chunk. A payload that cannot be what encodeCopyBinary wrote (its
 * size, its layout, seqs that do not rise to last_seq) is refused with an Error rather than
 * read into a batch of garbage: seqs out of order would break every range lookup on it.
 */
export function batchFromPayload(payload: Buffer, count: number, layout: PayloadLayout, lastSeq: number): SampleBatch {
  const where = `last seq ${lastSeq}, ${count} samples, layout ${layout}, ${payload.length} bytes`;
  const corrupt = (why: string) => new CorruptChunkError(`corrupt chunk (${where}): ${why}`);
  if (!Number.isSafeInteger(count) || count < 1) throw corrupt('no samples');
  if (!Number.isSafeInteger(lastSeq) || lastSeq - count + 1 < 0) throw corrupt('the seqs are not integers from 0');
  if (layout === payloadLayouts.compressed) return withSeqsChecked(decompressPayload(payload, count, where), lastSeq, corrupt);
  if (layout !== payloadLayouts.withSeqs && layout !== payloadLayouts.seqsImplied) throw corrupt('unknown layout');
  const implied = layout === payloadLayouts.seqsImplied;
  const storedColumns = payload.length / 8 / count;
  const columnCount = implied ? storedColumns + 1 : storedColumns;
  if (!Number.isInteger(storedColumns) || columnCount < 2) throw corrupt('the size is not a whole number of columns');
  // The payload sits at any byte offset of what was read; Float64Array needs 8-byte alignment.
  const columns = new Float64Array(count * columnCount);
  new Uint8Array(columns.buffer).set(payload, implied ? count * 8 : 0);
  const batch = new SampleBatch(count, columnCount - 2, columns);
  if (!implied) return withSeqsChecked(batch, lastSeq, corrupt);
  for (let i = 0, seq = lastSeq - count + 1; i < count; i++) columns[i] = seq + i;
  return batch;
}

/** The batch, once its seqs are found to be integers rising to `lastSeq`. */
function withSeqsChecked(batch: SampleBatch, lastSeq: number, corrupt: (why: string) => Error): SampleBatch {
  checkSeqs(batch.columns.subarray(0, batch.count), lastSeq, corrupt);
  return batch;
}

function checkSeqs(seqs: Float64Array, lastSeq: number, corrupt: (why: string) => Error): void {
  for (let i = 0, previous = -1; i < seqs.length; previous = seqs[i++]) {
    if (!Number.isSafeInteger(seqs[i]) || seqs[i] <= previous) throw corrupt(`seq ${seqs[i]} does not follow ${previous}`);
  }
  if (seqs[seqs.length - 1] !== lastSeq) throw corrupt(`the seqs end at ${seqs[seqs.length - 1]}`);
}

/**
 * Consecutive stored chunks of one session joined into one batch of `channelCount` channels, as
 * the chunk compressor takes them: an uncompressed payload's columns are copied straight into
 * place, where a batch of its own per 20-sample chunk, then joined, was most of the job's
 * garbage. A chunk batchFromPayload refuses, or of other channels, is refused so, with a
 * CorruptChunkError carrying its `lastSeq`.
 */
export function joinedChunks(chunks: readonly StoredChunk[], channelCount: number): SampleBatch {
  let total = 0;
  for (const chunk of chunks) {
    if (!Number.isSafeInteger(chunk.sampleCount) || chunk.sampleCount < 1) placeChunk(chunk, SampleBatch.allocate(1, channelCount), 0);
    total += chunk.sampleCount;
  }
  const out = SampleBatch.allocate(total, channelCount);
  for (let at = 0, i = 0; i < chunks.length; at += chunks[i++].sampleCount) placeChunk(chunks[i], out, at);
  return out;
}

/** Puts the chunk's samples in `out` from sample `at` on. */
function placeChunk(chunk: StoredChunk, out: SampleBatch, at: number): void {
  const { payload, sampleCount: count, layout, lastSeq } = chunk;
  try {
    const columnCount = out.channelCount + 2;
    const implied = layout === payloadLayouts.seqsImplied;
    const plain =
      (implied || layout === payloadLayouts.withSeqs) &&
      Number.isSafeInteger(count) &&
      count >= 1 &&
      Number.isSafeInteger(lastSeq) &&
      lastSeq - count + 1 >= 0 &&
      payload.length === count * 8 * (implied ? columnCount - 1 : columnCount);
    if (!plain) {
      // Compressed, or not what was written: read as every reader reads it, which says why it is refused.
      const batch = batchFromPayload(payload, count, layout, lastSeq);
      if (batch.channelCount !== out.channelCount) {
        throw new CorruptChunkError(`a chunk of ${batch.channelCount} channels in a session of ${out.channelCount}`);
      }
      for (let c = 0; c < columnCount; c++) out.columns.set(batch.columns.subarray(c * count, (c + 1) * count), c * out.count + at);
      return;
    }
    // Byte by byte: the payload sits at any byte offset of what was read; Float64Array needs 8-byte alignment.
    const bytes = new Uint8Array(out.columns.buffer, out.columns.byteOffset, out.columns.byteLength);
    for (let c = implied ? 1 : 0, from = 0; c < columnCount; c++, from += count * 8) {
      bytes.set(payload.subarray(from, from + count * 8), (c * out.count + at) * 8);
    }
    const seqs = out.columns.subarray(at, at + count);
    if (implied) for (let i = 0, seq = lastSeq - count + 1; i < count; i++) seqs[i] = seq + i;
    else checkSeqs(seqs, lastSeq, (why) => new CorruptChunkError(`corrupt chunk (last seq ${lastSeq}, ${count} samples): ${why}`));
  } catch (error) {
    throw Object.assign(error as Error, { lastSeq });
  }
}

function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

/** One body for copyChunksSql. */
export function encodeCopyBinary(rows: readonly ChunkRow[], allocate: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const counts = rows.map(sampleCountOf);
  const layouts = rows.map((row, i) => layoutOf(row, counts[i]));
  // The columns stored: from t on when the seqs are implied, else from seq on.
  const firstColumns = layouts.map((layout) => (layout === payloadLayouts.seqsImplied ? 1 : 0));
  const payloadBytes = rows.map((row, i) => counts[i] * 8 * (row.batches[0].channelCount + 2 - firstColumns[i]));
  let size = copySignature.length + 8 + 2;
  for (const bytes of payloadBytes) size += rowFixedBytes + bytes;
  const out = allocate(size);
  let at = copySignature.copy(out, 0);
  at = out.writeInt32BE(0, at);
  at = out.writeInt32BE(0, at);
  rows.forEach((row, i) => {
    const { batches } = row;
    const { min, max } = tRangeOf(row);
    at = out.writeInt16BE(8, at);
    at = out.writeInt32BE(16, at);
    at += uuidBytes(row.sessionId).copy(out, at);
    at = out.writeInt32BE(8, at);
    at = out.writeBigInt64BE(BigInt(batches[0].firstSeq), at);
    at = out.writeInt32BE(8, at);
    at = out.writeBigInt64BE(BigInt(lastSeqOf(row)), at);
    at = out.writeInt32BE(4, at);
    at = out.writeInt32BE(counts[i], at);
    at = out.writeInt32BE(2, at);
    at = out.writeInt16BE(layouts[i], at);
    at = out.writeInt32BE(8, at);
    at = out.writeDoubleBE(min, at);
    at = out.writeInt32BE(8, at);
    at = out.writeDoubleBE(max, at);
    at = out.writeInt32BE(payloadBytes[i], at);
    // Column by column, each batch's part of it in turn: the payload of the batches joined.
    const columnCount = batches[0].channelCount + 2;
    for (let column = firstColumns[i]; column < columnCount; column++) {
      for (const { columns, count } of batches) {
        out.set(new Uint8Array(columns.buffer, columns.byteOffset + column * count * 8, count * 8), at);
        at += count * 8;
      }
    }
  });
  out.writeInt16BE(-1, at);
  return out;
}

export interface StoredChunk {
  lastSeq: number;
  sampleCount: number;
  layout: PayloadLayout;
  payload: Buffer;
  /** The int4 before last_seq in a grouped output. */
  group?: number;
}

/**
 * The rows of a `COPY (SELECT last_seq, sample_count, payload_layout, payload ...) TO STDOUT (FORMAT binary)`
 * output, or when `grouped`, of one that selects an int4 (the chunk's group) before them; each
 * payload is a view into `body`. Every length is checked against the body before
 * it is used, so an output that is cut short or corrupt is refused with an Error: a length past
 * the end would otherwise give a payload silently cut short, and a negative one would move the
 * reading backwards, into a loop that never ends.
 */
export function decodeCopyBinary(body: Buffer, grouped = false): StoredChunk[] {
  const corrupt = (at: number, why: string) => new Error(`corrupt binary COPY output at byte ${at} of ${body.length}: ${why}`);
  if (body.length < copySignature.length + 8 || !body.subarray(0, copySignature.length).equals(copySignature)) {
    throw new Error('not a binary COPY output');
  }
  let at = copySignature.length + 4; // the flags field
  const extensionBytes = body.readInt32BE(at);
  if (extensionBytes < 0 || extensionBytes > body.length - at - 4) throw corrupt(at, `a header extension of ${extensionBytes} bytes`);
  at += 4 + extensionBytes;
  const rows: StoredChunk[] = [];
  for (;;) {
    if (at + 2 > body.length) throw corrupt(at, 'no end marker');
    const fields = body.readInt16BE(at);
    at += 2;
    if (fields === -1) return rows;
    const groupBytes = grouped ? 8 : 0;
    if (at + groupBytes + 30 > body.length) throw corrupt(at, 'a row cut short');
    if (fields !== (grouped ? 5 : 4) || (grouped && body.readInt32BE(at) !== 4)) throw new Error('unexpected binary COPY row');
    const group = grouped ? body.readInt32BE(at + 4) : undefined;
    at += groupBytes;
    if (body.readInt32BE(at) !== 8 || body.readInt32BE(at + 12) !== 4 || body.readInt32BE(at + 20) !== 2) {
      throw new Error('unexpected binary COPY row');
    }
    const lastSeq = Number(body.readBigInt64BE(at + 4));
    const sampleCount = body.readInt32BE(at + 16);
    const layout = body.readInt16BE(at + 24) as PayloadLayout;
    const payloadBytes = body.readInt32BE(at + 26);
    at += 30;
    if (payloadBytes < 0 || payloadBytes > body.length - at) throw corrupt(at, `a payload of ${payloadBytes} bytes`);
    const payload = body.subarray(at, at + payloadBytes);
    rows.push(grouped ? { lastSeq, sampleCount, layout, payload, group } : { lastSeq, sampleCount, layout, payload });
    at += payloadBytes;
  }
}
