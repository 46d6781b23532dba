/**
 * A client's X-Request-Id is taken only when it is a plain, short id: otherwise a new one is
 * made, for REST requests and socket upgrades alike.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestIdOf } from '../../src/http/request-id.ts';
import { startApp } from '../support/app.ts';
import { refusedUpgrade } from '../support/clients.ts';
import { logLines } from '../support/log-lines.ts';

const hostile = {
  long: 'a'.repeat(4_000),
  justTooLong: 'b'.repeat(129),
  quotes: 'x","level":60,"msg":"forged',
  spaces: 'id with spaces',
  markup: '<script>alert(1)</script>',
};
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('ids that cannot come through an HTTP parser (a newline, a carriage return) are refused too', () => {
  for (const id of ['a\nb', 'a\r\nX-Forged: 1', '', 'é', ...Object.values(hostile)])
    assert.match(requestIdOf(id), uuid, JSON.stringify(id));
  assert.match(requestIdOf(['one', 'two']), uuid);
  assert.match(requestIdOf(undefined), uuid);
  const kept = `Req-1.2_3:${'c'.repeat(118)}`;
  assert.equal(requestIdOf(kept), kept, 'a safe id of 128 characters is kept');
});

test('a long or hostile X-Request-Id is replaced on REST and upgrades, in the answer and every log line; a safe one is kept', async (t) => {
  const { lines, log } = logLines();
  const { baseUrl, wsUrl } = await startApp(t, {}, { log });

  for (const [name, id] of Object.entries(hostile)) {
    const rest = await fetch(`${baseUrl}/health`, { headers: { 'x-request-id': id } });
    assert.match(rest.headers.get('x-request-id') ?? '', uuid, `REST, ${name}`);
    const upgrade = await refusedUpgrade(`${wsUrl}/no-such-socket`, { 'x-request-id': id });
    assert.equal(upgrade.status, 404);
    assert.match(String(upgrade.headers['x-request-id']), uuid, `upgrade, ${name}`);
  }
  for (const line of lines) {
    const entry = JSON.parse(line) as { reqId?: string };
    if (entry.reqId !== undefined) assert.ok(entry.reqId === 'kept:1' || uuid.test(entry.reqId), line);
    for (const [name, id] of Object.entries(hostile)) assert.ok(!line.includes(id), `${name} in a log line`);
  }

  const kept = await fetch(`${baseUrl}/health`, { headers: { 'x-request-id': 'kept:1' } });
  assert.equal(kept.headers.get('x-request-id'), 'kept:1');
  const keptUpgrade = await refusedUpgrade(`${wsUrl}/no-such-socket`, { 'x-request-id': 'kept:1' });
  assert.equal(keptUpgrade.headers['x-request-id'], 'kept:1');
  assert.ok(lines.filter((line) => line.includes('"reqId":"kept:1"')).length >= 2, 'the kept id is on the lines of both');
});
