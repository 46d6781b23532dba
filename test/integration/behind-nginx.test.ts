/**
 * Scale-out as it is deployed (docs/deployment.md, "Several instances"): three Wavehouse
 * processes sharing one database and Redis, behind Debian's nginx running the checked-in
 * recipe (deploy/nginx/wavehouse.conf), in private mode so that every kind of credential
 * crosses the proxy. SDK producers and viewers spread over the processes through nginx; one
 * process is killed with SIGKILL mid-stream; its producer reconnects through nginx to another
 * process and resends, its viewers resume with fromSeq; every sample is stored once. Then the
 * processes, each asked directly, agree (support/instance-agreement.ts): on the session list,
 * on aggregates, on cached reads and their ETags before and after more samples, and on a key
 * revoked through one of them; and nginx's logs hold none of the credentials that went through it.
 *
 * One producer and one viewer connect as a browser does (no headers on a WebSocket: the
 * credential in `?token=` / `?access_token=`), so the log check has something to find.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as pace } from 'node:timers/promises';
import WebSocket from 'ws';
import { accessCredential } from '../../src/sdk/access-credentials.ts';
import { Producer } from '../../src/sdk/producer.ts';
import { createSession, readData } from '../../src/sdk/rest.ts';
import type { CreatedSession, Sample, SampleInput } from '../../src/sdk/types.ts';
import { Viewer } from '../../src/sdk/viewer.ts';
import type { WebSocketConstructor } from '../../src/sdk/websocket.ts';
import { bearer, call, createKey, ecPrivateJwk, privateMode } from '../support/access.ts';
import { liveUrl, RecordingSocket } from '../support/clients.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import {
  assertAggregatesAgree,
  assertCachedReadsAgree,
  assertListsAgree,
  assertRevocationAgrees,
  rollupsSettled,
} from '../support/instance-agreement.ts';
import { startNginx } from '../support/nginx.ts';
import { storedTotals } from '../support/resilience-app.ts';
import { loggedRequest, type ServerProcess, socketsOpen, startServerProcess } from '../support/server-process.ts';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const quickBackoff = { initialDelayMs: 20, maxDelayMs: 250 };
/** Well under AUTH_CACHE_TTL_MS (30 s): a refusal this soon came from the broadcast, not from a cache entry expiring. */
const revocationBoundMs = 5_000;

/** As a browser's WebSocket is: a URL, and no way to add a header. */
class UrlOnlyWebSocket extends WebSocket {
  constructor(url: string) {
    super(url);
  }
}
const browserSocket = UrlOnlyWebSocket as unknown as WebSocketConstructor;

function sampleFor(seq: number): Sample {
  return { seq, t: 1_700_000_000_000 + seq, ax: Math.sin(seq / 10), ay: seq / 3, az: -seq };
}

function unnumbered(from: number, count: number): SampleInput[] {
  return Array.from({ length: count }, (_, i) => {
    const { seq: _seq, ...rest } = sampleFor(from + i);
    return rest;
  });
}

function assertExactly(actual: Sample[], to: number, label: string): void {
  const seqs = actual.map((sample) => sample.seq);
  const firstWrong = seqs.findIndex((seq, i) => seq !== i + 1);
  assert.ok(seqs.length === to && firstWrong === -1, `${label}: expected seqs 1..${to}, got ${seqs.length}, first wrong at ${firstWrong}`);
  assert.deepEqual(
    actual,
    Array.from({ length: to }, (_, i) => sampleFor(i + 1)),
    label,
  );
}

/** Every access and refresh token the server hands out through `fetch`, kept to look for in the logs. */
function recordingFetch(issued: Set<string>): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (response.ok && /\/auth\/(token|refresh)$/.test(String(input))) {
      const pair = (await response.clone().json()) as { accessToken: string; refreshToken: string };
      issued.add(pair.accessToken).add(pair.refreshToken);
    }
    return response;
  };
}

