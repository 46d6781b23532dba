/**
 * The Parquet body of GET /sessions/{id}/data: columns named as the CSV header, `seq` INT64,
 * `t` and each channel DOUBLE (a channel OPTIONAL in a nullable session, whose nulls are
 * stored as NaN), PLAIN encoding, uncompressed. hyparquet-writer encodes; this module feeds
 * it row groups and hands on its bytes.
 *
 * Streaming: Parquet's footer (the schema and where each row group lies) comes last, so each
 * row group is written as soon as it is full and its bytes are passed on; the writer keeps only
 * its metadata for the footer. Memory holds one row group (at most about 8 MiB of values, see
 * rowsPerGroup) and its encoding, plus the footer's few hundred bytes per column chunk,
 * whatever the size of the session. A body that breaks off has no footer, so no reader takes
 * it for a complete file.
 *
 * Choices, with figures in docs/performance.md: no SNAPPY (measured sensor noise shrinks
 * little, about 20 %, and the codec cost half the writer's speed), PLAIN rather than
 * dictionaries (floats rarely repeat), statistics on seq and t only (what a reader's range
 * filter skips row groups by; on every channel they cost about a third more time per row).
 */
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { SampleBatch } from '../samples/sample-batch.ts';

export interface ParquetHeader {
  sessionId: string;
  channels: readonly string[];
  /** Whether channel values may be null (NaN in a batch): their columns are OPTIONAL then. */
  nullable: boolean;
}

const groupBytes = 8 * 1024 * 1024;
/** DuckDB's own row group size: enough rows for a reader's parallel scan and range skipping to pay. */
const maxGroupRows = 122_880;
/** A floor so that a session of many channels does not get a footer entry per column every few rows. */
const minGroupRows = 4_096;

/** Rows per row group: about `groupBytes` of values, within [minGroupRows, maxGroupRows]. */
export function rowsPerGroup(channelCount: number): number {
  const rowBytes = 8 * (channelCount + 2);
  return Math.max(minGroupRows, Math.min(maxGroupRows, Math.floor(groupBytes / rowBytes)));
}

/** The writer's target: it hands over what it has written at each flush, once per row group, and starts its buffer over. */
class PieceWriter extends ByteWriter {
  readonly pieces: Buffer[] = [];

  flush(): void {
    if (this.index > 0) this.pieces.push(Buffer.from(this.buffer.slice(0, this.index)));
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }
}

type Schema = ConstructorParameters<typeof ParquetWriter>[0]['schema'];

function parquetSchema({ channels, nullable }: ParquetHeader): Schema {
  return [
    { name: 'root', num_children: channels.length + 2 },
    { name: 'seq', type: 'INT64', repetition_type: 'REQUIRED' },
    { name: 't', type: 'DOUBLE', repetition_type: 'REQUIRED' },
    ...channels.map((name) => ({ name, type: 'DOUBLE', repetition_type: nullable ? 'OPTIONAL' : 'REQUIRED' }) as const),
  ];
}

/** A nullable channel's values with its NaNs as nulls, the writer's way of saying a value is missing. */
function withNulls(values: Float64Array): Array<number | null> {
  const out = new Array<number | null>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Number.isNaN(values[i]) ? null : values[i];
  return out;
}

/** Samples gathered column-wise, as in a SampleBatch, until a row group is full. */
class RowGroup {
  readonly columns: Float64Array;
  rows = 0;

  constructor(
    readonly capacity: number,
    readonly columnCount: number,
  ) {
    this.columns = new Float64Array(capacity * columnCount);
  }

  /** Copies samples of `batch` from `from` on, as many as fit; returns the index after the last one taken. */
  take(batch: SampleBatch, from: number): number {
    const taken = Math.min(this.capacity - this.rows, batch.count - from);
    for (let column = 0; column < this.columnCount; column++) {
      const start = column * batch.count + from;
      this.columns.set(batch.columns.subarray(start, start + taken), column * this.capacity + this.rows);
    }
    this.rows += taken;
    return from + taken;
  }

  column(index: number): Float64Array {
    return this.columns.subarray(index * this.capacity, index * this.capacity + this.rows);
  }

  get full(): boolean {
    return this.rows === this.capacity;
  }
}

function writeGroup(writer: ParquetWriter, group: RowGroup, header: ParquetHeader): void {
  const seqs = group.column(0);
  // INT64 takes bigints; every stored seq is an integer up to 2^53-1, so each converts exactly.
  const seq = new BigInt64Array(group.rows);
  for (let i = 0; i < group.rows; i++) seq[i] = BigInt(seqs[i]);
  const channels = header.channels.map((name, c) => {
    const values = group.column(c + 2);
    return { name, data: header.nullable ? withNulls(values) : values, encoding: 'PLAIN' as const, statistics: false };
  });
  // No promise: PieceWriter's flush is synchronous, so the row group is written when this returns.
  void writer.write({
    columnData: [
      { name: 'seq', data: seq, encoding: 'PLAIN', statistics: true },
      { name: 't', data: group.column(1), encoding: 'PLAIN', statistics: true },
      ...channels,
    ],
    rowGroupSize: group.rows,
  });
  group.rows = 0;
}

export async function* encodeParquetBody(
  header: ParquetHeader,
  batches: AsyncIterable<SampleBatch>,
  groupRows = rowsPerGroup(header.channels.length),
): AsyncGenerator<Buffer> {
  const target = new PieceWriter();
  const writer = new ParquetWriter({
    writer: target,
    schema: parquetSchema(header),
    codec: 'UNCOMPRESSED',
    createdBy: 'wavehouse',
    kvMetadata: [{ key: 'wavehouse.sessionId', value: header.sessionId }],
  });
  const group = new RowGroup(groupRows, header.channels.length + 2);
  for await (const batch of batches) {
    for (let at = 0; at < batch.count; ) {
      at = group.take(batch, at);
      if (group.full) {
        writeGroup(writer, group, header);
        yield* target.pieces.splice(0);
      }
    }
  }
  if (group.rows > 0) writeGroup(writer, group, header);
  void writer.finish();
  yield* target.pieces.splice(0);
}
