import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shutDown } from '../../src/storage/embedded/server.ts';

/** A process that goes away after the signals named in `goesOn`, recording what it was sent and for how long it was waited on. */
function fakeProcess(goesOn: NodeJS.Signals[], alive = true) {
  const sent: Array<[NodeJS.Signals, number]> = [];
  let last: NodeJS.Signals | undefined;
  return {
    sent,
    signal: (name: NodeJS.Signals) => {
      if (!alive) return false;
      last = name;
      return true;
    },
    gone: async (ms: number) => {
      sent.push([last!, ms]);
      if (goesOn.includes(last!)) alive = false;
      return !alive;
    },
  };
}

test('shutDown: a fast shutdown that works is all it sends', async () => {
  const server = fakeProcess(['SIGINT']);
  assert.equal(await shutDown(server.signal, server.gone, 30_000), true);
  assert.deepEqual(server.sent, [['SIGINT', 30_000]]);
});

test('shutDown: then an immediate shutdown, then SIGKILL, each waited on', async () => {
  const server = fakeProcess(['SIGKILL']);
  assert.equal(await shutDown(server.signal, server.gone, 10_000), true);
  assert.deepEqual(server.sent, [
    ['SIGINT', 10_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ]);
});

test('shutDown: a process already gone is not waited on', async () => {
  const server = fakeProcess([], false);
  assert.equal(await shutDown(server.signal, server.gone, 30_000), true);
  assert.deepEqual(server.sent, []);
});

test('shutDown: false when even SIGKILL leaves it running', async () => {
  const server = fakeProcess([]);
  assert.equal(await shutDown(server.signal, server.gone, 30_000), false);
  assert.equal(server.sent.length, 3);
});
