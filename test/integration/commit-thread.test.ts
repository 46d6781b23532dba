/**
 * The writer's commits on their own thread (src/storage/commit-thread.ts), against a real
 * PostgreSQL: what it commits is what the store reads back, a session another process has
 * taken comes back as a FencedError naming it, a thread that stops unasked fails what was in
 * flight and all that follows and says so once, and close() leaves no connection behind.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import pg from 'pg';
import { createLogger } from '../../src/observability/logger.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { BodyBuffers } from '../../src/storage/body-buffers.ts';
import { FencedError } from '../../src/storage/commit-refusal.ts';
import { CommitThread } from '../../src/storage/commit-thread.ts';
import { createPool } from '../../src/storage/database.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { SessionRepository } from '../../src/storage/session-repository.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

const log = createLogger('silent');

async function setup(t: TestContext, bodies?: BodyBuffers) {
  const database = await freshDatabase();
  const pool = createPool(database.url, 2, log);
  const thread = new CommitThread({ databaseUrl: database.url, connections: 2, logLevel: 'silent', log, bodies });
  t.after(async () => {
    await thread.close();
    await pool.end();
    await database.drop();
  });
  await thread.start();
  const repository = new SessionRepository({ pool, creates: pool });
  const newSession = async () => {
    const id = randomUUID();
    await repository.create({ id, tokenHash: randomBytes(32), channels: ['ax'], sampleRateHz: null, metadata: {} });
    return id;
  };
  return { database, pool, thread, repository, store: new SampleStore(pool), newSession };
}

/** `count` samples from seq `first`, one channel: t = 1000 + seq, ax = seq / 4. */
function batchFrom(first: number, count: number): SampleBatch {
  const batch = SampleBatch.allocate(count, 1);
  for (let i = 0; i < count; i++) {
    batch.columns[i] = first + i;
    batch.columns[count + i] = 1_000 + first + i;
    batch.columns[2 * count + i] = (first + i) / 4;
  }
  return batch;
}

async function storedSeqs(store: SampleStore, sessionId: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const batch of store.readRange(sessionId, 0, Number.MAX_SAFE_INTEGER)) {
    for (let i = 0; i < batch.count; i++) {
      assert.equal(batch.value(0, i), batch.seq(i) / 4);
      seqs.push(batch.seq(i));
    }
  }
  return seqs;
}

test('what the thread commits is stored with counters and marker; isCommitted tells a committed flush from one that is not', async (t) => {
  const { thread, store, repository, newSession } = await setup(t);
  const [first, second] = [await newSession(), await newSession()];
  const rows = [
    { sessionId: first, batches: [batchFrom(1, 2_000)] },
    { sessionId: first, batches: [batchFrom(2_001, 500)] },
    { sessionId: second, batches: [batchFrom(10, 3)] },
  ];
  const marker = { laneId: randomUUID(), flushId: randomUUID() };
  assert.equal(await thread.isCommitted(marker), false);
  await thread.commitChunks(
    rows,
    [
      { sessionId: first, sampleCount: 2_500, lastSeq: 2_500 },
      { sessionId: second, sampleCount: 3, lastSeq: 12 },
    ],
    marker,
  );
  assert.equal(await thread.isCommitted(marker), true);
  assert.equal(await thread.isCommitted({ laneId: marker.laneId, flushId: randomUUID() }), false);
  assert.deepEqual(
    await storedSeqs(store, first),
    Array.from({ length: 2_500 }, (_, i) => i + 1),
  );
  assert.deepEqual(await storedSeqs(store, second), [10, 11, 12]);
  const record = await repository.find(first);
  assert.equal(record?.sampleCount, 2_500);
  assert.equal(record?.lastSeq, 2_500);
});

test('a commit that PostgreSQL refuses fails with its error and stores nothing', async (t) => {
  const { thread, store, newSession } = await setup(t);
  const id = await newSession();
  await thread.commitChunks([{ sessionId: id, batches: [batchFrom(1, 5)] }], [{ sessionId: id, sampleCount: 5, lastSeq: 5 }]);
  // Two chunks ending at seq 7 collide (primary key). Not at or below the stored seq 5, which
  // the commit refuses itself before PostgreSQL sees a row (partitions.test.ts).
  const clash = [
    { sessionId: id, batches: [batchFrom(6, 2)] },
    { sessionId: id, batches: [batchFrom(7, 1)] },
  ];
  await assert.rejects(thread.commitChunks(clash, [{ sessionId: id, sampleCount: 3, lastSeq: 7 }]), (error: Error & { code?: string }) => {
    assert.equal(error.code, '23505');
    return true;
  });
  assert.deepEqual(await storedSeqs(store, id), [1, 2, 3, 4, 5]);
});

