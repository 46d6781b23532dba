import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { type ProducerHandle, SessionState } from '../../src/sessions/session-state.ts';

function batch(seqs: number[]): SampleBatch {
  const out = SampleBatch.allocate(seqs.length, 1);
  seqs.forEach((seq, i) => {
    out.columns[i] = seq;
    out.columns[seqs.length + i] = seq * 10;
    out.columns[2 * seqs.length + i] = seq / 2;
  });
  return out;
}

function recordingProducer(): ProducerHandle & { acks: number[] } {
  const acks: number[] = [];
  return {
    acks,
    awaitsCommit: false,
    sendAck: (seq) => acks.push(seq),
    closeForEnd: () => undefined,
    closeForConflict: () => undefined,
    closeForDelete: () => undefined,
  };
}

test('samples at or below the highest accepted seq are dropped; a gap below it stays a gap', () => {
  const state = new SessionState({ sessionId: 's', channels: ['x'], lastCommittedSeq: -1, windowMaxBytes: 1 << 20 });
  assert.equal(state.accept(batch([1, 2, 3]), true).kind, 'accepted');
  assert.equal(state.accept(batch([10, 11]), true).kind, 'accepted');
  assert.equal(state.accept(batch([4, 5]), true).kind, 'duplicate');
  const mixed = state.accept(batch([9, 10, 11, 12, 13]), true);
  assert.ok(mixed.kind === 'accepted');
  assert.deepEqual([...mixed.batch.columns.subarray(0, mixed.batch.count)], [12, 13]);
  assert.equal(state.highestAcceptedSeq, 13);
});

test('seqs are assigned from the highest accepted + 1, starting at 1', () => {
  const fresh = new SessionState({ sessionId: 's', channels: ['x'], lastCommittedSeq: -1, windowMaxBytes: 1 << 20 });
  const first = fresh.accept(batch([0, 0]), false);
  assert.ok(first.kind === 'accepted');
  assert.deepEqual([first.batch.seq(0), first.batch.seq(1)], [1, 2]);
  const resumed = new SessionState({ sessionId: 's', channels: ['x'], lastCommittedSeq: 41, windowMaxBytes: 1 << 20 });
  const next = resumed.accept(batch([0]), false);
  assert.ok(next.kind === 'accepted');
  assert.equal(next.batch.seq(0), 42);
});

test('commits ack the producer, wake waiters, and an ended session accepts nothing', async () => {
  const state = new SessionState({ sessionId: 's', channels: ['x'], lastCommittedSeq: -1, windowMaxBytes: 1 << 20 });
  const producer = recordingProducer();
  state.producer = producer;
  state.accept(batch([1, 2]), true);
  state.accept(batch([3]), true);
  let committed = false;
  const waiting = state.whenCommitted().then(() => (committed = true));
  state.markCommitted(2);
  await Promise.resolve();
  assert.equal(committed, false);
  state.markCommitted(3);
  await waiting;
  assert.deepEqual(producer.acks, [2, 3]);
  state.ended = true;
  assert.equal(state.accept(batch([4]), true).kind, 'ended');
});

test('the recent window keeps every uncommitted frame and sheds committed ones beyond its bound', () => {
  const state = new SessionState({ sessionId: 's', channels: ['x'], lastCommittedSeq: -1, windowMaxBytes: 1 });
  state.accept(batch([1]), true);
  state.accept(batch([2]), true);
  assert.equal(state.windowSnapshot().length, 2);
  state.markCommitted(1);
  assert.deepEqual(
    state.windowSnapshot().map((frame) => frame.batch.firstSeq),
    [2],
  );
  state.markCommitted(2);
  assert.equal(state.windowSnapshot().length, 0);
});
