/**
 * Two instances run the same connector: one polls it; killed (SIGKILL, mid-poll for all it
 * knows), the other takes it over, and every upstream entry is stored exactly once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { connectorSettings, createThingSpeakConnector, expectedSamples, metricsText, storedSamples } from '../support/connectors.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { type ServerProcess, startServerProcess } from '../support/server-process.ts';

const channels = ['level', 'flow'];

/** Successful polls an instance made, from its metrics. */
async function successfulPolls(server: ServerProcess): Promise<number> {
  const match = /wavehouse_connector_polls_total\{kind="thingspeak",outcome="success"\} (\d+)/.exec(await metricsText(server.baseUrl));
  return match === null ? 0 : Number(match[1]);
}

test('one instance polls a connector, and another takes over when it is killed', { timeout: 90_000 }, async (t) => {
  const database = await freshDatabase();
  const servers: ServerProcess[] = [];
  t.after(async () => {
    for (const server of servers) await server.stop();
    await database.drop();
  });
  const standIn = await ThingSpeakStandIn.start();
  t.after(() => standIn.close());
  standIn.addChannel(21, ['level', 'flow', null, null, null, null, null, null]);
  standIn.addEntries(21, 20);
  const env = { ...connectorSettings(), DATABASE_URL: database.url };
  const [a, b] = await Promise.all([startServerProcess(t, { env }), startServerProcess(t, { env })]);
  servers.push(a, b);
  const admin = await createKey(database.url, { name: 'admin', role: 'admin' });
  const connector = await createThingSpeakConnector(a.baseUrl, admin.key, { baseUrl: standIn.baseUrl, channelId: 21, pageSize: 7 });
  await eventually(async () => assert.equal((await storedSamples(b.baseUrl, admin.key, connector)).length, 20), { timeoutMs: 20_000 });

  // Several claim intervals later, still only one of them has polled.
  const polls = await eventually(async () => {
    const counts = await Promise.all([successfulPolls(a), successfulPolls(b)]);
    assert.ok(Math.max(...counts) >= 20, `polls: ${counts}`);
    return counts;
  });
  assert.equal(Math.min(...polls), 0, `both instances polled: ${polls}`);
  const [poller, other] = polls[0] > 0 ? [a, b] : [b, a];

  standIn.addEntries(21, 15);
  poller.kill('SIGKILL');
  assert.equal((await poller.waitForExit(10_000)).signal, 'SIGKILL');
  standIn.addEntries(21, 15);
  await eventually(async () => assert.equal((await storedSamples(other.baseUrl, admin.key, connector)).length, 50), { timeoutMs: 30_000 });
  assert.ok((await successfulPolls(other)) > 0);
  assert.deepEqual(await storedSamples(other.baseUrl, admin.key, connector), expectedSamples(50, channels));
  const status = await eventually(async () => {
    const { body } = await call(`${other.baseUrl}/api/v1/connectors/${connector.id}`, 'GET', bearer(admin.key));
    assert.equal(body.state, 'running');
    return body;
  });
  assert.equal(status.lastError, null);
});
