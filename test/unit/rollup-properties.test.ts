/**
 * Roll-ups without a database: the block layout round-trips any buckets and refuses any other
 * bytes with its own error (arbitrary and mutated input), and the summaries of a commit's COPY
 * body equal a reference computed from its samples at every resolution (differential), and so
 * do the parts of several commits folded by the compactor, in any order.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { addValue, type BucketSummary, bucketStart, emptyBucket } from '../../src/aggregates/bucket-summary.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { encodeCopyBinary } from '../../src/storage/chunk-codec.ts';
import { decodeBlock, encodeBlock, RollupBlockError } from '../../src/storage/rollup-block.ts';
import { compactBlock } from '../../src/storage/rollup-compactor.ts';
import { partsOf, type RollupPart } from '../../src/storage/rollup-store.ts';
import { blockSpanOf, maxBlocksPerSession, rollupResolutionsMs, rollupsOfCopyBody } from '../../src/storage/rollup-summaries.ts';
import { decodesOrRefuses as fuzzDecodesOrRefuses, fuzzParameters } from '../support/fuzz.ts';
import { assertSameBuckets, bucketsOfParts, type PlainSample, referenceBuckets } from '../support/rollup-reference.ts';

const value = fc.oneof(
  fc.double({ min: -1e12, max: 1e12, noNaN: true }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.constant(Number.NaN),
  fc.constant(-0),
);

/** Samples of `channels` channels with rising seqs (gaps allowed) and t anywhere in a few blocks, late t included. */
function samplesOf(channels: number, maxT: number) {
  return fc
    .array(
      fc.tuple(
        fc.integer({ min: 1, max: 3 }),
        fc.double({ min: -maxT, max: maxT, noNaN: true }),
        fc.array(value, { minLength: channels, maxLength: channels }),
      ),
      {
        minLength: 1,
        maxLength: 120,
      },
    )
    .map((rows) => {
      let seq = 0;
      return rows.map(([step, t, values]): PlainSample => {
        seq += step;
        return { seq, t, values };
      });
    });
}

function summariesOf(samples: readonly PlainSample[], channels: number, resolutionMs: number): BucketSummary[] {
  const byT = new Map<number, BucketSummary>();
  for (const { seq, t, values } of samples) {
    const start = bucketStart(t, resolutionMs);
    const bucket = byT.get(start) ?? emptyBucket(start, channels);
    byT.set(start, bucket);
    bucket.count++;
    for (const [c, v] of values.entries()) addValue(bucket.channels[c], seq, v);
  }
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

const blocks = fc
  .integer({ min: 1, max: 4 })
  .chain((channels) => fc.tuple(fc.constant(channels), samplesOf(channels, 5_000)))
  .map(([channels, samples]) => ({ channels, buckets: summariesOf(samples, channels, rollupResolutionsMs[0]) }));

test('a block decodes to the buckets it was encoded from, singles and summaries alike', () => {
  fc.assert(
    fc.property(blocks, ({ channels, buckets }) => {
      assert.deepStrictEqual(decodeBlock(encodeBlock(buckets, channels)), { channels, buckets });
    }),
    fuzzParameters(300),
  );
});

const decodesOrRefuses = (bytes: Uint8Array) => fuzzDecodesOrRefuses(() => decodeBlock(bytes), RollupBlockError);

test('arbitrary bytes decode or are refused with a RollupBlockError, never anything else', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), decodesOrRefuses), fuzzParameters(500));
});

