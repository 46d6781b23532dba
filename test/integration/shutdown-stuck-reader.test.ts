import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { storeSamplesDirectly } from '../support/export-streams.ts';

test('shutdown does not wait past its grace for an export whose client stopped reading', async (t) => {
  const { app, baseUrl, databaseUrl } = await startApp(t, { SHUTDOWN_GRACE_MS: '300' });
  const session = await createSession(baseUrl);
  await storeSamplesDirectly(databaseUrl, session.sessionId, 1, 300_000);

  // A client that sends the request, reads the first bytes, then never reads again: the
  // server's socket buffers fill and the response can never finish on its own.
  const { port } = new URL(baseUrl);
  const client = net.connect(Number(port), '127.0.0.1');
  let received = 0;
  client.on('data', () => {
    received++;
    client.pause();
  });
  client.on('error', () => undefined);
  client.write(`GET /api/v1/sessions/${session.sessionId}/data?format=ndjson HTTP/1.1\r\nHost: x\r\n\r\n`);
  await eventually(() => assert.ok(received > 0));

  const started = Date.now();
  await app.close();
  assert.ok(Date.now() - started < 3_000, `close took ${Date.now() - started} ms`);
  client.destroy();
});
