/**
 * `wavehouse demo iot` against the real server: river nodes on the ThingSpeak stand-in, with
 * its clock run fast, each pulled by a connector the demo created over REST. Every entry the
 * stand-in served is stored exactly once, a restarted demo reads on from what its streams
 * hold, each node's latest sample is answered (and revalidated from the read cache), and the
 * command itself prints its links and stops everything on SIGINT.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findSessions } from '../../src/demo/demo-connectors.ts';
import { type NodeStream, startIotDemo } from '../../src/demo/iot-demo.ts';
import { type RiverNode, riverNodes } from '../../src/demo/river-nodes.ts';
import { type Entry, ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { readData } from '../../src/sdk/rest.ts';
import type { AccessCredential } from '../../src/sdk/types.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { connectorSettings } from '../support/connectors.ts';
import { assertStopsOnSigint, demoKeyKeptSecret, startDemoCommand } from '../support/demo-command.ts';
import { eventually } from '../support/eventually.ts';

const fixed = (key: string): AccessCredential => ({ token: async () => key, renew: async () => null, close: () => undefined });
const everyMs = 5_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An entry as its stream must hold it: the fields mapped to their channels, blank as null. */
function expected(entry: Entry): Record<string, number | null> {
  const [level, flow, battery, temperature] = entry.values.map((v) => (v === null ? null : Number(v)));
  return { seq: entry.entryId, t: entry.t, Water_Level_cm: level, Flow_L_min: flow, Battery_V: battery, Water_Temperature_C: temperature };
}

async function stored(baseUrl: string, credential: AccessCredential, sessionId: string) {
  const samples = [];
  for await (const sample of readData(baseUrl, sessionId, { credential })) samples.push(sample);
  return samples;
}

/** Runs the nodes' clock fast, `steps` times 3 entries, while the connectors poll. */
async function runClock(clock: { now: number }, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) {
    clock.now += 3 * everyMs;
    await sleep(40);
  }
}

async function startDemo(baseUrl: string, credential: AccessCredential, clock: { now: number }, nodes: readonly RiverNode[]) {
  const standIn = await ThingSpeakStandIn.start({ clock: () => clock.now });
  const streams = await startIotDemo({ baseUrl, request: { credential }, standIn, nodes, everyMs, pollIntervalS: 0.05 });
  return { standIn, streams };
}

async function assertAllStoredOnce(baseUrl: string, credential: AccessCredential, streams: NodeStream[], entries: Map<number, Entry[]>) {
  await eventually(() => findSessions(baseUrl, { credential }, streams).then((all) => assert.ok(all)), { timeoutMs: 10_000 });
  for (const stream of streams) {
    const want = entries.get(stream.node.channelId)!.map(expected);
    await eventually(async () => assert.deepEqual(await stored(baseUrl, credential, stream.sessionId!), want), { timeoutMs: 15_000 });
  }
}

describe('the IoT demo', () => {
  test('stores every node entry exactly once, across a restart, and answers each latest', { timeout: 90_000 }, async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t, connectorSettings());
    const { key } = await createKey(databaseUrl, { name: 'demo', role: 'admin' });
    const credential = fixed(key);
    const clock = { now: Date.UTC(2026, 2, 1, 6, 0, 0) };
    const first = await startDemo(baseUrl, credential, clock, riverNodes);
    t.after(() => first.standIn.close());
    await runClock(clock, 15);
    const entries = new Map(riverNodes.map((node) => [node.channelId, [...first.standIn.entries(node.channelId)]]));
    for (const list of entries.values()) assert.equal(list.length, 45);
    assert.ok(
      [...entries.values()].flat().some((entry) => entry.values[2] === null && entry.values[3] === null),
      'nodes report nulls, as real ones do',
    );
    await assertAllStoredOnce(baseUrl, credential, first.streams, entries);

    // A restart: the old stand-in is gone, its connectors are replaced, the streams read on.
    await first.standIn.close();
    clock.now += 60_000;
    const second = await startDemo(baseUrl, credential, clock, riverNodes);
    t.after(() => second.standIn.close());
    await runClock(clock, 5);
    const connectors = await call(`${baseUrl}/api/v1/connectors`, 'GET', bearer(key));
    assert.deepEqual(connectors.body.connectors.map((c: { id: string }) => c.id).sort(), second.streams.map((s) => s.connectorId).sort());
    for (const node of riverNodes) entries.get(node.channelId)!.push(...second.standIn.entries(node.channelId));
    await assertAllStoredOnce(baseUrl, credential, second.streams, entries);
    assert.deepEqual(
      second.streams.map((s) => s.sessionId),
      first.streams.map((s) => s.sessionId),
    );

    for (const stream of second.streams) {
      const url = `${baseUrl}/api/v1/sessions/${stream.sessionId}/latest`;
      const latest = await fetch(url, { headers: bearer(key) });
      assert.equal(latest.status, 200);
      assert.deepEqual((await latest.json()).sample, expected(entries.get(stream.node.channelId)!.at(-1)!));
      const etag = latest.headers.get('etag');
      assert.ok(etag);
      const again = await fetch(url, { headers: { ...bearer(key), 'if-none-match': etag } });
      assert.equal(again.status, 304);
    }
  });

  test('the command prints its links, keeps its key off the terminal, and stops everything on SIGINT', { timeout: 90_000 }, async (t) => {
    const { cli, dataDir } = await startDemoCommand(t, ['iot', '--port', '0', '--every', '1', '--poll', '0.2']);
    const links = await eventually(
      () => {
        const lines = cli.stdout().match(/^viewer\s+(\S+) \((.+)\)$/gm) ?? [];
        assert.equal(lines.length, riverNodes.length, cli.stdout() + cli.stderr());
        return lines.map((line) => /^viewer\s+(\S+)/.exec(line)![1]);
      },
      { timeoutMs: 40_000, intervalMs: 100 },
    );
    const service = /^service\s+(\S+)$/m.exec(cli.stdout())![1];
    const key = await demoKeyKeptSecret(cli, dataDir);
    for (const link of links) {
      const sessionId = link.slice(`${service}/view/`.length);
      assert.equal(link, `${service}/view/${sessionId}`);
      assert.equal((await fetch(link)).status, 200);
      const latest = await eventually(async () => {
        const answer = await call(`${service}/api/v1/sessions/${sessionId}/latest`, 'GET', bearer(key));
        assert.equal(answer.status, 200);
        assert.notEqual(answer.body.sample, null);
        return answer.body.sample;
      });
      assert.equal(typeof latest.Water_Level_cm, 'number');
    }

    await assertStopsOnSigint(cli);
  });
});