test("a commit's body memory comes back from the thread, committed or refused, and the next body is written into it", async (t) => {
  const bodies = new BodyBuffers();
  const { thread, store, newSession } = await setup(t, bodies);
  const id = await newSession();
  assert.deepEqual(bodies.kept, { pieces: 0, bytes: 0 });
  await thread.commitChunks([{ sessionId: id, batches: [batchFrom(1, 5)] }], [{ sessionId: id, sampleCount: 5, lastSeq: 5 }]);
  const returned = bodies.kept;
  assert.equal(returned.pieces, 1);
  assert.ok(returned.bytes >= 64 * 1024, `${returned.bytes} bytes`);
  // Refused (its two rows end at the same seq): the memory still returns.
  const clash = [
    { sessionId: id, batches: [batchFrom(6, 2)] },
    { sessionId: id, batches: [batchFrom(7, 1)] },
  ];
  await assert.rejects(thread.commitChunks(clash, [{ sessionId: id, sampleCount: 3, lastSeq: 7 }]), /duplicate key/);
  assert.deepEqual(bodies.kept, returned);
  // Reused memory holds the last body's bytes: the next body must be stored exactly as written.
  await thread.commitChunks([{ sessionId: id, batches: [batchFrom(6, 3)] }], [{ sessionId: id, sampleCount: 8, lastSeq: 8 }]);
  assert.deepEqual(bodies.kept, returned);
  assert.deepEqual(await storedSeqs(store, id), [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('a session another process has taken comes back as a FencedError naming it, and nothing of the commit is stored', async (t) => {
  const { thread, store, repository, newSession } = await setup(t);
  const [taken, kept] = [await newSession(), await newSession()];
  const ours = (await repository.claimForProducer(taken))!;
  const keptClaim = (await repository.claimForProducer(kept))!;
  await repository.claimForProducer(taken); // another process's claim moves the epoch on
  const attempt = thread.commitChunks(
    [
      { sessionId: taken, batches: [batchFrom(1, 4)] },
      { sessionId: kept, batches: [batchFrom(1, 4)] },
    ],
    [
      { sessionId: taken, sampleCount: 4, lastSeq: 4, epoch: ours.epoch },
      { sessionId: kept, sampleCount: 4, lastSeq: 4, epoch: keptClaim.epoch },
    ],
  );
  await assert.rejects(attempt, (error: unknown) => {
    assert.ok(error instanceof FencedError);
    assert.deepEqual(error.sessionIds, [taken]);
    return true;
  });
  assert.deepEqual(await storedSeqs(store, kept), []);
});

test('a thread that stops unasked fails what is in flight and every later request, and reports it once', async (t) => {
  const database = await freshDatabase();
  const stops: Error[] = [];
  const thread = new CommitThread({
    databaseUrl: database.url,
    connections: 1,
    logLevel: 'silent',
    log,
    onStop: (error) => stops.push(error),
  });
  const pool = createPool(database.url, 1, log);
  const blocker = new pg.Client({ connectionString: database.url });
  t.after(async () => {
    await blocker.end().catch(() => undefined);
    await thread.close();
    await pool.end();
    await database.drop();
  });
  await blocker.connect();
  await thread.start();
  assert.equal(thread.running, true);
  const sessionId = randomUUID();
  await new SessionRepository({ pool, creates: pool }).create({
    id: sessionId,
    tokenHash: randomBytes(32),
    channels: ['ax'],
    sampleRateHz: null,
    metadata: {},
  });
  // The session row locked elsewhere: the commit waits on it, so it is surely in flight when the thread goes.
  await blocker.query('BEGIN');
  await blocker.query('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [sessionId]);
  const inFlight = thread.commitChunks([{ sessionId, batches: [batchFrom(1, 3)] }], [{ sessionId, sampleCount: 3, lastSeq: 3 }]);
  await eventually(async () => {
    const { rows } = await pool.query<{ waiting: number }>(
      'SELECT count(*)::int AS waiting FROM pg_stat_activity ' +
        "WHERE datname = current_database() AND application_name = 'wavehouse-writer' AND wait_event_type = 'Lock'",
    );
    assert.equal(rows[0].waiting, 1);
  });
  await (thread as unknown as { thread: Worker }).thread.terminate();
  await assert.rejects(inFlight, /commit thread stopped/);
  await blocker.query('ROLLBACK');
  await assert.rejects(thread.isCommitted({ laneId: randomUUID(), flushId: randomUUID() }), /commit thread stopped/);
  await assert.rejects(
    thread.commitChunks([{ sessionId, batches: [batchFrom(1, 1)] }], [{ sessionId, sampleCount: 1, lastSeq: 1 }]),
    /commit thread stopped/,
  );
  assert.equal(thread.running, false);
  assert.equal(stops.length, 1);
  assert.match(stops[0].message, /exit code/);
  assert.deepEqual(await storedSeqs(new SampleStore(pool), sessionId), []);
});

test('close() ends the thread and its connections; later commits are refused', async (t) => {
  const { database, thread, newSession } = await setup(t);
  const name = new URL(database.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const id = await newSession();
  await thread.commitChunks([{ sessionId: id, batches: [batchFrom(1, 3)] }], [{ sessionId: id, sampleCount: 3, lastSeq: 3 }]);
  const threadConnections = async () => {
    const { rows } = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'wavehouse-writer'",
      [name],
    );
    return rows[0].n;
  };
  assert.ok((await threadConnections()) >= 1, 'the thread holds a connection after a commit');
  await thread.close();
  await eventually(async () => assert.equal(await threadConnections(), 0));
  await assert.rejects(
    thread.commitChunks([{ sessionId: id, batches: [batchFrom(4, 1)] }], [{ sessionId: id, sampleCount: 1, lastSeq: 4 }]),
    /closed/,
  );
  await admin.end();
});

test('a thread whose database never answers fails start() within its bound, and is terminated', async (t) => {
  // Accepts connections and never says a word, like a pooler queueing them or a stuck server.
  const connections: net.Socket[] = [];
  const silent = net.createServer((socket) => connections.push(socket.resume()));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const { port } = silent.address() as net.AddressInfo;
  const stops: Error[] = [];
  const startTimeoutMs = 3_000;
  const thread = new CommitThread({
    databaseUrl: `postgres://postgres@127.0.0.1:${port}/none`,
    connections: 1,
    logLevel: 'silent',
    log,
    onStop: (error) => stops.push(error),
    startTimeoutMs,
  });
  const began = Date.now();
  await assert.rejects(thread.start(), new RegExp(`did not start within ${startTimeoutMs} ms.*127\\.0\\.0\\.1:${port}`));
  // Below pg's own connect timeout (5 s): it was this bound that ended the wait.
  assert.ok(Date.now() - began < startTimeoutMs + 1_500, `start() failed after ${Date.now() - began} ms`);
  assert.equal(connections.length, 1, 'the thread loaded and connected');
  assert.equal(thread.running, false);
  // Terminated: its connection closes with it.
  await eventually(() => assert.equal(connections[0].closed, true));
  await assert.rejects(thread.isCommitted({ laneId: randomUUID(), flushId: randomUUID() }), /did not start/);
  assert.deepEqual(stops, [], "a failed start is start()'s error, not a stop reported as fatal");
});

test('a thread that exits while starting fails start() with why, and is not reported as a stop', async () => {
  const stops: Error[] = [];
  // pino refuses an unknown level: the thread throws while loading and exits before its first answer.
  const thread = new CommitThread({
    databaseUrl: 'postgres://postgres@127.0.0.1:5432/none',
    connections: 1,
    logLevel: 'no-such-level',
    log,
    onStop: (error) => stops.push(error),
  });
  await assert.rejects(thread.start(), /commit thread stopped \(exit code 1\)/);
  assert.equal(thread.running, false);
  // onStop is what serve.ts exits on; a failed start is buildApp's to clean up after, then to report.
  assert.deepEqual(stops, [], "an exit during start() is start()'s error, not a stop reported as fatal");
});

test('a thread that does not start on a socket URL names the socket directory, which the URL has in place of a host', async (t) => {
  // A PostgreSQL socket that accepts connections and never answers.
  const directory = await mkdtemp(path.join(os.tmpdir(), 'wavehouse-socket-'));
  const connections: net.Socket[] = [];
  const silent = net.createServer((socket) => connections.push(socket.resume()));
  await new Promise<void>((resolve) => silent.listen(path.join(directory, '.s.PGSQL.5432'), resolve));
  t.after(async () => {
    for (const socket of connections) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await rm(directory, { recursive: true, force: true });
  });
  const thread = new CommitThread({
    databaseUrl: `postgres:///none?host=${directory}`,
    connections: 1,
    logLevel: 'silent',
    log,
    startTimeoutMs: 1_000,
  });
  const rejection = await thread.start().then(
    () => assert.fail('start() succeeded'),
    (error: Error) => error,
  );
  assert.match(rejection.message, /did not start within 1000 ms/);
  assert.ok(rejection.message.endsWith(`an answer from ${directory}`), rejection.message);
});
