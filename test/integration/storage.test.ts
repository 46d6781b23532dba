/**
 * The storage layer on its own, against both databases Wavehouse runs on (docs/architecture.md,
 * principle 6): the embedded PostgreSQL and a real server. One suite, run once per backend.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import { createLogger } from '../../src/observability/logger.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { SessionState } from '../../src/sessions/session-state.ts';
import { BatchWriter } from '../../src/storage/batch-writer.ts';
import { createPool, DatabaseUnreachableError, isDatabaseUnavailable, type Pool } from '../../src/storage/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/storage/embedded-postgres.ts';
import { loadMigrations, migrate } from '../../src/storage/migrations.ts';
import { ProducerLocks } from '../../src/storage/producer-locks.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { SessionRepository } from '../../src/storage/session-repository.ts';
import { WriteQueue } from '../../src/storage/write-queue.ts';
import { adminUrl, freshDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const log = createLogger('silent');

interface Backend {
  /** A database with nothing in it. */
  emptyDatabase(): Promise<TestDatabase>;
  /** A database with every migration applied. */
  migratedDatabase(): Promise<TestDatabase>;
}

/** CREATE DATABASE through `serverUrl`; dropped WITH (FORCE) so a leaked connection cannot block it. */
async function createDatabaseOn(serverUrl: string): Promise<TestDatabase> {
  const name = `wavehouse_storage_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function migratedOn(serverUrl: string): Promise<TestDatabase> {
  const database = await createDatabaseOn(serverUrl);
  const pool = createPool(database.url, 2, log);
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  return database;
}

const realServer: Backend = {
  emptyDatabase: () => createDatabaseOn(adminUrl),
  migratedDatabase: () => freshDatabase(),
};

function embeddedBackend(): Backend & { start(): Promise<void>; stop(): Promise<void> } {
  let root: string | null = null;
  let embedded: EmbeddedDatabase | null = null;
  const url = () => {
    if (embedded === null) throw new Error('the embedded PostgreSQL is not running');
    return embedded.url;
  };
  return {
    async start() {
      root = await mkdtemp(path.join(os.tmpdir(), 'wavehouse-storage-'));
      // mkdtemp creates 0700; as root the server runs as OS user "postgres", which must enter it.
      await chmod(root, 0o755);
      embedded = await startEmbeddedPostgres({ dataDir: root, log: { info: () => undefined, warn: () => undefined } });
    },
    async stop() {
      await embedded?.stop();
      if (root !== null) await rm(root, { recursive: true, force: true });
    },
    emptyDatabase: () => createDatabaseOn(url()),
    migratedDatabase: () => migratedOn(url()),
  };
}

interface Storage {
  url: string;
  pool: Pool;
  repository: SessionRepository;
  store: SampleStore;
}

async function openStorage(t: TestContext, backend: Backend): Promise<Storage> {
  const database = await backend.migratedDatabase();
  const pool = createPool(database.url, 4, log);
  t.after(async () => {
    await pool.end();
    await database.drop();
  });
  return { url: database.url, pool, repository: new SessionRepository({ pool, creates: pool }), store: new SampleStore(pool) };
}

/**
 * A repository whose database accepts connections and never answers: each connection attempt
 * times out (after 300 ms). `accepted` holds the attempts.
 */
async function silentDatabase(t: TestContext): Promise<{ repository: SessionRepository; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const silent = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port: (silent.address() as net.AddressInfo).port,
    user: 'x',
    database: 'x',
    connectionTimeoutMillis: 300,
  });
  pool.on('error', () => undefined);
  t.after(async () => {
    for (const socket of accepted) socket.destroy();
    await pool.end().catch(() => undefined);
    await new Promise((resolve) => silent.close(resolve));
  });
  return { repository: new SessionRepository({ pool, creates: pool }), accepted };
}

async function newSession(repository: SessionRepository, channels = ['ax', 'ay', 'az']): Promise<string> {
  const id = randomUUID();
  await repository.create({ id, tokenHash: randomBytes(32), channels, sampleRateHz: null, metadata: {} });
  return id;
}

/**
 * Two sessions this process claimed as a producer would: `taken`, which a test lets another
 * process take over, and `stays`, which stays this process's.
 */
async function twoClaimedSessions(repository: SessionRepository, channels = ['ax', 'ay', 'az']) {
  const takenId = await newSession(repository, channels);
  const keptId = await newSession(repository, channels);
  const ours = await repository.claimForProducer(takenId);
  const kept = await repository.claimForProducer(keptId);
  assert.ok(ours && kept);
  const taken = new SessionState({ sessionId: takenId, channels, lastCommittedSeq: -1, windowMaxBytes: 1 << 20, epoch: ours.epoch });
  const stays = new SessionState({ sessionId: keptId, channels, lastCommittedSeq: -1, windowMaxBytes: 1 << 20, epoch: kept.epoch });
  return { takenId, keptId, ours, taken, stays };
}

interface PlainSample {
  seq: number;
  t: number;
  values: number[];
}

function batchOf(samples: readonly PlainSample[], channelCount: number): SampleBatch {
  const batch = SampleBatch.allocate(samples.length, channelCount);
  samples.forEach((sample, i) => {
    batch.columns[i] = sample.seq;
    batch.columns[samples.length + i] = sample.t;
    sample.values.forEach((value, c) => {
      batch.columns[(c + 2) * samples.length + i] = value;
    });
  });
  return batch;
}

function bytesOf(batch: SampleBatch): Buffer {
  return Buffer.from(batch.columns.buffer, batch.columns.byteOffset, batch.columns.byteLength);
}

function samplesOf(batch: SampleBatch): PlainSample[] {
  return Array.from({ length: batch.count }, (_, i) => ({
    seq: batch.seq(i),
    t: batch.t(i),
    values: Array.from({ length: batch.channelCount }, (_, c) => batch.value(c, i)),
  }));
}

function plainSamples(seqs: readonly number[], channelCount = 3): PlainSample[] {
  return seqs.map((seq) => ({
    seq,
    t: 1_700_000_000_000 + seq * 0.25,
    values: Array.from({ length: channelCount }, (_, c) => seq / 7 + c),
  }));
}

async function readAll(store: SampleStore, sessionId: string, fromSeq: number, toSeq: number): Promise<PlainSample[]> {
  const out: PlainSample[] = [];
  for await (const batch of store.readRange(sessionId, fromSeq, toSeq)) out.push(...samplesOf(batch));
  return out;
}

/**
 * Commits `samples` as one chunk per `perChunk` samples, the way the writer does: each chunk
 * made of batches of `batchSizes` samples in turn (one batch, by default), as the writer joins
 * a session's frames into a chunk.
 */
async function commitAsChunks(
  store: SampleStore,
  sessionId: string,
  samples: readonly PlainSample[],
  perChunk: number,
  { channelCount = 3, batchSizes = [perChunk] }: { channelCount?: number; batchSizes?: number[] } = {},
) {
  const rows = [];
  for (let i = 0; i < samples.length; i += perChunk) {
    const chunk = samples.slice(i, i + perChunk);
    const batches = [];
    for (let at = 0, part = 0; at < chunk.length; part++) {
      const size = batchSizes[part % batchSizes.length];
      batches.push(batchOf(chunk.slice(at, at + size), channelCount));
      at += size;
    }
    rows.push({ sessionId, batches });
  }
  await store.commitChunks(rows, [{ sessionId, sampleCount: samples.length, lastSeq: samples[samples.length - 1].seq }]);
}

async function chunkRows(url: string, sessionId: string): Promise<Array<{ first: number; last: number; count: number }>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ first_seq: string; last_seq: string; sample_count: number }>(
      'SELECT first_seq, last_seq, sample_count FROM sample_chunks WHERE session_id = $1 ORDER BY first_seq',
      [sessionId],
    );
    return rows.map((row) => ({ first: Number(row.first_seq), last: Number(row.last_seq), count: row.sample_count }));
  } finally {
    await client.end();
  }
}

/** Backend pids holding an advisory lock in the database at `url`. */
async function advisoryLockHolders(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    return rows.map((row) => row.pid);
  } finally {
    await client.end();
  }
}

function storageSuite(name: string, backend: Backend, lifecycle?: { start(): Promise<void>; stop(): Promise<void> }) {
  describe(`storage on ${name}`, () => {
    if (lifecycle) {
      // initdb on a first start takes seconds; the bound is for a wedged one.
      before(() => lifecycle.start(), { timeout: 120_000 });
      after(() => lifecycle.stop());
    }

    describe('migrations', () => {
      test('apply every migration once; running them again changes nothing', async (t) => {
        const database = await backend.emptyDatabase();
        const pool = createPool(database.url, 2, log);
        t.after(async () => {
          await pool.end();
          await database.drop();
        });
        const names = (await loadMigrations()).map((migration) => migration.name);
        assert.ok(names.length > 0);
        assert.deepEqual((await migrate(pool)).applied, names);
        assert.deepEqual((await migrate(pool)).applied, []);
        const { rows } = await pool.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY version');
        assert.deepEqual(
          rows.map((row) => row.name),
          names,
        );
      });

      test('a connection lost in the middle fails the migration with that error; a later run applies everything', async (t) => {
        const database = await backend.emptyDatabase();
        const target = new URL(database.url);
        const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
        const pool = createPool(proxy.urlFor(database.url), 2, log);
        t.after(async () => {
          await pool.end();
          await proxy.close();
          await database.drop();
        });
        // Cut as the server confirms the first migration's BEGIN: the client is inside the
        // migration's transaction when its connection goes.
        const cut = proxy.cutWhenServerSends(Buffer.from('BEGIN\0'));
        await assert.rejects(migrate(pool), (error: Error) => {
          assert.doesNotMatch(error.message, /not queryable|ROLLBACK/i, 'the connection error, not a failed ROLLBACK after it');
          return true;
        });
        await cut;
        proxy.restore();
        const names = (await loadMigrations()).map((migration) => migration.name);
        assert.deepEqual((await migrate(pool)).applied, names);
      });

      test('two instances migrating at once apply each migration exactly once', async (t) => {
        const database = await backend.emptyDatabase();
        const first = createPool(database.url, 2, log);
        const second = createPool(database.url, 2, log);
        t.after(async () => {
          await first.end();
          await second.end();
          await database.drop();
        });
        const names = (await loadMigrations()).map((migration) => migration.name);
        const applied = (await Promise.all([migrate(first), migrate(second)])).map((outcome) => outcome.applied);
        assert.deepEqual(applied.flat().sort(), [...names].sort(), `applied ${JSON.stringify(applied)}`);
        assert.ok(
          applied.some((list) => list.length === 0),
          'one of them found everything already applied',
        );
        const { rows } = await first.query<{ count: string }>('SELECT count(*) FROM schema_migrations');
        assert.equal(Number(rows[0].count), names.length);
        await first.query('SELECT id FROM sessions LIMIT 1');
        await first.query('SELECT session_id FROM sample_chunks LIMIT 1');
      });
    });

    describe('connection pool', () => {
      test("each connection gets the pool's name, statement timeout and writeback setting, over the URL's", async (t) => {
        const database = await backend.emptyDatabase();
        // A URL that sets the same parameters: pg alone would let it win. Its own options are kept.
        const url = new URL(database.url);
        url.searchParams.set('application_name', 'from-the-url');
        url.searchParams.set('statement_timeout', '99');
        url.searchParams.set('options', '-c work_mem=5MB');
        const pool = createPool(url.toString(), 2, log, {
          applicationName: 'wavehouse-test',
          statementTimeoutMs: 1234,
          backendFlushAfterKb: 256,
        });
        const plain = createPool(database.url, 1, log);
        t.after(async () => {
          await pool.end();
          await plain.end();
          await database.drop();
        });
        const settings =
          'SELECT current_setting($1) AS name, current_setting($2) AS timeout, ' +
          'current_setting($3) AS flush, current_setting($4) AS work_mem';
        const names = ['application_name', 'statement_timeout', 'backend_flush_after', 'work_mem'];
        // Two queries at once, so both of the pool's connections are asked.
        const answers = await Promise.all([pool.query(settings, names), pool.query(settings, names)]);
        for (const { rows } of answers)
          assert.deepEqual(rows[0], { name: 'wavehouse-test', timeout: '1234ms', flush: '256kB', work_mem: '5MB' });
        const { rows } = await plain.query(settings, names);
        assert.deepEqual(rows[0], { name: 'wavehouse', timeout: '0', flush: '0', work_mem: '4MB' });
      });

      test('an idle connection the server ends is logged in one short line, without the client pg-pool hangs on the error', async (t) => {
        const database = await backend.emptyDatabase();
        const lines: Array<{ msg?: string; err?: Record<string, unknown> }> = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(JSON.parse(chunk.toString()));
            done();
          },
        });
        const pool = createPool(database.url, 1, createLogger('warn', sink), { applicationName: 'wavehouse-idle-test' });
        t.after(async () => {
          await pool.end();
          await database.drop();
        });
        await pool.query('SELECT 1');
        const killer = new pg.Client({ connectionString: database.url });
        await killer.connect();
        await killer.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'wavehouse-idle-test'");
        await killer.end();
        const line = await eventually(() => {
          const found = lines.find((entry) => entry.msg === 'idle database connection lost');
          assert.ok(found, 'no line yet');
          return found;
        });
        assert.equal(line.err?.code, '57P01');
        assert.equal(line.err?.type, 'DatabaseError');
        assert.match(String(line.err?.message), /terminat/);
        assert.equal(line.err?.client, undefined);
        assert.ok(JSON.stringify(line).length < 2_000, `${JSON.stringify(line).length} characters`);
        assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0].one, 1, 'the next query connects anew');
      });
    });

    describe('sessions', () => {
      test('are created, found and ended; ending again keeps the first end time', async (t) => {
        const { repository } = await openStorage(t, backend);
        const id = randomUUID();
        const tokenHash = randomBytes(32);
        const created = await repository.create({
          id,
          tokenHash,
          channels: ['x', 'y'],
          sampleRateHz: 100,
          metadata: { site: 'lab', n: 1 },
        });
        assert.equal(created.id, id);
        assert.deepEqual(created.tokenHash, tokenHash);
        assert.equal(created.status, 'created');
        assert.ok(created.createdAt instanceof Date);
        assert.equal(created.endedAt, null);
        assert.deepEqual(created.channels, ['x', 'y']);
        assert.equal(created.sampleRateHz, 100);
        assert.deepEqual(created.metadata, { site: 'lab', n: 1 });
        assert.equal(created.sampleCount, 0);
        assert.equal(created.lastSeq, null);

        assert.deepEqual(await repository.find(id), created);
        assert.equal(await repository.find(randomUUID()), null);

        const ended = await repository.markEnded(id);
        assert.equal(ended?.status, 'ended');
        assert.ok(ended?.endedAt instanceof Date);
        const endedAgain = await repository.markEnded(id);
        assert.deepEqual(endedAgain?.endedAt, ended.endedAt);
        assert.deepEqual(await repository.find(id), endedAgain);
        assert.equal(await repository.markEnded(randomUUID()), null);
      });

      test('created at the same moment, they go to the database together, and each gets back its own record', async (t) => {
        const { repository, pool } = await openStorage(t, backend);
        const asked = Array.from({ length: 40 }, (_, i) => ({
          id: randomUUID(),
          tokenHash: randomBytes(32),
          channels: i % 2 === 0 ? ['ax', 'ay', 'az'] : [`c.${i}`, 'with-dash', 'under_score'],
          sampleRateHz: i % 3 === 0 ? null : 50 + i / 4,
          metadata: { i, note: `quote " backslash \\ and ${'é'.repeat(i)}`, nested: { list: [i, null, true] } },
        }));
        const created = await Promise.all(asked.map((session) => repository.create(session)));
        created.forEach((record, i) => {
          const session = asked[i];
          assert.equal(record.id, session.id);
          assert.deepEqual(record.tokenHash, session.tokenHash);
          assert.deepEqual(record.channels, session.channels);
          assert.equal(record.sampleRateHz, session.sampleRateHz);
          assert.deepEqual(record.metadata, session.metadata);
          assert.equal(record.status, 'created');
        });
        for (const session of asked) assert.deepEqual((await repository.find(session.id))?.channels, session.channels);
        // Rows of one transaction share its xmin: far fewer transactions than sessions.
        const { rows } = await pool.query<{ transactions: number }>(
          'SELECT count(DISTINCT xmin::text)::int AS transactions FROM sessions WHERE id = ANY($1)',
          [asked.map((session) => session.id)],
        );
        assert.ok(rows[0].transactions < asked.length / 2, `${rows[0].transactions} transactions for ${asked.length} sessions`);
      });

      test('more creates at once than one INSERT carries (64) all land, each with its own record', async (t) => {
        const { repository } = await openStorage(t, backend);
        const asked = Array.from({ length: 150 }, (_, i) => ({
          id: randomUUID(),
          tokenHash: randomBytes(32),
          channels: ['ax'],
          sampleRateHz: i,
          metadata: { i },
        }));
        const created = await Promise.all(asked.map((session) => repository.create(session)));
        assert.deepEqual(
          created.map((record) => [record.id, record.sampleRateHz, record.metadata.i]),
          asked.map((session, i) => [session.id, i, i]),
        );
      });

      test('a create made the moment the one before it is answered is inserted too', { timeout: 10_000 }, async (t) => {
        const { repository } = await openStorage(t, backend);
        // Awaited directly, each next create is made while the insert loop is still letting go of the queue.
        for (let i = 0; i < 3; i++) {
          const record = await repository.create({
            id: randomUUID(),
            tokenHash: randomBytes(32),
            channels: ['ax'],
            sampleRateHz: null,
            metadata: { i },
          });
          assert.equal(record.metadata.i, i);
        }
      });

      test('looked up at the same moment, sessions go to the database together, and each lookup gets its own answer', async (t) => {
        const { repository, pool } = await openStorage(t, backend);
        const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => newSession(repository, [`c${i}`])));
        let queries = 0;
        pool.on('acquire', () => queries++);
        const unknown = randomUUID();
        // Duplicates, an id in capitals, an unknown one and ones that are no UUID at all: PostgreSQL
        // would refuse the last in a uuid[] and fail the batch, so they must not reach it.
        const asked = [...ids, ids[3], ids[7].toUpperCase(), unknown, 'not-a-uuid', `${ids[0]}'; DROP TABLE sessions; --`, ''];
        const found = await Promise.all(asked.map((id) => repository.find(id)));
        assert.deepEqual(
          found.map((record) => record?.channels ?? null),
          [...ids.map((_, i) => [`c${i}`]), ['c3'], ['c7'], null, null, null, null],
        );
        assert.ok(queries <= 2, `${queries} queries for ${asked.length} lookups`);
        assert.equal(await repository.find(ids[5]).then((record) => record?.id), ids[5]);
      });

      test('more lookups at once than one SELECT carries (256) are all answered', async (t) => {
        const { repository } = await openStorage(t, backend);
        const ids = await Promise.all(Array.from({ length: 3 }, () => newSession(repository)));
        const asked = Array.from({ length: 600 }, (_, i) => (i % 5 === 0 ? randomUUID() : ids[i % 3]));
        const found = await Promise.all(asked.map((id) => repository.find(id)));
        assert.deepEqual(
          found.map((record) => record?.id ?? null),
          asked.map((id, i) => (i % 5 === 0 ? null : id)),
        );
      });

      test('a lookup with no answer in time fails as an outage, with every lookup waiting behind it, and the next one is answered', {
        timeout: 10_000,
      }, async (t) => {
        const { pool } = await openStorage(t, backend);
        const repository = new SessionRepository({ pool, creates: pool, lookupTimeoutMs: 300 });
        const id = await newSession(repository);
        // A lock no SELECT can pass: the lookup's query waits, as on a link that died unheard.
        const locker = await pool.connect();
        let outcomes: PromiseSettledResult<unknown>[];
        let waited: number;
        try {
          await locker.query('BEGIN');
          await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
          const started = performance.now();
          const stuck = repository.find(id);
          const behind = Array.from({ length: 5 }, () => repository.find(randomUUID()));
          outcomes = await Promise.allSettled([stuck, ...behind]);
          waited = performance.now() - started;
        } finally {
          await locker.query('ROLLBACK');
          locker.release();
        }
        assert.ok(
          outcomes.every((outcome) => outcome.status === 'rejected' && isDatabaseUnavailable(outcome.reason)),
          JSON.stringify(outcomes),
        );
        assert.match(String((outcomes[0] as PromiseRejectedResult).reason), /no answer within 300 ms/);
        // All of them at once, not one timeout after another.
        assert.ok(waited < 1_000, `${waited.toFixed(0)} ms`);
        assert.equal((await repository.find(id))?.id, id);
      });

      test('with the database unreachable, every session lookup waiting fails with the error', { timeout: 10_000 }, async (t) => {
        const { repository, accepted } = await silentDatabase(t);
        const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => repository.find(randomUUID())));
        assert.ok(outcomes.every((outcome) => outcome.status === 'rejected' && /timeout/i.test(String(outcome.reason))));
        // The first lookup's attempt failed them all: no queue of attempts one after another.
        assert.equal(accepted.length, 1);
      });

      test('with the database unreachable, every waiting create fails at once with the error, not each after a timeout', async (t) => {
        const { repository, accepted } = await silentDatabase(t);
        const asked = Array.from({ length: 100 }, () => ({
          id: randomUUID(),
          tokenHash: randomBytes(32),
          channels: ['ax'],
          sampleRateHz: null,
          metadata: {},
        }));
        const outcomes = await Promise.allSettled(asked.map((session) => repository.create(session)));
        assert.ok(outcomes.every((outcome) => outcome.status === 'rejected' && /timeout/i.test(String(outcome.reason))));
        // The first create's attempt failed them all: no queue of attempts one after another.
        assert.equal(accepted.length, 1);
      });

      test('a create the database refuses fails alone: the others created beside it are stored', async (t) => {
        const { repository } = await openStorage(t, backend);
        const session = (metadata: Record<string, unknown>) => ({
          id: randomUUID(),
          tokenHash: randomBytes(32),
          channels: ['ax'],
          sampleRateHz: null,
          metadata,
        });
        // jsonb refuses U+0000 (the REST route answers 400 before this; the repository must still not fail the others).
        const asked = [session({ n: 1 }), session({ n: 2 }), session({ bad: 'a\u0000b' }), session({ n: 4 }), session({ n: 5 })];
        const outcomes = await Promise.allSettled(asked.map((one) => repository.create(one)));
        assert.deepEqual(
          outcomes.map((outcome) => outcome.status),
          ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
        );
        for (const [i, one] of asked.entries()) assert.equal((await repository.find(one.id)) !== null, i !== 2);
      });

      test('with one creates connection, a batch with a refused create is retried one by one, each getting its own answer', async (t) => {
        const { url, pool } = await openStorage(t, backend);
        // Each row takes 10 ms to insert, so that many inserts queued side by side for the one
        // connection would outwait its connect timeout, as 64 would the app's 5 s on a busy server.
        await pool.query(
          `CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$`,
        );
        await pool.query('CREATE TRIGGER slow_insert BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION slow_insert()');
        const creates = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 250 });
        // The database is dropped (WITH FORCE) before this pool ends: its idle connection is cut.
        creates.on('error', () => undefined);
        t.after(() => creates.end());
        const repository = new SessionRepository({ pool, creates });
        const session = (i: number) => ({
          id: randomUUID(),
          tokenHash: randomBytes(32),
          channels: ['ax'],
          sampleRateHz: null,
          metadata: { i },
        });
        const existing = session(-1);
        await repository.create(existing);
        const backendPid = async () => (await creates.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        const pidBefore = await backendPid();
        // The first goes alone; the 64 made while it runs go as one INSERT, which the duplicate id refuses.
        const asked = Array.from({ length: 65 }, (_, i) => (i === 40 ? { ...session(i), id: existing.id } : session(i)));
        const outcomes = await Promise.allSettled(asked.map((one) => repository.create(one)));
        outcomes.forEach((outcome, i) => {
          if (i === 40) {
            assert.equal(
              outcome.status === 'rejected' && (outcome.reason as { code?: string }).code,
              '23505',
              `create ${i}: ${String((outcome as PromiseRejectedResult).reason)}`,
            );
          } else {
            assert.equal(outcome.status, 'fulfilled', `create ${i}: ${String((outcome as PromiseRejectedResult).reason)}`);
            assert.equal((outcome as PromiseFulfilledResult<{ id: string; metadata: Record<string, unknown> }>).value.id, asked[i].id);
            assert.equal((outcome as PromiseFulfilledResult<{ id: string; metadata: Record<string, unknown> }>).value.metadata.i, i);
          }
        });
        const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE id = ANY($1)', [
          asked.map((one) => one.id),
        ]);
        assert.equal(rows[0].n, asked.length, 'every create but the duplicate is stored, and the duplicate stays the one row it was');
        assert.equal(await backendPid(), pidBefore, 'a refused insert leaves the one creates connection open');
      });

      test('a create that cannot connect to the database fails with DatabaseUnreachableError, its cause kept', async (t) => {
        const { pool } = await openStorage(t, backend);
        // A port nothing listens on: the connection is refused.
        const probe = net.createServer();
        await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
        const { port } = probe.address() as net.AddressInfo;
        await new Promise((resolve) => probe.close(resolve));
        const creates = new pg.Pool({ host: '127.0.0.1', port, user: 'x', database: 'x', max: 1 });
        t.after(() => creates.end());
        const repository = new SessionRepository({ pool, creates });
        await assert.rejects(
          repository.create({ id: randomUUID(), tokenHash: randomBytes(32), channels: ['ax'], sampleRateHz: null, metadata: {} }),
          (error: unknown) => {
            assert.ok(error instanceof DatabaseUnreachableError, String(error));
            assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED');
            return true;
          },
        );
      });
    });

    describe('samples', () => {
      test('round-trip every float64 exactly, -0 and the smallest subnormal included', async (t) => {
        const { repository, store } = await openStorage(t, backend);
        const id = await newSession(repository);
        const awkward = [-0, 5e-324, 0.1, -1.7976931348623157e308, 2.2250738585072014e-308, 1 / 3, -123456.789e-200, 42];
        const samples: PlainSample[] = awkward.map((value, i) => ({
          seq: i === awkward.length - 1 ? Number.MAX_SAFE_INTEGER : i,
          t: i % 2 === 0 ? 1_732_345_678_901.25 + i : -0,
          values: [value, -value, awkward[(i + 3) % awkward.length]],
        }));
        await commitAsChunks(store, id, samples, 3);
        // deepStrictEqual compares numbers with Object.is: -0 is not 0 here.
        assert.deepStrictEqual(await readAll(store, id, 0, Number.MAX_SAFE_INTEGER), samples);
      });

      test('a chunk of consecutive seqs is stored without its seq column; every layout reads back alike', async (t) => {
        const { url, repository, store } = await openStorage(t, backend);
        const id = await newSession(repository);
        const consecutive = plainSamples(Array.from({ length: 12 }, (_, i) => i + 1));
        const gapped = plainSamples([20, 21, 23, 30, 31, 32]);
        // Each chunk joined from batches of 2, 1 and 3 samples: the gapped chunk's gaps fall
        // between its batches (21 | 23 | 30).
        await commitAsChunks(store, id, [...consecutive, ...gapped], 6, { batchSizes: [2, 1, 3] });
        // A row as written before migration 003: consecutive seqs, seq column kept, layout 0 by default.
        const old = plainSamples([40, 41]);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        const { rows } = await (async () => {
          try {
            await client.query(
              'INSERT INTO sample_chunks (session_id, first_seq, last_seq, sample_count, payload) VALUES ($1, 40, 41, 2, $2)',
              [id, bytesOf(batchOf(old, 3))],
            );
            return await client.query<{ first_seq: string; payload_layout: number; bytes: number }>(
              'SELECT first_seq, payload_layout, octet_length(payload) AS bytes ' +
                'FROM sample_chunks WHERE session_id = $1 ORDER BY first_seq',
              [id],
            );
          } finally {
            await client.end();
          }
        })();
        assert.deepEqual(
          rows.map((row) => [Number(row.first_seq), row.payload_layout, row.bytes]),
          [
            [1, 1, 6 * 4 * 8],
            [7, 1, 6 * 4 * 8],
            [20, 0, 6 * 5 * 8],
            [40, 0, 2 * 5 * 8],
          ],
        );
        const all = [...consecutive, ...gapped, ...old];
        assert.deepStrictEqual(await readAll(store, id, 0, Number.MAX_SAFE_INTEGER), all);
        assert.deepStrictEqual(
          await readAll(store, id, 3, 21),
          all.filter((sample) => sample.seq >= 3 && sample.seq <= 21),
        );
        assert.deepStrictEqual(await readAll(store, id, 41, 41), old.slice(1));
      });

      test('read ranges are inclusive, cut inside chunks, and page through more than 16 chunks', async (t) => {
        const { repository, store } = await openStorage(t, backend);
        const id = await newSession(repository);
        // Even seqs only, so bounds also fall into gaps; 40 chunks of 25 is three pages of chunks.
        const all = plainSamples(Array.from({ length: 1_000 }, (_, i) => 2 * (i + 1)));
        await commitAsChunks(store, id, all, 25);
        const between = (from: number, to: number) => all.filter((sample) => sample.seq >= from && sample.seq <= to);

        assert.deepStrictEqual(await readAll(store, id, 0, Number.MAX_SAFE_INTEGER), all);
        assert.deepStrictEqual(await readAll(store, id, 37, 1_913), between(37, 1_913));
        assert.deepStrictEqual(await readAll(store, id, 38, 912), between(38, 912));
        // The last seq of the 16th chunk: a range that ends exactly at a page's end.
        assert.deepStrictEqual(await readAll(store, id, 1, 800), between(1, 800));
        assert.deepStrictEqual(await readAll(store, id, 801, 802), between(801, 802));
        assert.deepStrictEqual(await readAll(store, id, 101, 109), between(101, 109));
        assert.deepStrictEqual(await readAll(store, id, 7, 7), []);
        assert.deepStrictEqual(await readAll(store, id, 2_001, 9_999), []);
        assert.deepStrictEqual(await readAll(store, randomUUID(), 0, 10), []);
        // Its values are written into a COPY statement: anything but a UUID and integers is refused.
        await assert.rejects(readAll(store, "x' OR true --", 0, 10), /not a session id/);
        await assert.rejects(readAll(store, id, 0.5, 10), /seqs must be integers/);
      });

      test('sampleCount, lastSeq and the commit marker move with commits only; a failed commit stores nothing', async (t) => {
        const { repository, store } = await openStorage(t, backend);
        const id = await newSession(repository);
        assert.deepEqual(await counters(repository, id), { status: 'created', sampleCount: 0, lastSeq: null });

        await commitAsChunks(store, id, plainSamples([1, 2, 3, 4, 5]), 5);
        assert.deepEqual(await counters(repository, id), { status: 'active', sampleCount: 5, lastSeq: 5 });

        // The second row collides with the stored chunk (same session and last seq): the whole commit fails.
        const rows = [
          { sessionId: id, batches: [batchOf(plainSamples([6, 7]), 3)] },
          { sessionId: id, batches: [batchOf(plainSamples([5]), 3)] },
        ];
        const lane = randomUUID();
        const failed = { laneId: lane, flushId: randomUUID() };
        await assert.rejects(store.commitChunks(rows, [{ sessionId: id, sampleCount: 3, lastSeq: 7 }], failed));
        assert.deepEqual(await counters(repository, id), { status: 'active', sampleCount: 5, lastSeq: 5 });
        assert.deepStrictEqual(await readAll(store, id, 0, 100), plainSamples([1, 2, 3, 4, 5]));
        assert.equal(await store.isCommitted(failed), false);

        const committed = { laneId: lane, flushId: randomUUID() };
        await store.commitChunks(
          [{ sessionId: id, batches: [batchOf(plainSamples([9, 10]), 3)] }],
          [{ sessionId: id, sampleCount: 2, lastSeq: 10 }],
          committed,
        );
        assert.deepEqual(await counters(repository, id), { status: 'active', sampleCount: 7, lastSeq: 10 });
        assert.equal(await store.isCommitted(committed), true);
        assert.equal(await store.isCommitted(failed), false);
        // The lane's next flush replaces its marker; another lane's marker is its own.
        const next = { laneId: lane, flushId: randomUUID() };
        const otherLane = { laneId: randomUUID(), flushId: committed.flushId };
        await store.commitChunks(
          [{ sessionId: id, batches: [batchOf(plainSamples([11]), 3)] }],
          [{ sessionId: id, sampleCount: 1, lastSeq: 11 }],
          next,
        );
        assert.equal(await store.isCommitted(next), true);
        assert.equal(await store.isCommitted(committed), false);
        assert.equal(await store.isCommitted(otherLane), false);
      });

      test("markers of lanes not heard from in a week are deleted by a store's first commit; the others stay", async (t) => {
        const { url, repository, store } = await openStorage(t, backend);
        const id = await newSession(repository);
        const stale = { laneId: randomUUID(), flushId: randomUUID() };
        const recent = { laneId: randomUUID(), flushId: randomUUID() };
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(
            `INSERT INTO commit_lanes (lane_id, flush_id, committed_at)
             VALUES ($1, $2, now() - interval '7 days 1 minute'), ($3, $4, now() - interval '6 days 23 hours')`,
            [stale.laneId, stale.flushId, recent.laneId, recent.flushId],
          );
        } finally {
          await client.end();
        }
        assert.equal(await store.isCommitted(stale), true);
        const mine = { laneId: randomUUID(), flushId: randomUUID() };
        await store.commitChunks(
          [{ sessionId: id, batches: [batchOf(plainSamples([1]), 3)] }],
          [{ sessionId: id, sampleCount: 1, lastSeq: 1 }],
          mine,
        );
        assert.equal(await store.isCommitted(stale), false);
        assert.equal(await store.isCommitted(recent), true);
        assert.equal(await store.isCommitted(mine), true);
      });
    });

    describe('producer locks', () => {
      test('a lock held by one process is refused to another until it is released', async (t) => {
        const { url } = await openStorage(t, backend);
        const sessionId = randomUUID();
        const mine = new ProducerLocks({ url, log, onLost: () => undefined });
        const theirs = new ProducerLocks({ url, log, onLost: () => undefined });
        t.after(() => Promise.all([mine.close(), theirs.close()]));

        assert.equal(await mine.tryAcquire(sessionId), true);
        assert.equal(await theirs.tryAcquire(sessionId), false);
        assert.equal(await mine.tryAcquire(sessionId), false, 'not re-entrant');
        assert.equal(await theirs.tryAcquire(randomUUID()), true, 'other sessions are unaffected');
        await mine.release(sessionId);
        assert.equal(await theirs.tryAcquire(sessionId), true);
        assert.equal(await mine.tryAcquire(sessionId), false);
      });

      test("the locks connection is named wavehouse-locks, whatever the URL's application_name", async (t) => {
        const { url, pool } = await openStorage(t, backend);
        const named = new URL(url);
        named.searchParams.set('application_name', 'from-the-url');
        const locks = new ProducerLocks({ url: named.toString(), log, onLost: () => undefined });
        t.after(() => locks.close());
        assert.equal(await locks.tryAcquire(randomUUID()), true);
        const { rows } = await pool.query<{ name: string }>(
          'SELECT application_name AS name FROM pg_locks JOIN pg_stat_activity USING (pid) ' +
            "WHERE locktype = 'advisory' AND datname = current_database()",
        );
        assert.deepEqual(rows, [{ name: 'wavehouse-locks' }]);
      });

      test('a lock is freed when its holder closes its connection', async (t) => {
        const { url } = await openStorage(t, backend);
        const sessionId = randomUUID();
        const mine = new ProducerLocks({ url, log, onLost: () => undefined });
        const theirs = new ProducerLocks({ url, log, onLost: () => undefined });
        t.after(() => Promise.all([mine.close(), theirs.close()]));

        assert.equal(await mine.tryAcquire(sessionId), true);
        await mine.close();
        assert.equal(await theirs.tryAcquire(sessionId), true);
      });

      test('a holder that crashes loses its lock to another; back online it reports the lock lost', async (t) => {
        const { proxy, sessionId, lost, mine, theirs } = await locksBehindProxy(t, backend);

        assert.equal(await mine.tryAcquire(sessionId), true);
        // The connection dies without an unlock, as it does when the process is killed.
        proxy.cut();
        await eventually(async () => assert.equal(await theirs.tryAcquire(sessionId), true), { timeoutMs: 5_000 });
        proxy.restore();
        await eventually(() => assert.deepEqual(lost, [sessionId]), { timeoutMs: 10_000 });
      });

      test('a holder whose connection drops takes its locks back once it reconnects', async (t) => {
        const { url, proxy, sessionId, lost, mine, theirs } = await locksBehindProxy(t, backend);

        assert.equal(await mine.tryAcquire(sessionId), true);
        const [before] = await advisoryLockHolders(url);
        proxy.cut();
        proxy.restore();
        await eventually(
          async () => {
            const holders = await advisoryLockHolders(url);
            assert.equal(holders.length, 1);
            assert.notEqual(holders[0], before, 'held again, by a new connection');
          },
          { timeoutMs: 10_000 },
        );
        assert.equal(await theirs.tryAcquire(sessionId), false);
        assert.deepEqual(lost, []);
      });
    });

    describe('batch writer', () => {
      test('merges consecutive batches of each session into chunks of at most maxChunkSamples, and acks what it committed', async (t) => {
        const { url, repository, store } = await openStorage(t, backend);
        const channels = ['ax', 'ay', 'az'];
        const first = new SessionState({
          sessionId: await newSession(repository, channels),
          channels,
          lastCommittedSeq: -1,
          windowMaxBytes: 1 << 20,
        });
        const second = new SessionState({
          sessionId: await newSession(repository, channels),
          channels,
          lastCommittedSeq: -1,
          windowMaxBytes: 1 << 20,
        });
        const queue = new WriteQueue({ maxQueuedBytes: 64 * 1024 * 1024 });
        const sent = new Map<SessionState, PlainSample[]>([
          [first, []],
          [second, []],
        ]);
        const batches = new Map<SessionState, number>();
        const push = (state: SessionState, count: number) => {
          batches.set(state, (batches.get(state) ?? 0) + 1);
          const list = sent.get(state)!;
          const from = (list.at(-1)?.seq ?? 0) + 1;
          const samples = plainSamples(Array.from({ length: count }, (_, i) => from + i));
          list.push(...samples);
          queue.push(state, batchOf(samples, 3), Date.now());
          state.highestAcceptedSeq = from + count - 1;
        };
        // Queued before the writer starts, so one flush sees them all, the two sessions interleaved.
        for (let i = 0; i < 10; i++) {
          push(first, 30);
          if (i % 2 === 0) push(second, 40);
        }
        // A batch larger than a chunk may hold.
        push(first, 250);
        push(second, 7);

        const recorded = recordingCounters();
        const writer = new BatchWriter({
          queue,
          store,
          limits: { maxBatchAgeMs: 1, maxBatchSamples: 100_000, maxChunkSamples: 100 },
          log,
          counters: recorded,
        });
        writer.start();
        t.after(() => writer.drain(5_000));
        await eventually(() => {
          assert.equal(first.committedSeq, 550);
          assert.equal(second.committedSeq, 207);
        });
        assert.equal(recorded.committedSamples, 757);
        assert.equal(
          recorded.acks,
          [...batches.values()].reduce((a, b) => a + b, 0),
        );

        for (const state of [first, second]) {
          const chunks = await chunkRows(url, state.sessionId);
          const expected = sent.get(state)!;
          assert.ok(
            chunks.every((chunk) => chunk.count <= 100),
            `chunks of at most 100: ${JSON.stringify(chunks)}`,
          );
          assert.ok(chunks.length < batches.get(state)!, `batches were merged: ${chunks.length} chunks for ${batches.get(state)} batches`);
          chunks.forEach((chunk, i) => {
            assert.equal(chunk.last - chunk.first + 1, chunk.count);
            if (i > 0) assert.equal(chunk.first, chunks[i - 1].last + 1, 'contiguous, without overlap');
          });
          assert.deepStrictEqual(await readAll(store, state.sessionId, 0, Number.MAX_SAFE_INTEGER), expected);
          assert.deepEqual(await counters(repository, state.sessionId), {
            status: 'active',
            sampleCount: expected.length,
            lastSeq: expected.length,
          });
        }
        assert.equal(queue.queuedSamples, 0);
        assert.equal(queue.queuedBytes, 0);
      });

      test('an awaited batch pushed while the lane waits for another to age wakes it, and is committed at once', async (t) => {
        const { repository, store } = await openStorage(t, backend);
        const channels = ['ax', 'ay', 'az'];
        const stateOf = async () =>
          new SessionState({ sessionId: await newSession(repository, channels), channels, lastCommittedSeq: -1, windowMaxBytes: 1 << 20 });
        const [aging, awaited] = [await stateOf(), await stateOf()];
        const queue = new WriteQueue({ maxQueuedBytes: 64 * 1024 * 1024 });
        queue.push(aging, batchOf(plainSamples([1, 2, 3]), 3), Date.now());
        aging.highestAcceptedSeq = 3;
        // A minute of age to wait for: start() leaves the one lane waiting for the aging batch, listening for an awaited one.
        const writer = new BatchWriter({
          queue,
          store,
          limits: { maxBatchAgeMs: 60_000, maxBatchSamples: 100_000, maxChunkSamples: 100 },
          log,
          counters: recordingCounters(),
        });
        writer.start();
        t.after(() => writer.drain(5_000));
        queue.push(awaited, batchOf(plainSamples([1, 2]), 3), Date.now(), true);
        awaited.highestAcceptedSeq = 2;
        assert.equal(await awaited.committedWithin(5_000), true, 'committed long before the aging batch came of age');
        assert.equal(aging.committedSeq, 3, 'the aging batch went with it, in the same flush');
      });

      test('with two lanes, commits every session in order, each on its lane, while batches keep coming', async (t) => {
        const { repository, store } = await openStorage(t, backend);
        const channels = ['ax', 'ay', 'az'];
        const queue = new WriteQueue({ maxQueuedBytes: 64 * 1024 * 1024, lanes: 2 });
        // Sessions until each lane has two (ids are random, so the split is not known in advance).
        const states: SessionState[] = [];
        while (queue.lanes.some((lane) => states.filter((state) => queue.laneOf(state) === lane).length < 2)) {
          states.push(
            new SessionState({
              sessionId: await newSession(repository, channels),
              channels,
              lastCommittedSeq: -1,
              windowMaxBytes: 1 << 20,
            }),
          );
        }
        const acks = new Map<SessionState, number[]>(states.map((state) => [state, []]));
        for (const state of states)
          state.producer = {
            awaitsCommit: false,
            sendAck: (seq) => acks.get(state)!.push(seq),
            closeForEnd: () => undefined,
            closeForDelete: () => undefined,
            closeForConflict: () => undefined,
          };
        const writer = new BatchWriter({
          queue,
          store,
          limits: { maxBatchAgeMs: 1, maxBatchSamples: 120, maxChunkSamples: 50 },
          log,
          counters: recordingCounters(),
        });
        writer.start();
        t.after(() => writer.drain(5_000));
        const perSession = 400;
        for (let from = 1; from <= perSession; from += 20) {
          for (const state of states) {
            queue.push(state, batchOf(plainSamples(Array.from({ length: 20 }, (_, i) => from + i)), 3), Date.now());
            state.highestAcceptedSeq = from + 19;
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        await eventually(() => assert.ok(states.every((state) => state.committedSeq === perSession)));
        for (const state of states) {
          const seqs = acks.get(state)!;
          assert.ok(
            seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]),
            `acks in order: ${seqs.join(',')}`,
          );
          assert.equal(seqs.at(-1), perSession);
          assert.deepStrictEqual(
            await readAll(store, state.sessionId, 0, Number.MAX_SAFE_INTEGER),
            plainSamples(Array.from({ length: perSession }, (_, i) => i + 1)),
          );
          assert.deepEqual(await counters(repository, state.sessionId), { status: 'active', sampleCount: perSession, lastSeq: perSession });
        }
        assert.equal(queue.queuedBytes, 0);
        assert.equal(queue.queuedSamples, 0);
      });

      test('drops, never stores, what it queued for a session another process has since taken, and commits the rest', async (t) => {
        const { repository, store } = await openStorage(t, backend);
        const { takenId, keptId, ours, taken, stays } = await twoClaimedSessions(repository);
        const conflicts: string[] = [];
        taken.producer = {
          awaitsCommit: false,
          sendAck: () => undefined,
          closeForEnd: () => undefined,
          closeForDelete: () => undefined,
          closeForConflict: () => conflicts.push(takenId),
        };
        // Another process takes the session (its claim moves the epoch on) before this one commits.
        assert.ok((await repository.claimForProducer(takenId))!.epoch > ours.epoch);

        const queue = new WriteQueue({ maxQueuedBytes: 64 * 1024 * 1024 });
        for (const state of [taken, stays]) {
          const samples = plainSamples([1, 2, 3]);
          state.highestAcceptedSeq = 3;
          queue.push(state, batchOf(samples, 3), Date.now());
        }
        const waiting = taken.whenCommitted();
        const writer = new BatchWriter({
          queue,
          store,
          limits: { maxBatchAgeMs: 1, maxBatchSamples: 100_000, maxChunkSamples: 100 },
          log,
          counters: recordingCounters(),
        });
        writer.start();
        t.after(() => writer.drain(5_000));
        await eventually(() => assert.equal(stays.committedSeq, 3));
        await waiting;
        assert.equal(taken.fenced, true);
        assert.equal(taken.committedSeq, -1);
        assert.deepEqual(conflicts, [takenId]);
        assert.deepEqual(await counters(repository, takenId), { status: 'created', sampleCount: 0, lastSeq: null });
        assert.deepEqual(await readAll(store, takenId, 0, Number.MAX_SAFE_INTEGER), []);
        assert.deepEqual(await counters(repository, keptId), { status: 'active', sampleCount: 3, lastSeq: 3 });
        assert.equal(queue.queuedSamples, 0);
      });

      test('a lost commit is not taken for stored when another process stored a chunk with the same end; the rest is stored, then acked', {
        timeout: 30_000,
      }, async (t) => {
        const { url, repository, store } = await openStorage(t, backend);
        const { takenId, keptId, ours, taken, stays } = await twoClaimedSessions(repository);
        const acks = new Map<SessionState, number[]>([
          [taken, []],
          [stays, []],
        ]);
        for (const state of [taken, stays])
          state.producer = {
            awaitsCommit: false,
            sendAck: (seq) => acks.get(state)!.push(seq),
            closeForEnd: () => undefined,
            closeForDelete: () => undefined,
            closeForConflict: () => undefined,
          };
        // The taken session first: its chunk is the flush's first row, the one the old probe looked up.
        const queue = new WriteQueue({ maxQueuedBytes: 64 * 1024 * 1024 });
        for (const state of [taken, stays]) {
          state.highestAcceptedSeq = 3;
          queue.push(state, batchOf(plainSamples([1, 2, 3]), 3), Date.now());
        }
        const target = new URL(url);
        const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
        const writerPool = createPool(proxy.urlFor(url), 2, log);
        const writer = new BatchWriter({
          queue,
          store: new SampleStore(writerPool),
          limits: { maxBatchAgeMs: 1, maxBatchSamples: 100_000, maxChunkSamples: 100 },
          log,
          counters: recordingCounters(),
        });
        t.after(async () => {
          proxy.restore();
          await writer.drain(5_000);
          await writerPool.end();
          await proxy.close();
        });
        // The connection dies as the server answers the flush's counter update, before its
        // COMMIT: nothing of it is stored, and the writer cannot know that.
        const cut = proxy.cutWhenServerSends(Buffer.from('UPDATE 2\0'));
        writer.start();
        await cut;
        assert.deepEqual(await chunkRows(url, keptId), []);

        // Meanwhile another process takes the session, and the producer resends it the same
        // frame from its last ack: the same chunk end, stored under the new epoch.
        const theirs = await repository.claimForProducer(takenId);
        assert.ok(theirs && theirs.epoch > ours.epoch);
        await store.commitChunks(
          [{ sessionId: takenId, batches: [batchOf(plainSamples([1, 2, 3]), 3)] }],
          [{ sessionId: takenId, sampleCount: 3, lastSeq: 3, epoch: theirs.epoch }],
        );
        proxy.restore();

        await eventually(() => assert.deepEqual(acks.get(stays), [3]), { timeoutMs: 15_000 });
        assert.deepStrictEqual(await readAll(store, keptId, 0, Number.MAX_SAFE_INTEGER), plainSamples([1, 2, 3]), 'acked, so stored');
        assert.deepEqual(await counters(repository, keptId), { status: 'active', sampleCount: 3, lastSeq: 3 });
        assert.equal(taken.fenced, true);
        assert.deepEqual(acks.get(taken), []);
        assert.deepEqual(await chunkRows(url, takenId), [{ first: 1, last: 3, count: 3 }], "the other process's chunk, stored once");
        assert.deepEqual(await counters(repository, takenId), { status: 'active', sampleCount: 3, lastSeq: 3 });
        assert.equal(queue.queuedSamples, 0);
      });
    });
  });
}

