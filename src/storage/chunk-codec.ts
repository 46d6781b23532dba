/**
 * The stored chunk payload and the binary COPY streams that carry chunk rows.
 *
 * Payload: a SampleBatch's columns as little-endian float64, `[seq x n, t x n, ch0 x n, ...]`
 * (layout 0), or, when the chunk's seqs run without a gap, the same without its seq column,
 * `[t x n, ch0 x n, ...]` (layout 1; migration 003): (1 + channels) x 8 bytes a sample. The
 * batch's own memory is written as it is, which is why Wavehouse requires a little-endian
 * host (checked at start in app.ts).
 *
 * COPY binary format: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 */
import { SampleBatch } from '../sessions/sample-batch.ts';

export interface ChunkRow {
  sessionId: string;
  batch: SampleBatch;
}

/** sample_chunks.payload_layout: whether the payload holds its seqs or they are implied by first_seq. */
export const payloadLayouts = { withSeqs: 0, seqsImplied: 1 } as const;
export type PayloadLayout = (typeof payloadLayouts)[keyof typeof payloadLayouts];

/** The statement encodeCopyBinary's output is for. */
export const copyChunksSql =
  'COPY sample_chunks (session_id, first_seq, last_seq, sample_count, payload_layout, payload) FROM STDIN (FORMAT binary)';

const copySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Per row: field count, then five fixed-width fields with their lengths, then the payload's length. */
const rowFixedBytes = 2 + (4 + 16) + (4 + 8) + (4 + 8) + (4 + 4) + (4 + 2) + 4;

function layoutOf(batch: SampleBatch): PayloadLayout {
  return batch.lastSeq - batch.firstSeq + 1 === batch.count ? payloadLayouts.seqsImplied : payloadLayouts.withSeqs;
}

/** The batch's memory as stored: all of it, or from its t column on when the seqs are implied. */
function payloadOf(batch: SampleBatch, layout: PayloadLayout): Buffer {
  const { columns } = batch;
  const skipped = layout === payloadLayouts.seqsImplied ? batch.count * 8 : 0;
  return Buffer.from(columns.buffer, columns.byteOffset + skipped, columns.byteLength - skipped);
}

export function batchFromPayload(payload: Buffer, count: number, layout: PayloadLayout, lastSeq: number): SampleBatch {
  const storedColumns = payload.length / 8 / count;
  const implied = layout === payloadLayouts.seqsImplied;
  const columnCount = implied ? storedColumns + 1 : storedColumns;
  if (!Number.isInteger(storedColumns) || columnCount < 2) {
    throw new Error(`chunk payload of ${payload.length} bytes does not hold ${count} samples`);
  }
  // The payload sits at any byte offset of what was read; Float64Array needs 8-byte alignment.
  const columns = new Float64Array(count * columnCount);
  new Uint8Array(columns.buffer).set(payload, implied ? count * 8 : 0);
  if (implied) for (let i = 0, seq = lastSeq - count + 1; i < count; i++) columns[i] = seq + i;
  return new SampleBatch(count, columnCount - 2, columns);
}

function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

/** One body for copyChunksSql. */
export function encodeCopyBinary(rows: readonly ChunkRow[]): Buffer {
  const layouts = rows.map((row) => layoutOf(row.batch));
  const payloads = rows.map((row, i) => payloadOf(row.batch, layouts[i]));
  let size = copySignature.length + 8 + 2;
  for (const payload of payloads) size += rowFixedBytes + payload.length;
  const out = Buffer.allocUnsafe(size);
  let at = copySignature.copy(out, 0);
  at = out.writeInt32BE(0, at);
  at = out.writeInt32BE(0, at);
  rows.forEach((row, i) => {
    const { batch } = row;
    const payload = payloads[i];
    at = out.writeInt16BE(6, at);
    at = out.writeInt32BE(16, at);
    at += uuidBytes(row.sessionId).copy(out, at);
    at = out.writeInt32BE(8, at);
    at = out.writeBigInt64BE(BigInt(batch.firstSeq), at);
    at = out.writeInt32BE(8, at);
    at = out.writeBigInt64BE(BigInt(batch.lastSeq), at);
    at = out.writeInt32BE(4, at);
    at = out.writeInt32BE(batch.count, at);
    at = out.writeInt32BE(2, at);
    at = out.writeInt16BE(layouts[i], at);
    at = out.writeInt32BE(payload.length, at);
    at += payload.copy(out, at);
  });
  out.writeInt16BE(-1, at);
  return out;
}

export interface StoredChunk {
  lastSeq: number;
  sampleCount: number;
  layout: PayloadLayout;
  payload: Buffer;
}

/**
 * The rows of a `COPY (SELECT last_seq, sample_count, payload_layout, payload ...) TO STDOUT (FORMAT binary)`
 * output; each payload is a view into `body`.
 */
export function decodeCopyBinary(body: Buffer): StoredChunk[] {
  if (body.length < copySignature.length + 8 || !body.subarray(0, copySignature.length).equals(copySignature)) {
    throw new Error('not a binary COPY output');
  }
  let at = copySignature.length + 4; // the flags field
  at += 4 + body.readInt32BE(at); // the header extension, skipped
  const rows: StoredChunk[] = [];
  for (;;) {
    const fields = body.readInt16BE(at);
    at += 2;
    if (fields === -1) return rows;
    if (fields !== 4 || body.readInt32BE(at) !== 8 || body.readInt32BE(at + 12) !== 4 || body.readInt32BE(at + 20) !== 2) {
      throw new Error('unexpected binary COPY row');
    }
    const lastSeq = Number(body.readBigInt64BE(at + 4));
    const sampleCount = body.readInt32BE(at + 16);
    const layout = body.readInt16BE(at + 24) as PayloadLayout;
    const payloadBytes = body.readInt32BE(at + 26);
    at += 30;
    rows.push({ lastSeq, sampleCount, layout, payload: body.subarray(at, at + payloadBytes) });
    at += payloadBytes;
  }
}
