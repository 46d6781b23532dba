/**
 * The compressed chunk payload (payload_layout 2, migration 014), which the chunk compressor
 * (chunk-compressor.ts) writes in place of sealed chunks: a version byte, the channel count,
 * then the columns seq, t and each channel, each in the smaller of its lossless forms
 * (column-codec.ts). Every value reads back bit for bit: NaN payloads (a nullable session's
 * nulls), -0 and infinities included.
 */
import { SampleBatch } from '../samples/sample-batch.ts';
import { BitReader, BitWriter } from './bit-stream.ts';
import { readColumn, writeColumn } from './column-codec.ts';

const version = 1;
/** Bounds what a decode allocates, whatever a corrupt row claims: at most 257 columns of this many float64. */
export const compressedChunkMaxSamples = 1 << 17;

/** The fewest bits a column of `count` values takes in either form (column-codec.ts): a payload shorter is refused unread. */
function fewestColumnBits(count: number): number {
  return Math.min(65 + (count - 1), 100 + 6 * Math.ceil((count - 1) / 64));
}

/** The batch's samples as a compressed payload. */
export function compressBatch(batch: SampleBatch): Buffer {
  const { count, channelCount, columns } = batch;
  if (count < 1 || count > compressedChunkMaxSamples || channelCount > 255) {
    throw new RangeError(`cannot compress ${count} samples of ${channelCount} channels`);
  }
  const bits = new Uint32Array(columns.buffer, columns.byteOffset, columns.length * 2);
  // A guess of about 12 bytes a sample for three channels, grown if it falls short.
  const out = new BitWriter(count * (channelCount + 1) * 3 + 64);
  out.write(version, 8);
  out.write(channelCount, 8);
  for (let column = 0; column < channelCount + 2; column++) {
    const from = column * count;
    writeColumn(out, columns.subarray(from, from + count), bits.subarray(2 * from, 2 * (from + count)));
  }
  return out.finish();
}

/** The samples of a compressed payload, in the layout of SampleBatch; the caller checks their seqs. */
export function decompressPayload(payload: Uint8Array, count: number, where: string): SampleBatch {
  const reader = new BitReader(payload, where);
  if (count > compressedChunkMaxSamples) throw reader.corrupt(`${count} samples`);
  const stored = reader.read(8);
  if (stored !== version) throw reader.corrupt(`version ${stored}`);
  const channelCount = reader.read(8);
  if (payload.length * 8 < 16 + (channelCount + 2) * fewestColumnBits(count)) throw reader.corrupt('too short for its samples');
  const batch = SampleBatch.allocate(count, channelCount);
  const { columns } = batch;
  const bits = new Uint32Array(columns.buffer, columns.byteOffset, columns.length * 2);
  for (let column = 0; column < channelCount + 2; column++) {
    const from = column * count;
    readColumn(reader, columns.subarray(from, from + count), bits.subarray(2 * from, 2 * (from + count)));
  }
  reader.end();
  return batch;
}