/** Two processes' locks on one database, `mine` through a TCP proxy the test can cut; `lost` records what mine reports lost. */
async function locksBehindProxy(t: TestContext, backend: Backend) {
  const { url } = await openStorage(t, backend);
  const target = new URL(url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const lost: string[] = [];
  const mine = new ProducerLocks({ url: proxy.urlFor(url), log, onLost: (id) => lost.push(id) });
  const theirs = new ProducerLocks({ url, log, onLost: () => undefined });
  t.after(async () => {
    proxy.restore();
    await Promise.all([mine.close(), theirs.close()]);
    await proxy.close();
  });
  return { url, proxy, sessionId: randomUUID(), lost, mine, theirs };
}

function recordingCounters() {
  const recorded = {
    committedSamples: 0,
    acks: 0,
    failures: 0,
    committed: (samples: number) => {
      recorded.committedSamples += samples;
    },
    acked: () => void recorded.acks++,
    failed: () => void recorded.failures++,
  };
  return recorded;
}

async function counters(repository: SessionRepository, id: string) {
  const record = await repository.find(id);
  assert.ok(record);
  return { status: record.status, sampleCount: record.sampleCount, lastSeq: record.lastSeq };
}

const embedded = embeddedBackend();
storageSuite('the embedded PostgreSQL', embedded, embedded);
storageSuite('a PostgreSQL server', realServer);
