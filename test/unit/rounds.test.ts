import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rounds } from '../../src/rounds.ts';

/** A round that waits to be let go, counting how many began. */
function heldRounds() {
  let began = 0;
  let release: () => void = () => undefined;
  const round = () => {
    began++;
    return new Promise<number>((resolve) => {
      release = () => resolve(began);
    });
  };
  return { round, began: () => began, release: () => release() };
}

test('a round asked for while one runs joins it rather than starting a second', async () => {
  const held = heldRounds();
  const rounds = new Rounds(held.round, 60_000);
  const first = rounds.run();
  const second = rounds.run();
  assert.equal(held.began(), 1);
  held.release();
  assert.deepEqual(await Promise.all([first, second]), [1, 1]);
  const next = rounds.run();
  assert.equal(held.began(), 2, 'once it is over, the next call starts a new round');
  held.release();
  assert.equal(await next, 2);
  await rounds.stop();
});

test('at once, the first round starts with start(); jittered, it waits for its random point', async () => {
  const atOnce = heldRounds();
  const eager = new Rounds(atOnce.round, 60_000, 'at once');
  eager.start();
  assert.equal(atOnce.began(), 1);
  const jittered = heldRounds();
  const later = new Rounds(jittered.round, 60_000);
  later.start();
  assert.equal(jittered.began(), 0);
  atOnce.release();
  await Promise.all([eager.stop(), later.stop()]);
});

test('stop marks the rounds stopped and waits for the round under way', async () => {
  const held = heldRounds();
  const rounds = new Rounds(held.round, 60_000, 'at once');
  rounds.start();
  let stopped = false;
  const stopping = rounds.stop().then(() => {
    stopped = true;
  });
  assert.equal(rounds.stopped, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped, false, 'the round under way is waited for');
  held.release();
  await stopping;
  assert.equal(stopped, true);
});
