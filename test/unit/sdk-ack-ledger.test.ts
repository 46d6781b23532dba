import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AckLedger } from '../../src/sdk/ack-ledger.ts';

const settled = async (promise: Promise<void>) => {
  let state = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return state;
};

const noTimeout = () => new Error('no timeout expected');

test('counts pushed and acked samples, and keeps the highest seq acked', () => {
  const ledger = new AckLedger(10);
  assert.equal(ledger.lastAckedSeq, null);
  assert.equal(ledger.pushed(4), true);
  ledger.acked(3, 3);
  ledger.acked(2, 0);
  assert.equal(ledger.lastAckedSeq, 3);
  assert.equal(ledger.unacked, 1);
});

test('allAcked waits for every sample pushed before it, not for later ones', async () => {
  const ledger = new AckLedger(100);
  assert.equal(await settled(ledger.allAcked(undefined, noTimeout)), 'resolved', 'nothing unacked');
  ledger.pushed(5);
  const flush = ledger.allAcked(undefined, noTimeout);
  ledger.pushed(5);
  ledger.acked(4, 4);
  ledger.settle();
  assert.equal(await settled(flush), 'pending');
  ledger.acked(5, 1);
  // Counted, but a waiter settles only at settle().
  assert.equal(await settled(flush), 'pending');
  ledger.settle();
  assert.equal(await settled(flush), 'resolved');
});

test('allAcked rejects with the given error after its timeout, and leaves the others waiting', async () => {
  const ledger = new AckLedger(100);
  ledger.pushed(1);
  const timedOut = ledger.allAcked(5, () => new Error('too slow'));
  const patient = ledger.allAcked(undefined, noTimeout);
  await assert.rejects(timedOut, /too slow/);
  ledger.acked(1, 1);
  ledger.settle();
  assert.equal(await settled(patient), 'resolved');
});

test('above the bound a push says so, and the fall back within it is one drain that resolves drained()', async () => {
  const ledger = new AckLedger(10);
  assert.equal(await settled(ledger.drained()), 'resolved', 'within the bound');
  assert.equal(ledger.pushed(10), true);
  assert.equal(ledger.pushed(2), false);
  assert.equal(ledger.withinBound, false);
  const drained = ledger.drained();
  ledger.acked(1, 1);
  assert.equal(ledger.settle(), false, 'still 11 unacked');
  ledger.acked(2, 1);
  assert.equal(ledger.settle(), true);
  assert.equal(await settled(drained), 'resolved');
  ledger.acked(3, 1);
  assert.equal(ledger.settle(), false, 'a drain is reported once');
});

test('rejectAll rejects every waiter, flush and drain', async () => {
  const ledger = new AckLedger(1);
  ledger.pushed(2);
  const flush = ledger.allAcked(1_000, noTimeout);
  const drained = ledger.drained();
  ledger.rejectAll(new Error('closed'));
  await assert.rejects(flush, /closed/);
  await assert.rejects(drained, /closed/);
  ledger.acked(2, 2);
  assert.equal(ledger.settle(), true, 'the drain itself still happens');
});
