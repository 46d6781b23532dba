import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyBuffers } from '../../src/storage/body-buffers.ts';

test('a body is the start of memory of its own, at least 64 KiB and a power of two', () => {
  const bodies = new BodyBuffers();
  const small = bodies.take(100);
  assert.equal(small.length, 100);
  assert.equal(small.byteOffset, 0);
  assert.equal(small.buffer.byteLength, 64 * 1024);
  assert.equal(bodies.take(200_000).buffer.byteLength, 256 * 1024);
});

test('memory given back serves the next body that fits, the smallest that does', () => {
  const bodies = new BodyBuffers();
  const large = bodies.take(1_000_000).buffer as ArrayBuffer;
  const small = bodies.take(10).buffer as ArrayBuffer;
  bodies.give(large);
  bodies.give(small);
  assert.deepEqual(bodies.kept, { pieces: 2, bytes: large.byteLength + small.byteLength });
  assert.equal(bodies.take(1_000).buffer, small);
  assert.equal(bodies.take(1_000).buffer, large);
  assert.deepEqual(bodies.kept, { pieces: 0, bytes: 0 });
  // Nothing kept fits: new memory.
  bodies.give(small);
  const fresh = bodies.take(100_000).buffer;
  assert.notEqual(fresh, small);
  assert.equal(bodies.kept.pieces, 1);
});

test('what is kept stays within its bound, letting the smallest go first, and detached memory is not kept', () => {
  const bodies = new BodyBuffers(200 * 1024);
  const pieces = [64, 128, 64].map((kib) => bodies.take(kib * 1024).buffer as ArrayBuffer);
  for (const piece of pieces) bodies.give(piece);
  // 64 + 128 + 64 KiB is over 200: one 64 KiB piece goes.
  assert.deepEqual(bodies.kept, { pieces: 2, bytes: 192 * 1024 });
  assert.equal(bodies.take(100 * 1024).buffer, pieces[1]);
  // Larger than the bound: not kept at all.
  bodies.give(new ArrayBuffer(256 * 1024));
  assert.deepEqual(bodies.kept, { pieces: 1, bytes: 64 * 1024 });
  const moved = bodies.take(10).buffer as ArrayBuffer;
  structuredClone(moved, { transfer: [moved] });
  bodies.give(moved);
  assert.deepEqual(bodies.kept, { pieces: 0, bytes: 0 });
});
