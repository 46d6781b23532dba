/**
 * GET /sessions/{id}/data as Parquet over HTTP (DESIGN "Lifecycle"), each body streamed to a
 * file and read back by DuckDB and by polars (test/support/parquet-reader.ts), implementations
 * independent of the server's writer, with every value compared bit for bit against what was
 * stored. (pandas reads Parquet through pyarrow or fastparquet, which this box cannot install.)
 * The 10 M-sample memory bound is measured in bench/sections/export.ts, not asserted here.
 */
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type TestContext, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, RecordingSocket } from '../support/clients.ts';
import { expectedSample, exportChannels, storeSamplesDirectly } from '../support/export-streams.ts';
import { type ParquetContents, readParquetFile, readParquetWithPolars, scratchFolder } from '../support/parquet-reader.ts';

const parquetType = 'application/vnd.apache.parquet';

/** The body of a 200 answer, streamed to a file (never held whole) and read back. */
async function readBody(response: Response, folder: string): Promise<ParquetContents> {
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal(response.headers.get('content-type'), parquetType);
  const path = join(folder, `${Math.random().toString(36).slice(2)}.parquet`);
  await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(path));
  const contents = await readParquetFile(path);
  const polars = readParquetWithPolars(path);
  assert.deepEqual(
    polars.names.map((name, c) => `${name} ${polars.types[c]}`),
    contents.columns.map(({ name, type }) => `${name} ${type === 'INT64' ? 'Int64' : 'Float64'}`),
  );
  // Strict deep equality compares numbers as Object.is does: -0, NaN and every bit of a double.
  assert.deepEqual(polars.values, contents.values, 'polars reads every value as DuckDB does');
  return contents;
}

/** The columns are seq, t and the export channels, and the rows are exactly `expectedSample` of `seqs`, in order. */
function assertSamples(contents: ParquetContents, seqs: readonly number[]): void {
  assert.deepEqual(
    contents.columns.map(({ name, type, repetition }) => `${name} ${type} ${repetition}`),
    ['seq INT64 REQUIRED', 't DOUBLE REQUIRED', ...exportChannels.map((name) => `${name} DOUBLE REQUIRED`)],
  );
  const [seqColumn, ...columns] = contents.values;
  assert.equal(seqColumn.length, seqs.length);
  seqs.forEach((seq, i) => {
    if (seqColumn[i] !== BigInt(seq)) assert.fail(`row ${i}: seq ${seqColumn[i]}, expected ${seq}`);
    const expected = expectedSample(seq);
    ['t', ...exportChannels].forEach((name, c) => {
      if (!Object.is(columns[c][i], expected[name])) assert.fail(`seq ${seq}: ${name} is ${columns[c][i]}, expected ${expected[name]}`);
    });
  });
}

function seqRange(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const stored = 300_000;

test('a stored session exports as Parquet, whole and in ranges, every value exact', async (t: TestContext) => {
  const { baseUrl, databaseUrl } = await startApp(t);
  const folder = await scratchFolder(t);
  const { sessionId } = await createSession(baseUrl);
  await storeSamplesDirectly(databaseUrl, sessionId, 1, stored);
  const data = (query: string, headers: Record<string, string> = {}) =>
    fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data${query}`, { headers });

  await t.test('the whole session, in row groups of 122,880 rows', async () => {
    const contents = await readBody(await data('?format=parquet'), folder);
    assert.equal(contents.rowGroups, 3);
    assertSamples(contents, seqRange(1, stored));
  });

  await t.test('Accept chooses Parquet; ?format= still wins over it', async () => {
    assertSamples(await readBody(await data('?toSeq=10', { accept: parquetType }), folder), seqRange(1, 10));
    const csv = await data('?format=csv&toSeq=1', { accept: parquetType });
    assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.equal((await csv.text()).split('\n')[0], `seq,t,${exportChannels.join(',')}`);
  });

  await t.test('fromSeq and toSeq across a row group boundary, fromT and toT, and a page with limit', async () => {
    assertSamples(await readBody(await data('?format=parquet&fromSeq=122000&toSeq=125000'), folder), seqRange(122_000, 125_000));
    // t is 1.7e12 + seq / 2: [t of 100,000, t of 100,010) holds seqs 100,000-100,009.
    const times = `fromT=${expectedSample(100_000).t}&toT=${expectedSample(100_010).t}`;
    assertSamples(await readBody(await data(`?format=parquet&${times}`), folder), seqRange(100_000, 100_009));
    const page = await data('?format=parquet&fromSeq=5&limit=1000');
    assert.equal(page.headers.get('wavehouse-next-from-seq'), '1005');
    assertSamples(await readBody(page, folder), seqRange(5, 1_004));
    assertSamples(await readBody(await data('?format=parquet&fromSeq=400000'), folder), []);
  });

  await t.test('an unknown format is still a 400 problem', async () => {
    for (const format of ['xml', 'PARQUET', 'parquet2', '']) {
      const response = await data(`?format=${format}`);
      assert.equal(response.status, 400, format);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal((await response.json()).type.endsWith('invalid_request'), true, format);
    }
  });
});

test('seqs up to 2^53-1 export exactly; an empty session exports its columns and no rows', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t);
  const folder = await scratchFolder(t);
  const top = await createSession(baseUrl);
  await storeSamplesDirectly(databaseUrl, top.sessionId, Number.MAX_SAFE_INTEGER - 4, Number.MAX_SAFE_INTEGER);
  const topData = await fetch(`${baseUrl}/api/v1/sessions/${top.sessionId}/data?format=parquet`);
  assertSamples(await readBody(topData, folder), seqRange(Number.MAX_SAFE_INTEGER - 4, Number.MAX_SAFE_INTEGER));

  const empty = await createSession(baseUrl);
  const contents = await readBody(await fetch(`${baseUrl}/api/v1/sessions/${empty.sessionId}/data?format=parquet`), folder);
  assert.equal(contents.rowGroups, 0);
  assertSamples(contents, []);
});

test('a nullable session exports OPTIONAL channels with its nulls, from samples sent over the socket', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t);
  const folder = await scratchFolder(t);
  const session = await createSession(baseUrl, { channels: ['a', 'b'], nullable: true });
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  t.after(() => producer.close());
  await producer.opened;
  producer.send({
    samples: [
      { seq: 1, t: 10, a: null, b: 1.5 },
      { seq: 2, t: 11, a: -0.25, b: null },
      { seq: 3, t: 12, a: null, b: null },
    ],
  });
  await producer.waitForAck(3);
  const contents = await readBody(await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=parquet`), folder);
  assert.deepEqual(
    contents.columns.map(({ name, repetition }) => `${name} ${repetition}`),
    ['seq REQUIRED', 't REQUIRED', 'a OPTIONAL', 'b OPTIONAL'],
  );
  assert.deepEqual(contents.values, [
    [1n, 2n, 3n],
    [10, 11, 12],
    [null, -0.25, null],
    [1.5, null, null],
  ]);
});