test('three instances behind the documented nginx: a SIGKILL mid-stream loses nothing, they agree, and no credential is logged', {
  timeout: 180_000,
}, async (t) => {
  const database = await freshDatabase();
  t.after(() => database.drop());
  const env = {
    ...privateMode(ecPrivateJwk()),
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    TRUST_PROXY: '127.0.0.1',
    // A resend burst must not be cut by the per-producer rate limit; that is not what this is about.
    INGEST_MAX_SAMPLES_PER_S: '0',
  };
  const keyOf = async (role: string) => (await createKey(database.url, { name: role, role, keyPrefix: null })).key;
  const [admin, writer, reader] = [await keyOf('admin'), await keyOf('writer'), await keyOf('reader')];
  const instances = await Promise.all([0, 1, 2].map(() => startServerProcess(t, { env })));
  const ports = instances.map((instance) => Number(new URL(instance.baseUrl).port));
  const nginx = await startNginx(t, ports);
  const baseUrl = nginx.baseUrl;

  const issued = new Set<string>();
  const writerCredential = accessCredential({ baseUrl, apiKey: writer, fetch: recordingFetch(issued) });
  const readerCredential = accessCredential({ baseUrl, apiKey: reader, fetch: recordingFetch(issued) });
  t.after(() => {
    writerCredential.close();
    readerCredential.close();
  });
  const sessions: CreatedSession[] = [];
  for (let i = 0; i < 3; i++) sessions.push(await createSession(baseUrl, { key: `nginx/${i}` }, { credential: writerCredential }));

  // One at a time, so that least_conn spreads them: producers first, then a viewer of each session.
  const producers: Producer[] = [];
  const resent = [0, 0, 0];
  for (const [i, session] of sessions.entries()) {
    const producer = new Producer({
      baseUrl,
      sessionId: session.sessionId,
      token: session.ingestToken,
      maxBatchSamples: 20,
      maxBatchDelayMs: 10,
      backoff: quickBackoff,
      ...(i === 0 ? { WebSocket: browserSocket } : {}),
    });
    t.after(() => producer.close());
    producer.on('connected', ({ resentSamples }) => {
      resent[i] += resentSamples;
    });
    const connected = new Promise((resolve) => producer.once('connected', resolve));
    producer.push(unnumbered(1, 1));
    await connected;
    producers.push(producer);
  }
  const resumes: number[] = [];
  const viewers: { seen: Sample[]; done: Promise<void> }[] = [];
  for (const [i, session] of sessions.entries()) {
    const viewer = new Viewer({
      baseUrl,
      sessionId: session.sessionId,
      fromSeq: 1,
      credential: readerCredential,
      backoff: quickBackoff,
      ...(i === 1 ? { WebSocket: browserSocket } : {}),
    });
    t.after(() => viewer.close());
    viewer.on('connected', ({ fromSeq }) => resumes.push(fromSeq));
    const seen: Sample[] = [];
    const connected = new Promise((resolve) => viewer.once('connected', resolve));
    const done = (async () => {
      for await (const sample of viewer) seen.push(sample);
    })();
    done.catch(() => undefined);
    await connected;
    viewers.push({ seen, done });
  }

  const placement = await eventually(async () => {
    const open = await Promise.all(instances.map(socketsOpen));
    const total = (kind: 'ingest' | 'live') => open.reduce((sum, counts) => sum + counts[kind], 0);
    assert.deepEqual([total('ingest'), total('live')], [3, 3], JSON.stringify(open));
    return open;
  });
  t.diagnostic(`sockets per process (ingest/live): ${placement.map(({ ingest, live }) => `${ingest}/${live}`).join(', ')}`);
  assert.ok(
    placement.every(({ ingest, live }) => ingest + live > 0),
    'nginx spread the sockets over all three processes',
  );
  // The victim holds the browser-like producer: its reconnect carries `?token=` through nginx's failover.
  const victimIndex = instances.findIndex((instance) => loggedRequest(instance, `/api/v1/sessions/${sessions[0].sessionId}/ingest`));
  assert.notEqual(victimIndex, -1, 'a process logged the upgrade of the first producer');
  assert.ok(placement[victimIndex].live > 0, 'the process to be killed holds a viewer too');
  const victim = instances[victimIndex];

  // The workload: 20 samples every 5 ms per producer, pushed whether or not a process is up.
  let pushed = 1;
  let stopped = false;
  const streaming = (async () => {
    const deadline = Date.now() + 90_000;
    while (!stopped && Date.now() < deadline) {
      for (const producer of producers) if (!producer.push(unnumbered(pushed + 1, 20))) await producer.ready();
      pushed += 20;
      await pace(5);
    }
  })();
  t.after(() => {
    stopped = true;
  });
  const acked = () => producers.map((producer) => producer.lastAckedSeq ?? 0);
  const ackedPast = (seq: number) => eventually(() => assert.ok(Math.min(...acked()) >= seq, `acked ${acked()}`), { timeoutMs: 30_000 });

  await ackedPast(1_000);
  victim.kill('SIGKILL');
  const pushedAtKill = pushed;
  assert.equal((await victim.waitForExit(10_000)).signal, 'SIGKILL');
  await ackedPast(pushedAtKill + 1_000);
  // The killed process comes back on its port, as a supervisor would restart it.
  instances[victimIndex] = await startServerProcess(t, { env: { ...env, PORT: String(ports[victimIndex]) } });
  stopped = true;
  await streaming;

  for (const [i, producer] of producers.entries()) {
    const ended = await producer.end({ timeoutMs: 30_000 });
    assert.equal(ended.sampleCount, pushed, `producer ${i}`);
  }
  for (const [i, viewer] of viewers.entries()) {
    await viewer.done;
    assertExactly(viewer.seen, pushed, `viewer ${i}`);
  }
  t.diagnostic(`pushed ${pushed} per session, ${pushedAtKill} at the kill; resent ${resent}; viewers connected at ${resumes}`);
  assert.ok(
    resent.some((count) => count > 0),
    'the producer of the killed process resent what it had not seen acked',
  );
  assert.ok(
    resumes.some((fromSeq) => fromSeq > 1),
    'a viewer of the killed process resumed with fromSeq',
  );
  for (const session of sessions) {
    const stored: Sample[] = [];
    for await (const sample of readData(baseUrl, session.sessionId, { credential: readerCredential })) stored.push(sample);
    assertExactly(stored, pushed, 'GET /data');
    const totals = await storedTotals(database.url, session.sessionId);
    assert.deepEqual(totals, { chunkSamples: pushed, sessionSampleCount: pushed, lastSeq: pushed, overlappingChunks: 0 });
  }

  // Asked directly, every process (the restarted one included) answers as the others: lists...
  const agreeing = Date.now();
  const listed = await assertListsAgree(instances, admin);
  assert.deepEqual(listed.map((s) => s.sessionId).sort(), sessions.map((s) => s.sessionId).sort());
  assert.ok(listed.every((s) => s.status === 'ended' && s.sampleCount === pushed));

  // ...aggregates, per session and across them (az = -seq: every figure exact)...
  await rollupsSettled(database.url, 20_000);
  await assertAggregatesAgree(
    instances,
    reader,
    { sessionIds: sessions.map((s) => s.sessionId), keyPrefix: 'nginx/', channel: 'az', bucketMs: 1_200 },
    { count: pushed, min: -pushed, max: -1, sum: -(pushed * (pushed + 1)) / 2, first: -1, last: -pushed },
  );

  // ...cached reads and their tags, before and after more samples come through one of them...
  const cached = await createSession(baseUrl, { key: 'nginx/cached' }, { credential: writerCredential });
  const ingestVia = async (instance: ServerProcess, from: number, to: number) => {
    const samples = Array.from({ length: to - from + 1 }, (_, i) => sampleFor(from + i));
    const path = `${instance.baseUrl}/api/v1/sessions/${cached.sessionId}/samples`;
    assert.equal((await call(path, 'POST', bearer(cached.ingestToken), { samples })).status, 200);
    return Array.from({ length: to }, (_, i) => sampleFor(i + 1));
  };
  await assertCachedReadsAgree(instances, `/api/v1/sessions/${cached.sessionId}`, reader, {
    before: await ingestVia(instances[0], 1, 100),
    ingestMore: () => ingestVia(instances[1], 101, 150),
  });

  // ...and a key made and revoked through different processes; its token, renewed once through nginx.
  const made = await call(`${baseUrl}/api/v1/keys`, 'POST', bearer(admin), { name: 'to revoke', role: 'reader' });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const exchanged = await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(made.body.key));
  const renewed = await call(`${baseUrl}/api/v1/auth/refresh`, 'POST', {}, { refreshToken: exchanged.body.refreshToken });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
  for (const pair of [exchanged.body, renewed.body]) issued.add(pair.accessToken).add(pair.refreshToken);
  const token = renewed.body.accessToken;
  const refusedAfterMs = await assertRevocationAgrees(instances, instances[(victimIndex + 1) % 3], admin, {
    keyId: made.body.id,
    key: made.body.key,
    token,
    path: `/api/v1/sessions/${sessions[0].sessionId}`,
    boundMs: revocationBoundMs,
  });
  t.diagnostic(
    `agreement checked in ${Date.now() - agreeing} ms; the key refused by each process ${refusedAfterMs} ms after its revocation`,
  );
  const refused = await new RecordingSocket(`${liveUrl(nginx.wsUrl, sessions[0].sessionId)}?access_token=${token}`).waitForClose();
  assert.equal(refused.code, 4401);
  assert.match(refused.reason, /^credential_revoked/);

  await nginx.stop();
  const logs = await nginx.logs();
  const access = logs.get(nginx.accessLogName) ?? '';
  const socketLines = access.split('\n').filter((line) => / \/api\/v1\/sessions\/[^/ ]+\/(ingest|live)[ ?]/.test(line));
  assert.ok(socketLines.filter((line) => / upstream_status=(\d+, )*101$/.test(line)).length >= 6, `sockets went through nginx:\n${access}`);
  const victimAddress = `127.0.0.1:${ports[victimIndex]}`;
  assert.ok(access.includes(`upstream=${victimAddress}, `), `nginx moved a request off the killed process:\n${access}`);

  const secrets = [admin, writer, reader, made.body.key, cached.ingestToken, ...sessions.map((s) => s.ingestToken), ...issued];
  assert.ok(issued.size >= 6, 'access and refresh tokens crossed the proxy');
  for (const [name, text] of logs) {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${name} holds a credential (${secret.slice(0, 6)}...):\n${text}`);
  }
});
