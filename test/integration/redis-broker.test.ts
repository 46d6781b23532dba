/**
 * The Redis broker's close on a Redis that went silent (a dead host, a dropped NAT entry): it
 * must end, or a process shutting down during such an outage never exits, its QUIT waiting on
 * an answer that never comes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RedisBroker } from '../../src/fanout/redis-broker.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

test('close() ends within its bound when Redis has gone silent', async (t) => {
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
  t.after(() => proxy.close());
  const broker = new RedisBroker(`redis://127.0.0.1:${proxy.port}`, createLogger('silent'));
  await broker.start();
  proxy.blackhole();
  // A publish sent into the silence: what QUIT waits behind.
  void broker.publishRevocation('key-1').catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), 10_000);
  });
  const outcome = await Promise.race([broker.close().then(() => 'closed' as const), hung]);
  clearTimeout(timer);
  assert.equal(outcome, 'closed', 'close() did not end with Redis silent');
});
