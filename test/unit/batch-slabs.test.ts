import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBinaryFrame, decodeTextFrame } from '../../src/ingest/frame-decoder.ts';
import { BatchSlabs } from '../../src/samples/batch-slabs.ts';
import { type BatchAllocator, SampleBatch } from '../../src/samples/sample-batch.ts';

test("batches carved from one producer's slabs never share memory, and each keeps what was written to it", () => {
  const slabs = new BatchSlabs();
  const sizes = Array.from({ length: 500 }, (_, i) => [1 + ((i * 37) % 120), 1 + (i % 6)] as const);
  const batches = sizes.map(([count, channels]) => slabs.allocate(count, channels));
  batches.forEach((batch, i) => {
    batch.columns.fill(i + 0.5);
  });
  batches.forEach((batch, i) => {
    assert.equal(batch.count, sizes[i][0]);
    assert.equal(batch.columns.length, sizes[i][0] * (sizes[i][1] + 2));
    assert.ok(
      batch.columns.every((value) => value === i + 0.5),
      `batch ${i} was overwritten`,
    );
  });
});

test('slabs start at 16 KiB and double as they fill, to 128 KiB; a frame over 64 KiB gets memory of its own', () => {
  const slabs = new BatchSlabs();
  const slabOf = (batch: { columns: Float64Array }) => batch.columns.buffer;
  // 2,000-byte batches (50 samples x 3 channels), as the bench's frames.
  const first = slabs.allocate(50, 3);
  assert.equal(slabOf(first).byteLength, 16 * 1024);
  const seen = [slabOf(first)];
  for (let i = 0; i < 400; i++) {
    const buffer = slabOf(slabs.allocate(50, 3));
    if (buffer !== seen.at(-1)) seen.push(buffer);
  }
  assert.deepEqual(
    seen.slice(0, 5).map((buffer) => buffer.byteLength / 1024),
    [16, 32, 64, 128, 128],
  );
  // 8 samples of 1,022 channels is 65,536 bytes, half of the largest slab: still carved.
  assert.equal(slabOf(slabs.allocate(8, 1022)).byteLength, 128 * 1024);
  const current = slabOf(slabs.allocate(1, 1));
  const big = slabs.allocate(9, 1022);
  assert.equal(slabOf(big).byteLength, 9 * 1024 * 8);
  // ... and the slab in use goes on serving the small ones after it.
  assert.equal(slabOf(slabs.allocate(1, 1)), current);
});

test('a first frame bigger than the first slab gets a slab that holds it twice', () => {
  const slabs = new BatchSlabs();
  const batch = slabs.allocate(500, 3); // 20,000 bytes
  assert.equal(batch.columns.buffer.byteLength, 64 * 1024);
});

test('what was carved since the mark is given back, so the next batch takes its place', () => {
  const slabs = new BatchSlabs();
  const kept = slabs.allocate(10, 3);
  slabs.mark();
  const dropped = slabs.allocate(2_000, 2); // 64,000 bytes: more than the first slab holds, so a new one
  assert.notEqual(dropped.columns.buffer, kept.columns.buffer);
  slabs.dropSinceMark();
  const next = slabs.allocate(10, 3);
  assert.equal(next.columns.buffer, kept.columns.buffer);
  assert.equal(next.columns.byteOffset, kept.columns.byteOffset + kept.columns.byteLength);
  // Dropping with nothing carved since the mark changes nothing.
  slabs.mark();
  slabs.dropSinceMark();
  assert.equal(slabs.allocate(1, 1).columns.byteOffset, next.columns.byteOffset + next.columns.byteLength);
});

test('the decoders write into the memory they are given, in each of their paths', () => {
  const limits = { maxFrameBytes: 1 << 20, maxFrameSamples: 1000 };
  const frame = Buffer.alloc(8 + 3 * 8);
  frame.writeUInt8(1, 0);
  frame.writeUInt16LE(1, 2);
  frame.writeUInt32LE(1, 4);
  frame.writeDoubleLE(2, 8);
  frame.writeDoubleLE(3, 16);
  frame.writeDoubleLE(4, 24);
  const decoders = {
    binary: (allocate: BatchAllocator) => decodeBinaryFrame(frame, 1, limits, allocate),
    'JSON, scanned': (allocate: BatchAllocator) =>
      decodeTextFrame(Buffer.from('{"samples":[{"seq":2,"t":3,"x":4}]}'), ['x'], limits, 0, allocate),
    'JSON, parsed': (allocate: BatchAllocator) =>
      decodeTextFrame('{"type":"samples_batch","payload":{"samples":[{"seq":2,"t":3,"x":4}]}}', ['x'], limits, 0, allocate),
  };
  for (const [path, decode] of Object.entries(decoders)) {
    const given: SampleBatch[] = [];
    const decoded = decode((count, channelCount) => {
      const batch = SampleBatch.allocate(count, channelCount);
      given.push(batch);
      return batch;
    });
    assert.ok(decoded.ok, path);
    assert.equal(given.length, 1, path);
    assert.equal(given[0], decoded.batch, path);
    assert.deepEqual([...decoded.batch.columns], [2, 3, 4], path);
  }
});
