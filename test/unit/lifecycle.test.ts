import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { type Part, PartStack } from '../../src/lifecycle.ts';

/** A logger that keeps its warnings, to see what the stack reports. */
function recordingLog() {
  const warnings: Array<{ part?: string; msg: string }> = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
  return { log, warnings };
}

function part(name: string, events: string[], behaviour: { start?: () => Promise<void>; close?: () => Promise<void> } = {}): Part {
  return {
    name,
    async start() {
      events.push(`start ${name}`);
      await behaviour.start?.();
    },
    async close() {
      events.push(`close ${name}`);
      await behaviour.close?.();
    },
  };
}

test('parts close in the reverse of the order they started in, once', async () => {
  const events: string[] = [];
  const stack = new PartStack(recordingLog().log);
  for (const name of ['database', 'writer', 'server']) await stack.start(part(name, events));
  await Promise.all([stack.close(Date.now() + 1_000), stack.close(Date.now() + 1_000)]);
  assert.deepEqual(events, ['start database', 'start writer', 'start server', 'close server', 'close writer', 'close database']);
});

test('a close that fails is reported, and the parts below it are closed all the same', async () => {
  const events: string[] = [];
  const { log, warnings } = recordingLog();
  const stack = new PartStack(log);
  await stack.start(part('database', events));
  await stack.start(part('broker', events, { close: async () => Promise.reject(new Error('redis is gone')) }));
  await stack.start({
    name: 'thrower',
    close: () => {
      throw new Error('threw');
    },
  });
  await stack.close(Date.now() + 1_000);
  assert.deepEqual(events, ['start database', 'start broker', 'close broker', 'close database']);
  assert.deepEqual(
    warnings.map(({ part, msg }) => [part, msg]),
    [
      ['thrower', 'closing a part failed'],
      ['broker', 'closing a part failed'],
    ],
  );
});

test('a close still running at the deadline is abandoned then, and the next part is closed', async () => {
  const events: string[] = [];
  const { log, warnings } = recordingLog();
  const stack = new PartStack(log);
  await stack.start(part('database', events));
  await stack.start(part('stuck', events, { close: () => new Promise(() => undefined) }));
  const started = Date.now();
  await stack.close(started + 100);
  const took = Date.now() - started;
  assert.ok(took >= 95 && took < 1_000, `closed after ${took} ms`);
  assert.deepEqual(events, ['start database', 'start stuck', 'close stuck', 'close database']);
  assert.deepEqual(
    warnings.map(({ part, msg }) => [part, msg]),
    [['stuck', 'closing a part ran past the deadline; going on without it']],
  );
});

test('after a start fails, closing unwinds what started, the failed part included', async () => {
  const events: string[] = [];
  const stack = new PartStack(recordingLog().log);
  await stack.start(part('database', events));
  await stack.start({ name: 'pool', close: async () => void events.push('close pool') });
  const failing = part('broker', events, { start: async () => Promise.reject(new Error('cannot connect')) });
  await assert.rejects(stack.start(failing), /cannot connect/);
  await stack.close(Date.now() + 1_000);
  assert.deepEqual(events, ['start database', 'start broker', 'close broker', 'close pool', 'close database']);
  await assert.rejects(stack.start(part('late', events)), /closing/);
});
