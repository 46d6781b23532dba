/**
 * The stored chunk payload and the binary COPY stream that carries chunk rows.
 *
 * Payload: a SampleBatch's columns as little-endian float64, `[seq x n, t x n, ch0 x n, ...]`,
 * so (2 + channels) x 8 bytes per sample. The batch's own memory is written as it is, which
 * is why Wavehouse requires a little-endian host (checked at start in app.ts).
 *
 * COPY binary format: https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 */
import { SampleBatch } from '../sessions/sample-batch.ts';

export interface ChunkRow {
  sessionId: string;
  batch: SampleBatch;
}

const copySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Per row: field count, then four fixed-width fields with their lengths. */
const rowFixedBytes = 2 + (4 + 16) + (4 + 8) + (4 + 8) + (4 + 4) + 4;

export function payloadOf(batch: SampleBatch): Buffer {
  return Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.columns.byteLength);
}

export function batchFromPayload(payload: Buffer, count: number): SampleBatch {
  const columnCount = payload.length / 8 / count;
  if (!Number.isInteger(columnCount) || columnCount < 2) {
    throw new Error(`chunk payload of ${payload.length} bytes does not hold ${count} samples`);
  }
  // pg hands bytea back in a Buffer at any offset; Float64Array needs 8-byte alignment.
  const aligned = new Float64Array(payload.length / 8);
  new Uint8Array(aligned.buffer).set(payload);
  return new SampleBatch(count, columnCount - 2, aligned);
}

function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

/** One COPY ... (FORMAT binary) body for rows (session_id, first_seq, last_seq, sample_count, payload). */
export function encodeCopyBinary(rows: readonly ChunkRow[]): Buffer {
  let size = copySignature.length + 8 + 2;
  for (const row of rows) size += rowFixedBytes + row.batch.byteLength;
  const out = Buffer.allocUnsafe(size);
  let at = copySignature.copy(out, 0);
  at = out.writeInt32BE(0, at);
  at = out.writeInt32BE(0, at);
  for (const row of rows) {
    const { batch } = row;
    at = out.writeInt16BE(5, at);
    at = out.writeInt32BE(16, at);
    at += uuidBytes(row.sessionId).copy(out, at);
    at = out.writeInt32BE(8, at);
    at = out.writeBigInt64BE(BigInt(batch.firstSeq), at);
    at = out.writeInt32BE(8, at);
    at = out.writeBigInt64BE(BigInt(batch.lastSeq), at);
    at = out.writeInt32BE(4, at);
    at = out.writeInt32BE(batch.count, at);
    at = out.writeInt32BE(batch.byteLength, at);
    at += payloadOf(batch).copy(out, at);
  }
  out.writeInt16BE(-1, at);
  return out;
}

export interface StoredChunk {
  lastSeq: number;
  sampleCount: number;
  payload: Buffer;
}

/**
 * The rows of a `COPY (SELECT last_seq, sample_count, payload ...) TO STDOUT (FORMAT binary)`
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
    if (fields !== 3 || body.readInt32BE(at) !== 8 || body.readInt32BE(at + 12) !== 4) throw new Error('unexpected binary COPY row');
    const lastSeq = Number(body.readBigInt64BE(at + 4));
    const sampleCount = body.readInt32BE(at + 16);
    const payloadBytes = body.readInt32BE(at + 20);
    at += 24;
    rows.push({ lastSeq, sampleCount, payload: body.subarray(at, at + payloadBytes) });
    at += payloadBytes;
  }
}
