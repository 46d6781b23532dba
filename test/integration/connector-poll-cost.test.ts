/**
 * What one connector poll asks of the database, counted on the wire (every statement the app
 * sends, whichever connection sends it): a poll of a stream with nothing new is five
 * statements, and one that stores records adds the commit's four.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { createKey } from '../support/access.ts';
import { connectorSettings, createThingSpeakConnector, storedSamples } from '../support/connectors.ts';
import { eventually } from '../support/eventually.ts';
import { pgStatementReader } from '../support/pg-statements.ts';
import { startAppBehindProxy } from '../support/resilience-app.ts';

/** The first words of a statement, enough to tell them apart. */
const shortly = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 40);

/**
 * The statements of each whole poll in `statements`: a poll starts by reading its connector's
 * record, so the runs between two such reads (the first and the last are cut off and dropped).
 */
function wholePolls(statements: readonly string[]): string[][] {
  const polls: string[][] = [];
  for (const statement of statements) {
    if (statement.startsWith('SELECT id, kind, name, config')) polls.push([]);
    polls.at(-1)?.push(statement);
  }
  return polls.slice(0, -1);
}

test('a connector poll costs five statements, and the commit of its records four more', { timeout: 90_000 }, async (t) => {
  const standIn = await ThingSpeakStandIn.start();
  t.after(() => standIn.close());
  let statements: string[] = [];
  const quiet = {
    // Nothing but the poller runs: no claim round, compaction, compression or retention within the test.
    CONNECTOR_CLAIM_INTERVAL_MS: '25000',
    ROLLUP_COMPACT_INTERVAL_MS: '0',
    COMPRESS_INTERVAL_MS: '0',
    RETENTION_INTERVAL_MS: '0',
  };
  const { baseUrl, directDatabaseUrl } = await startAppBehindProxy(t, connectorSettings(quiet), {
    readClient: () => pgStatementReader((text) => statements.push(shortly(text))),
  });
  const admin = await createKey(directDatabaseUrl, { name: 'admin', role: 'admin' });
  standIn.addChannel(5, ['level', 'flow', null, null, null, null, null, null]);
  standIn.addEntries(5, 10);
  // Polls 2 s apart: none comes within the idle grace of the one before (INGEST_HTTP_LOCK_GRACE_MS, 200 ms), which would
  // find the stream still attached here and skip its lock and claim.
  const connector = await createThingSpeakConnector(baseUrl, admin.key, { baseUrl: standIn.baseUrl, channelId: 5 }, 2);
  await eventually(async () => assert.equal((await storedSamples(baseUrl, admin.key, connector)).length, 10), { timeoutMs: 10_000 });

  // The lock connection's heartbeat is no poll's.
  const polled = () => wholePolls(statements.filter((s) => s !== 'SELECT 1'));
  statements = [];
  await eventually(() => assert.ok(polled().length >= 3), { timeoutMs: 20_000 });
  const idle = [
    'SELECT id, kind, name, config, secrets, secret_names', // the connector's record: a pause or delete is seen before each poll
    'SELECT pg_try_advisory_lock($1::bigint) AS locked', // the stream's producer lock
    'UPDATE sessions SET producer_epoch = producer_epoch + 1', // the claim, which reads the cursor under the lock
    'UPDATE connectors SET last_poll_at = $2, last_success_at = $3', // the status
    'SELECT pg_advisory_unlock($1::bigint)', // the lock let go, an idle grace later
  ].map(shortly);
  for (const poll of polled()) assert.deepEqual(poll, idle);

  statements = [];
  const adding = setInterval(() => standIn.addEntries(5, 1), 500);
  t.after(() => clearInterval(adding));
  await eventually(() => assert.ok(polled().filter((poll) => poll.includes('COMMIT')).length >= 2), { timeoutMs: 20_000 });
  clearInterval(adding);
  const commit = [
    'BEGIN',
    'WITH marker AS ( INSERT INTO commit_lanes (lane_id',
    'COPY sample_chunks (session_id, first_seq, last_seq',
    'COMMIT',
  ].map(shortly);
  for (const poll of polled().filter((p) => p.includes('COMMIT'))) {
    assert.deepEqual(poll, [...idle.slice(0, 3), ...commit, ...idle.slice(3)]);
  }
});
