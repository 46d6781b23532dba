/**
 * The chunk compressor's transactions (chunk-groups.ts): consecutive groups, in order, each
 * transaction holding at most transactionSamples listed samples, or one group that alone holds more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ChunkGroup, transactionSamples, transactionsOf } from '../../src/storage/chunk-groups.ts';

const group = (samples: number, i: number): ChunkGroup => ({ sessionId: `s${i}`, fromLastSeq: i, toLastSeq: i, samples });
const sizes = (transactions: ChunkGroup[][]) => transactions.map((groups) => groups.map((g) => g.samples));

test('groups go in order into transactions of at most transactionSamples samples', () => {
  const eighth = transactionSamples / 8;
  const groups = [...Array.from({ length: 17 }, (_, i) => group(eighth, i)), group(1, 17)];
  const transactions = transactionsOf(groups);
  assert.deepEqual(sizes(transactions), [Array(8).fill(eighth), Array(8).fill(eighth), [eighth, 1]]);
  assert.deepEqual(transactions.flat(), groups);
});

test('a group larger than a transaction goes alone, and none is empty', () => {
  const groups = [group(10, 0), group(transactionSamples + 1, 1), group(transactionSamples, 2), group(5, 3)];
  assert.deepEqual(sizes(transactionsOf(groups)), [[10], [transactionSamples + 1], [transactionSamples], [5]]);
  assert.deepEqual(transactionsOf([]), []);
});