test('a block with bytes changed, cut or added decodes or is refused with a RollupBlockError', () => {
  const mutation = fc.oneof(
    fc.tuple(fc.constant('set' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
    fc.tuple(fc.constant('cut' as const), fc.nat(), fc.constant(0)),
    fc.tuple(fc.constant('add' as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
  );
  fc.assert(
    fc.property(blocks, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ channels, buckets }, mutations) => {
      let bytes = Uint8Array.from(encodeBlock(buckets, channels));
      for (const [kind, at, byte] of mutations) {
        const i = bytes.length === 0 ? 0 : at % bytes.length;
        if (kind === 'set' && bytes.length > 0) bytes[i] = byte;
        else if (kind === 'cut') bytes = bytes.subarray(0, i);
        else bytes = Uint8Array.from([...bytes.subarray(0, i), byte, ...bytes.subarray(i)]);
      }
      decodesOrRefuses(bytes);
    }),
    fuzzParameters(500),
  );
});

/** What readRollups reads of `parts` at `resolutionMs` over all t: its own, and at a coarser one the pending finest ones rolled up. */
function readParts(parts: readonly RollupPart[], resolutionMs: number): BucketSummary[] {
  const finest = rollupResolutionsMs[0];
  const read = parts.filter((p) => p.resolutionMs === resolutionMs || (resolutionMs !== finest && p.resolutionMs === finest && p.pending));
  const rows = read.map((p) => ({ rollUp: p.resolutionMs !== resolutionMs, summary: p.summary }));
  const channels = read.length === 0 ? 1 : decodeBlock(read[0].summary).channels;
  return bucketsOfParts(rows, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, channels);
}

function batchOf(samples: readonly PlainSample[], channels: number): SampleBatch {
  const batch = SampleBatch.allocate(samples.length, channels);
  const n = samples.length;
  samples.forEach(({ seq, t, values }, i) => {
    batch.columns[i] = seq;
    batch.columns[n + i] = t;
    values.forEach((v, c) => {
      batch.columns[(2 + c) * n + i] = v;
    });
  });
  return batch;
}

test("a commit's roll-ups equal the reference at every resolution, for every session of its body", () => {
  const session = fc
    .integer({ min: 1, max: 3 })
    .chain((channels) => fc.tuple(fc.constant(channels), samplesOf(channels, 10_000_000), fc.integer({ min: 1, max: 40 })));
  fc.assert(
    fc.property(fc.array(session, { minLength: 1, maxLength: 3 }), (sessions) => {
      const ids = sessions.map(() => randomUUID());
      // Each session's samples cut into rows of up to `size`, some rows of several batches.
      const rows = sessions.flatMap(([channels, samples, size], s) => {
        const out = [];
        for (let at = 0; at < samples.length; at += size) {
          const part = samples.slice(at, at + size);
          const half = Math.ceil(part.length / 2);
          const batches = [batchOf(part.slice(0, half), channels), batchOf(part.slice(half), channels)].filter((b) => b.count > 0);
          out.push({ sessionId: ids[s], batches });
        }
        return out;
      });
      const rollups = rollupsOfCopyBody(encodeCopyBinary(rows));
      assert.deepEqual(rollups.map((r) => r.sessionId).sort(), [...ids].sort());
      for (const [s, [channels, samples]] of sessions.entries()) {
        const mine = rollups.find((r) => r.sessionId === ids[s])!;
        assert.equal(mine.samples, samples.length);
        assert.equal(mine.channels, channels);
        assert.ok(mine.blocks !== null);
        for (const resolutionMs of rollupResolutionsMs) {
          const blocksHere = mine.blocks.filter((b) => b.resolutionMs === resolutionMs).sort((a, b) => a.blockT - b.blockT);
          for (const block of blocksHere) {
            assert.equal(block.blockT, bucketStart(block.blockT, blockSpanOf(resolutionMs)));
            for (const bucket of block.buckets) assert.equal(bucketStart(bucket.t, blockSpanOf(resolutionMs)), block.blockT);
          }
          const actual = readParts(partsOf([mine]), resolutionMs);
          assertSameBuckets(actual, referenceBuckets(samples, channels, resolutionMs), `resolution ${resolutionMs}`);
        }
      }
    }),
    fuzzParameters(150),
  );
});

test('a session whose samples spread over more blocks than a commit may touch gets no roll-ups in it', () => {
  const count = maxBlocksPerSession + 1;
  const samples = Array.from(
    { length: count },
    (_, i): PlainSample => ({ seq: i + 1, t: i * blockSpanOf(rollupResolutionsMs[0]) * 7, values: [i] }),
  );
  const [sprayed] = rollupsOfCopyBody(encodeCopyBinary([{ sessionId: randomUUID(), batches: [batchOf(samples, 1)] }]));
  assert.equal(sprayed.samples, count);
  assert.equal(sprayed.blocks, null);
  const [fine] = rollupsOfCopyBody(encodeCopyBinary([{ sessionId: randomUUID(), batches: [batchOf(samples.slice(0, 1000), 1)] }]));
  assert.ok(fine.blocks !== null);
});

/** The parts of `samples` committed in pieces cut at `cuts`, as the writer appends them. */
function partsOfCommits(samples: readonly PlainSample[], channels: number, cuts: readonly number[]): RollupPart[] {
  const sessionId = randomUUID();
  const ends = [...new Set(cuts.map((cut) => cut % samples.length))].sort((a, b) => a - b).filter((end) => end > 0);
  const pieces = [0, ...ends, samples.length].slice(1).map((end, i, all) => samples.slice(i === 0 ? 0 : all[i - 1], end));
  return pieces.flatMap((piece) => partsOf(rollupsOfCopyBody(encodeCopyBinary([{ sessionId, batches: [batchOf(piece, channels)] }]))));
}

/** One compaction of every block of `parts` with a pending part, as a batch does it. */
function compactAll(parts: readonly RollupPart[]): RollupPart[] {
  const byBlock = new Map<string, RollupPart[]>();
  for (const part of parts) {
    const key = `${part.resolutionMs}/${part.blockT}`;
    byBlock.set(key, [...(byBlock.get(key) ?? []), part]);
  }
  return [...byBlock.values()].flatMap((block) => (block.some((part) => part.pending) ? compactBlock(block) : block));
}

test("a session's parts, appended commit by commit in any split and order, read and compact into the reference", () => {
  const commits = fc
    .integer({ min: 1, max: 3 })
    .chain((channels) => fc.tuple(fc.constant(channels), samplesOf(channels, 200_000), fc.array(fc.nat(), { maxLength: 6 })));
  fc.assert(
    fc.property(commits, fc.boolean(), ([channels, samples, cuts], reversed) => {
      const parts = partsOfCommits(samples, channels, cuts);
      if (reversed) parts.reverse();
      // As appended, after one compaction (the coarser parts rolled up pending), and after a second (all folded).
      const once = compactAll(parts);
      const twice = compactAll(once);
      assert.ok(twice.every((part) => !part.pending));
      for (const resolutionMs of rollupResolutionsMs) {
        const expected = referenceBuckets(samples, channels, resolutionMs);
        assertSameBuckets(readParts(parts, resolutionMs), expected, `appended, at ${resolutionMs}`);
        assertSameBuckets(readParts(once, resolutionMs), expected, `compacted once, at ${resolutionMs}`);
        assertSameBuckets(readParts(twice, resolutionMs), expected, `compacted twice, at ${resolutionMs}`);
        assert.equal(
          twice.filter((part) => part.resolutionMs === resolutionMs).length,
          new Set(expected.map((b) => bucketStart(b.t, blockSpanOf(resolutionMs)))).size,
        );
      }
    }),
    fuzzParameters(150),
  );
});

test('a sample whose coarser buckets are not those of its finest bucket is written at every resolution, and read exactly', () => {
  // -1.897e-321 / 600 is below 0, but / 60,000 and / 3,600,000 it rounds to -0: buckets -600, 0, 0.
  const samples: PlainSample[] = [
    { seq: 1, t: -1.897e-321, values: [1] },
    { seq: 2, t: -5, values: [2] },
    { seq: 3, t: 5, values: [3] },
  ];
  const parts = partsOfCommits(samples, 1, []);
  const keys = (of: ReadonlyArray<Pick<RollupPart, 'resolutionMs' | 'blockT' | 'pending'>>) =>
    of.map(({ resolutionMs, blockT, pending }) => `${resolutionMs} ${blockT} ${pending}`).sort();
  // The finest block at -600 holds the regular sample at -5 (pending) and the irregular one (not);
  // the coarser blocks get the irregular one alone.
  assert.deepEqual(
    keys(parts),
    keys([
      { resolutionMs: 600, blockT: -blockSpanOf(600), pending: true },
      { resolutionMs: 600, blockT: 0, pending: true },
      { resolutionMs: 600, blockT: -blockSpanOf(600), pending: false },
      { resolutionMs: 60_000, blockT: 0, pending: true },
      { resolutionMs: 3_600_000, blockT: 0, pending: true },
    ]),
  );
  for (const resolutionMs of rollupResolutionsMs) {
    const expected = referenceBuckets(samples, 1, resolutionMs);
    assertSameBuckets(readParts(parts, resolutionMs), expected, `appended, at ${resolutionMs}`);
    assertSameBuckets(readParts(compactAll(compactAll(parts)), resolutionMs), expected, `compacted, at ${resolutionMs}`);
  }
});
