/**
 * The binary frame decoder on any bytes: it never throws, and a frame it accepts is exactly
 * the batch it returns, so that storing the batch's memory as it is (the point of the format)
 * stores what the producer sent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { binaryFrameVersion, binaryHeaderBytes, decodeBinaryFrame } from '../../src/ingest/frame-decoder.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { fuzzParameters } from '../support/fuzz.ts';

/** The frame of `batch` as docs/protocol.md lays it out. */
function encodeBinaryFrame(batch: SampleBatch): Buffer {
  const header = Buffer.alloc(binaryHeaderBytes);
  header.writeUInt8(binaryFrameVersion, 0);
  header.writeUInt16LE(batch.channelCount, 2);
  header.writeUInt32LE(batch.count, 4);
  return Buffer.concat([header, Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.columns.byteLength)]);
}

/**
 * Batch memory full of NaNs left by an earlier frame, at an odd place in a larger buffer, as
 * a producer's slab hands it out: a decoder that leaves a value unwritten shows here.
 */
function dirtyAllocate(count: number, channelCount: number): SampleBatch {
  const values = count * (channelCount + 2);
  const memory = new Float64Array(values + 3).fill(Number.NaN);
  return new SampleBatch(count, channelCount, memory.subarray(2, 2 + values));
}

const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
/** Any float64 bits, NaN payloads among them, and the infinities, which random bits hardly ever are. */
const anyDouble = fc.oneof(
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((bytes) => new Float64Array(bytes.buffer)[0]),
  fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
);

/** A frame for `channelCount` channels: valid mostly, else with a bad seq or value. */
function frameArbitrary(channelCount: number) {
  return fc
    .record({
      count: fc.integer({ min: 0, max: 8 }),
      firstSeq: fc.oneof(fc.nat({ max: 100 }), fc.constant(2 ** 53 - 9)),
      steps: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 8, maxLength: 8 }),
      badSeq: fc.option(fc.record({ at: fc.nat(), value: fc.oneof(anyDouble, fc.constantFrom(-1, -0, 0.5, 2 ** 53, 2 ** 53 - 1)) }), {
        freq: 2,
      }),
      values: fc.array(fc.oneof({ weight: 20, arbitrary: finiteDouble }, { weight: 1, arbitrary: anyDouble }), {
        minLength: 8 * (channelCount + 1),
        maxLength: 8 * (channelCount + 1),
      }),
    })
    .map(({ count, firstSeq, steps, badSeq, values }) => {
      const columns = new Float64Array(count * (channelCount + 2));
      for (let i = 0, seq = firstSeq; i < count; seq = Math.min(seq + steps[i++], 2 ** 53 - 1)) columns[i] = seq;
      if (badSeq !== null && count > 0) columns[badSeq.at % count] = badSeq.value;
      columns.set(values.slice(0, count * (channelCount + 1)), count);
      return encodeBinaryFrame(new SampleBatch(count, channelCount, columns));
    });
}

/** A frame with a byte changed, inserted or deleted, cut short, or a header field set to a telling value. */
function mutatedArbitrary(channelCount: number) {
  return fc
    .tuple(
      frameArbitrary(channelCount),
      fc.constantFrom('cut', 'replace', 'insert', 'delete', 'count', 'channels'),
      fc.nat(),
      fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0xffff, 0xffffffff, 2 ** 31, 2 ** 29, 10_001, 65_535)),
    )
    .map(([frame, edit, position, value]) => {
      const at = position % (frame.length + 1);
      if (edit === 'cut') return frame.subarray(0, at);
      if (edit === 'insert') return Buffer.concat([frame.subarray(0, at), Buffer.from([value & 0xff]), frame.subarray(at)]);
      if (edit === 'delete') return Buffer.concat([frame.subarray(0, at), frame.subarray(at + 1)]);
      const out = Buffer.from(frame);
      if (edit === 'count') out.writeUInt32LE(value >>> 0, 4);
      else if (edit === 'channels') out.writeUInt16LE(value & 0xffff, 2);
      else if (at < out.length) out[at] = value & 0xff;
      return out;
    });
}

/** The frame at an odd byte offset of a larger buffer, as a socket may deliver it. */
const unaligned = (frame: Buffer) => Buffer.concat([Buffer.alloc(3), frame]).subarray(3);

function assertDecodesExactly(frame: Buffer, channelCount: number, maxFrameSamples: number): void {
  const limits = { maxFrameBytes: 1024 * 1024, maxFrameSamples };
  const decoded = decodeBinaryFrame(unaligned(frame), channelCount, limits, dirtyAllocate);
  const again = decodeBinaryFrame(frame, channelCount, limits);
  assert.equal(decoded.ok ? 'accepted' : decoded.code, again.ok ? 'accepted' : again.code);
  if (!decoded.ok) return;
  assert.equal(decoded.hasSeq, true);
  assert.ok(decoded.batch.count <= maxFrameSamples);
  assert.deepEqual(encodeBinaryFrame(decoded.batch), frame, 'the accepted batch is not the frame');
  const { count, columns } = decoded.batch;
  for (let i = 0; i < count; i++) {
    assert.ok(Number.isSafeInteger(columns[i]) && columns[i] >= 0 && (i === 0 || columns[i] > columns[i - 1]), `seq ${i}`);
  }
  for (let i = count; i < columns.length; i++) assert.ok(Number.isFinite(columns[i]), `value ${i}`);
}

const channelCountArbitrary = fc.integer({ min: 0, max: 4 });
const maxSamplesArbitrary = fc.oneof(fc.constant(10_000), fc.integer({ min: 1, max: 6 }));

describe('binary frame decoder', () => {
  test('never throws on a frame with a byte changed, inserted, deleted or cut, and accepts only exactly what it returns', () => {
    fc.assert(
      fc.property(
        channelCountArbitrary.chain((channelCount) =>
          fc.tuple(fc.constant(channelCount), fc.oneof(frameArbitrary(channelCount), mutatedArbitrary(channelCount)), maxSamplesArbitrary),
        ),
        ([channelCount, frame, maxSamples]) => assertDecodesExactly(frame, channelCount, maxSamples),
      ),
      fuzzParameters(3000),
    );
  });

  test('never throws on arbitrary bytes, with or without a valid header', () => {
    const header = fc
      .tuple(fc.constantFrom(0, 1, 2), fc.constantFrom(0, 1), channelCountArbitrary, fc.integer({ min: 0, max: 3 }))
      .map(([version, flags, channels, count]) => {
        const out = Buffer.alloc(binaryHeaderBytes);
        out.writeUInt8(version, 0);
        out.writeUInt8(flags, 1);
        out.writeUInt16LE(channels, 2);
        out.writeUInt32LE(count, 4);
        return out;
      });
    const frames = fc.oneof(
      fc.uint8Array({ maxLength: 48 }).map((bytes) => Buffer.from(bytes)),
      fc
        .tuple(header, fc.uint8Array({ maxLength: 200 }))
        .map(([start, rest]) => Buffer.concat([start, rest.subarray(0, rest.length - (rest.length % 8))])),
    );
    fc.assert(
      fc.property(channelCountArbitrary, frames, maxSamplesArbitrary, (channelCount, frame, maxSamples) =>
        assertDecodesExactly(frame, channelCount, maxSamples),
      ),
      fuzzParameters(3000),
    );
  });
});
