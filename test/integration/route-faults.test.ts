/**
 * An unexpected error in a REST route is a bug: it is answered 500 problem+json, saying
 * nothing of the internals, and logged once with the request id; the server goes on. Shown
 * on the server factory with routes that fail on purpose, since no product route fails
 * unexpectedly on demand.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';

test('a route that throws, rejects or throws a non-Error is a 500 internal_error problem, logged once; the server goes on', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const server = await createHttpServer({
    config: loadConfig({}),
    log: createLogger('info', sink),
    metrics: createMetrics(),
    rateLimitRedis: null,
    isDraining: () => false,
  });
  const secret = 'internal detail 5f1c';
  server.get('/fault/sync', () => {
    throw new TypeError(secret);
  });
  server.get('/fault/async', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    throw new RangeError(secret);
  });
  server.get('/fault/value', async () => {
    throw { detail: secret };
  });
  server.get('/fine', async () => ({ ok: true }));
  const address = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());

  for (const kind of ['sync', 'async', 'value']) {
    const requestId = `fault-${kind}`;
    const response = await fetch(`${address}/fault/${kind}`, { headers: { 'x-request-id': requestId } });
    assert.equal(response.status, 500, kind);
    assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8', kind);
    assert.equal(response.headers.get('x-request-id'), requestId);
    const text = await response.text();
    assert.deepEqual(JSON.parse(text), {
      type: 'urn:wavehouse:problem:internal_error',
      title: 'An unexpected error; it has been logged with the request id.',
      status: 500,
      detail: 'internal error',
      code: 'internal_error',
    });
    assert.ok(!text.includes(secret), kind);
    const logged = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 50 && entry.reqId === requestId);
    assert.equal(logged.length, 1, `${kind}: ${JSON.stringify(logged)}`);
  }
  assert.deepEqual(await (await fetch(`${address}/fine`)).json(), { ok: true });
});
