import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../../src/sdk/backoff.ts';

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('delays grow exponentially within the cap, with half of each delay random, and reset', () => {
  const backoff = new Backoff({ initialDelayMs: 100, maxDelayMs: 400, random: () => 1 });
  assert.deepEqual(
    [1, 2, 3, 4].map(() => backoff.nextDelayMs()),
    [100, 200, 400, 400],
  );
  backoff.reset();
  assert.equal(new Backoff({ initialDelayMs: 100, random: () => 0 }).nextDelayMs(), 50);
  assert.equal(backoff.nextDelayMs(), 100);
});

test('a scheduled retry runs once; a cancelled one never; a new one replaces the pending one', async () => {
  const runs: string[] = [];
  const backoff = new Backoff({ initialDelayMs: 5, maxDelayMs: 5 });
  backoff.schedule(() => runs.push('first'));
  backoff.schedule(() => runs.push('second'));
  await settle(30);
  assert.deepEqual(runs, ['second']);
  backoff.schedule(() => runs.push('cancelled'));
  backoff.cancel();
  await settle(30);
  assert.deepEqual(runs, ['second']);
});
