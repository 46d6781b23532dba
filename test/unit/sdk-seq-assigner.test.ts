import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeqAssigner } from '../../src/sdk/seq-assigner.ts';
import type { SampleInput } from '../../src/sdk/types.ts';

const accept = () => undefined;

test('SDK seqs wait, copied, until the start is known, then number on from it in push order', () => {
  const seqs = new SeqAssigner();
  const first = { ax: 1 };
  seqs.admit([first, { ax: 2 }], accept);
  assert.equal(seqs.assign(first, 10), null);
  assert.equal(seqs.assign({ ax: 2 }, 11), null);
  first.ax = 99;
  assert.equal(seqs.waitingCount, 2);
  assert.equal(seqs.lastSeq, null);

  assert.deepEqual(seqs.start(7), [
    { seq: 7, sample: { ax: 1, t: 10 } },
    { seq: 8, sample: { ax: 2, t: 11 } },
  ]);
  assert.equal(seqs.waitingCount, 0);
  assert.equal(seqs.lastSeq, 8);
  // A later accepted connection does not move the start.
  assert.deepEqual(seqs.start(100), []);
  seqs.admit([{ ax: 3 }], accept);
  assert.equal(seqs.assign({ ax: 3 }, 12), 9);
  assert.equal(seqs.lastSeq, 9);
});

test('caller seqs are taken as given, must increase across pushes, and never wait', () => {
  const seqs = new SeqAssigner();
  seqs.admit([{ seq: 5 }, { seq: 9 }], accept);
  assert.equal(seqs.assign({ seq: 5 }, 0), 5);
  assert.equal(seqs.lastSeq, 9);
  assert.throws(() => seqs.admit([{ seq: 10 }, { seq: 9 }], accept), /sample 1: seq 9 is not above the previous seq 10/);
  assert.throws(() => seqs.admit([{ seq: 9 }], accept), /sample 0: seq 9 is not above the previous seq 9/);
  assert.equal(seqs.lastSeq, 9, 'a refused push takes nothing');
  assert.throws(() => seqs.admit([{ ax: 1 }], accept), /every pushed sample has a seq or none/);
  assert.equal(seqs.waitingCount, 0);
});

test('a push that mixes modes is refused whole, and sets no mode', () => {
  const seqs = new SeqAssigner();
  assert.throws(() => seqs.admit([{ ax: 1 }, { seq: 1 }], accept), /every pushed sample has a seq or none/);
  seqs.admit([{ seq: 1 }], accept);
  assert.equal(seqs.lastSeq, 1);
});

test('validation runs on each sample before its seq is checked, so the first fault in push order is named', () => {
  const seqs = new SeqAssigner();
  const validate = (sample: SampleInput, index: number) => {
    if (sample.ax === undefined) throw new TypeError(`sample ${index}: no ax`);
  };
  assert.throws(() => seqs.admit([{ seq: 2, ax: 0 }, { seq: 1, ax: 0 }, { seq: 3 }], validate), /sample 1: seq 1 is not above/);
  assert.throws(() => seqs.admit([{ seq: 2, ax: 0 }, { seq: 3 }, { seq: 1, ax: 0 }], validate), /sample 1: no ax/);
});
