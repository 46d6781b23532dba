/**
 * The body of GET /sessions/{id}/data in each format, as a stream of byte pieces: Parquet's
 * are its row groups (parquet-body.ts); for the others, the batches read from the database are
 * written as text (samples/sample-text.ts) into pieces
 * of about `pieceBytes`, so the response gets few large writes and no string per batch.
 *
 * Memory: the consumer pulls one piece at a time (Readable.from reads one ahead, the response
 * pipe pauses while the socket is full), so a response holds a few pieces and the pages
 * being read, whatever the size of the session.
 */
import type { SampleBatch } from '../samples/sample-batch.ts';
import { jsonColumnKeys, maxCsvSamplesBytes, maxJsonSamplesBytes, writeCsvSamples, writeJsonSamples } from '../samples/sample-text.ts';
import type { DataFormat, ExportHeader } from './data-formats.ts';
import { encodeParquetBody } from './parquet-body.ts';

/**
 * 1 MiB: five or more 2,000-sample batches a piece, so writes are large, and still small
 * beside the server's memory when a few are in flight per export.
 */
const pieceBytes = 1024 * 1024;

const comma = 0x2c;
const newline = 0x0a;

/** Writes one batch at `at` in `out`, which has at least `room(batch)` bytes from there; returns where it ends. */
interface BatchWriter {
  room(batch: SampleBatch): number;
  write(out: Buffer, at: number, batch: SampleBatch): number;
}

function jsonArrayWriter(channels: readonly string[]): BatchWriter {
  const keys = jsonColumnKeys(channels);
  let first = true;
  return {
    room: (batch) => 1 + maxJsonSamplesBytes(batch, keys),
    write(out, at, batch) {
      if (!first) out[at++] = comma;
      first = false;
      return writeJsonSamples(out, at, batch, keys, comma);
    },
  };
}

function ndjsonWriter(channels: readonly string[]): BatchWriter {
  const keys = jsonColumnKeys(channels);
  return {
    room: (batch) => 1 + maxJsonSamplesBytes(batch, keys),
    write(out, at, batch) {
      at = writeJsonSamples(out, at, batch, keys, newline);
      out[at] = newline;
      return at + 1;
    },
  };
}

const csvWriter: BatchWriter = { room: maxCsvSamplesBytes, write: writeCsvSamples };

function framing(format: Exclude<DataFormat, 'parquet'>, header: ExportHeader): { head: string; tail: string; writer: BatchWriter } {
  if (format === 'csv') return { head: `${['seq', 't', ...header.channels].join(',')}\n`, tail: '', writer: csvWriter };
  if (format === 'ndjson') return { head: '', tail: '', writer: ndjsonWriter(header.channels) };
  return {
    head: `{"sessionId":"${header.sessionId}","channels":${JSON.stringify(header.channels)},"samples":[`,
    tail: `],"nextFromSeq":${header.nextFromSeq}}`,
    writer: jsonArrayWriter(header.channels),
  };
}

export async function* encodeExportBody(
  format: DataFormat,
  header: ExportHeader,
  batches: AsyncIterable<SampleBatch>,
): AsyncGenerator<Buffer> {
  if (format === 'parquet') {
    yield* encodeParquetBody(header, batches);
    return;
  }
  const { head, tail, writer } = framing(format, header);
  let piece = Buffer.allocUnsafe(pieceBytes);
  let at = piece.write(head, 0, 'utf8');
  for await (const batch of batches) {
    const room = writer.room(batch);
    if (at + room > piece.length) {
      if (at > 0) yield piece.subarray(0, at);
      piece = Buffer.allocUnsafe(Math.max(pieceBytes, room));
      at = 0;
    }
    at = writer.write(piece, at, batch);
  }
  if (at + Buffer.byteLength(tail) > piece.length) {
    yield piece.subarray(0, at);
    piece = Buffer.allocUnsafe(Buffer.byteLength(tail));
    at = 0;
  }
  at += piece.write(tail, at, 'utf8');
  if (at > 0) yield piece.subarray(0, at);
}
