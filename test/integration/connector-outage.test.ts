/**
 * A ThingSpeak connector polling while PostgreSQL goes away mid-poll (the answer to the COMMIT
 * of a poll's records is cut on its way back, by the TCP proxy) and comes back a few seconds
 * later, the upstream gaining entries all along: every entry is stored once with no hole, the
 * failure is told apart from an upstream's, and the process goes on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { connectorSettings, createThingSpeakConnector, expectedSamples, metricsText, storedSamples } from '../support/connectors.ts';
import { eventually } from '../support/eventually.ts';
import { startAppBehindProxy, storedTotals } from '../support/resilience-app.ts';

/** PostgreSQL's CommandComplete message for COMMIT: 'C', int32 length 11, "COMMIT\0". */
const commitComplete = Buffer.concat([Buffer.from('C'), Buffer.from([0, 0, 0, 11]), Buffer.from('COMMIT\0')]);

/** The count of `wavehouse_connector_polls_total` for `outcome`, 0 when it has none. */
function polls(metrics: string, outcome: string): number {
  const match = new RegExp(`wavehouse_connector_polls_total\\{kind="thingspeak",outcome="${outcome}"\\} (\\d+)`).exec(metrics);
  return match === null ? 0 : Number(match[1]);
}

test('a connector polling through a database outage stores every entry once, and says the database failed', {
  timeout: 60_000,
}, async (t) => {
  const standIn = await ThingSpeakStandIn.start();
  t.after(() => standIn.close());
  // A poll waits two seconds for its commit, so that the poll under way when the database goes fails within the outage.
  const { baseUrl, proxy, directDatabaseUrl } = await startAppBehindProxy(t, connectorSettings({ INGEST_HTTP_COMMIT_TIMEOUT_MS: '2000' }));
  const admin = await createKey(directDatabaseUrl, { name: 'admin', role: 'admin' });
  standIn.addChannel(5, ['level', 'flow', null, null, null, null, null, null]);
  standIn.addEntries(5, 10);
  const adding = setInterval(() => standIn.addEntries(5, 1), 100);
  t.after(() => clearInterval(adding));
  const connector = await createThingSpeakConnector(baseUrl, admin.key, { baseUrl: standIn.baseUrl, channelId: 5 });
  await eventually(async () => assert.ok((await storedSamples(baseUrl, admin.key, connector)).length >= 20), { timeoutMs: 20_000 });

  // Every status the API answers from here on, as a client watching it would see them.
  const statuses: Array<{ status: number; body: Record<string, unknown> }> = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      statuses.push(await call(`${baseUrl}/api/v1/connectors/${connector.id}`, 'GET', bearer(admin.key)));
      await sleep(25);
    }
  })();
  t.after(() => {
    watching = false;
  });

  // Only connector polls commit in a transaction here (status writes are single statements): this is a poll's commit.
  await proxy.cutWhenServerSends(commitComplete);
  const cutAtMs = Date.now();
  await eventually(
    async () => {
      const metrics = await metricsText(baseUrl);
      assert.ok(polls(metrics, 'database') >= 2, 'the polls during the outage are counted as failed by the database');
    },
    { timeoutMs: 4_000 },
  );
  const during = await call(`${baseUrl}/api/v1/connectors/${connector.id}`, 'GET', bearer(admin.key));
  assert.equal(during.status, 503, 'a status the database cannot give is a 503, not a stale or an upstream failure');
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
  // The outage itself: five seconds in all.
  await sleep(Math.max(0, cutAtMs + 5_000 - Date.now()));
  proxy.restore();
  const restoredAtMs = Date.now();
  // The upstream goes on for a second more, then the connector has to catch up with all of it.
  await sleep(1_000);
  clearInterval(adding);
  const last = standIn.entries(5).length;
  await eventually(async () => assert.equal((await storedSamples(baseUrl, admin.key, connector)).length, last), { timeoutMs: 30_000 });

  assert.deepEqual(await storedSamples(baseUrl, admin.key, connector), expectedSamples(last, ['level', 'flow']));
  const { body: after } = await eventually(async () => {
    const answer = await connector.get();
    assert.equal(answer.body.state, 'running');
    assert.ok(Date.parse(answer.body.lastSuccessAt) > restoredAtMs);
    return answer;
  });
  assert.deepEqual(await storedTotals(directDatabaseUrl, after.sessions[0].sessionId), {
    chunkSamples: last,
    sessionSampleCount: last,
    lastSeq: last,
    overlappingChunks: 0,
  });
  assert.equal(after.lastError, null);
  assert.equal(after.breaker, 'closed');
  watching = false;
  await watcher;
  for (const { status, body } of statuses) {
    assert.ok(status === 200 || status === 503, `status answered ${status}`);
    if (status !== 200) continue;
    assert.equal(body.breaker, 'closed', 'the upstream was never blamed');
    if (body.state === 'failing') assert.match(String(body.lastError), /^the database failed this poll, not the upstream: /);
  }
  const metrics = await metricsText(baseUrl);
  assert.equal(polls(metrics, 'failed'), 0, 'no poll failed for the upstream');
  assert.equal(polls(metrics, 'breaker_open'), 0);
});
