import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pollUntil, within } from '../../src/deadlines.ts';

test('within: the value of work that settles in time', async () => {
  assert.equal(await within(Promise.resolve(7), 1_000, () => 'late'), 7);
});

test('within: a rejection in time rejects', async () => {
  await assert.rejects(
    within(Promise.reject(new Error('no')), 1_000, () => 'late'),
    /no/,
  );
});

test('within: late work gives late()’s answer, and its later rejection goes unhandled nowhere', async () => {
  let reject!: (error: Error) => void;
  const work = new Promise<number>((_resolve, rejectWork) => (reject = rejectWork));
  const started = Date.now();
  assert.equal(await within(work, 30, () => 'late' as const), 'late');
  assert.ok(Date.now() - started >= 25, 'answered before the bound');
  const unhandled: unknown[] = [];
  const listener = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', listener);
  reject(new Error('after the bound'));
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', listener);
  assert.deepEqual(unhandled, []);
});

test('within: late() may throw, to reject', async () => {
  await assert.rejects(
    within(new Promise(() => undefined), 10, () => {
      throw new Error('timed out');
    }),
    /timed out/,
  );
});

test('pollUntil: yes as soon as the check says so', async () => {
  let calls = 0;
  assert.equal(await pollUntil(() => ++calls === 3, 1_000, 5), true);
  assert.equal(calls, 3);
});

test('pollUntil: no after the bound, having asked once more at the deadline', async () => {
  const asked: number[] = [];
  const started = Date.now();
  const never = () => {
    asked.push(Date.now() - started);
    return false;
  };
  assert.equal(await pollUntil(never, 50, 20), false);
  assert.ok(asked.length >= 3, `asked ${asked.length} times`);
  assert.ok(asked.at(-1)! >= 45, `last asked at ${asked.at(-1)} ms`);
});

test('pollUntil: an async check is awaited', async () => {
  let ready = false;
  setTimeout(() => (ready = true), 20);
  assert.equal(await pollUntil(async () => ready, 1_000, 5), true);
});
