/**
 * Export of a session of 1,000,000 samples (docs/API_CONTRACT.yml: GET /sessions/{id}/data is
 * streamed, and a session may hold millions). The session is filled mostly through the storage
 * layer, which is how the writer stores samples, to keep the test fast; its first 1,000 samples
 * go through the real ingest socket, so the export also shows that both paths store the same
 * thing.
 *
 * Every body is read as a stream and checked sample by sample against values recomputed from
 * the seq; nothing here holds a whole body. Export speed is reported, not asserted: that
 * belongs to the benchmarks.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, getData, ingestUrl, RecordingSocket } from '../support/clients.ts';
import {
  expectedSamples,
  exportChannels,
  JsonExportReader,
  LineReader,
  MB,
  type MemoryPeak,
  SampleChecker,
  samplesFrameText,
  startMemorySampler,
  storeSamplesDirectly,
} from '../support/export-streams.ts';

const totalSamples = 1_000_000;
const viaSocket = 1_000;
/**
 * Well below any 1,000,000-sample body (70-100 MB, asserted below), so an export that builds
 * its body, or an object per sample, before sending fails it; a streaming one holds a few
 * pages of chunks and text (sample-store.ts reads 16 chunks of 2,000 samples at a time).
 */
const maxRetainedGrowthBytes = 40 * MB;
const minBodyBytes = 60 * MB;

const mediaTypes = { json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv' } as const;

function jsonHead(sessionId: string): string {
  return `{"sessionId":"${sessionId}","channels":${JSON.stringify(exportChannels)},"samples":[`;
}

function jsonTail(nextFromSeq: number | null): string {
  return `],"nextFromSeq":${nextFromSeq}}`;
}

function parseCsvLine(line: string): Record<string, number> {
  const fields = line.split(',');
  const names = ['seq', 't', ...exportChannels];
  if (fields.length !== names.length) {
    throw new Error(`CSV line ${JSON.stringify(line)} has ${fields.length} fields; expected ${names.length}`);
  }
  const sample: Record<string, number> = {};
  names.forEach((name, i) => {
    // Number('') is 0: an empty field must not pass for a zero.
    if (fields[i] === '') throw new Error(`CSV line ${JSON.stringify(line)} has an empty ${name}`);
    sample[name] = Number(fields[i]);
  });
  return sample;
}

/** Reads one /data response to its end, holding each sample to the checker's next expected one; returns the body's size. */
async function readExport(
  response: Response,
  format: keyof typeof mediaTypes,
  sessionId: string,
  checker: SampleChecker,
  nextFromSeq: number | null,
) {
  assert.equal(response.status, 200);
  assert.ok(response.headers.get('content-type')?.startsWith(mediaTypes[format]), `content-type ${response.headers.get('content-type')}`);
  assert.ok(response.body);
  if (format === 'json') {
    const reader = new JsonExportReader(response.body, jsonHead(sessionId), jsonTail(nextFromSeq));
    for await (const samples of reader.samples()) for (const sample of samples) checker.check(sample);
    return { bytes: reader.meter.bytes };
  }
  const reader = new LineReader(response.body);
  let header = format === 'csv';
  for await (const lines of reader.lines()) {
    for (const line of lines) {
      if (header) {
        assert.equal(line, ['seq', 't', ...exportChannels].join(','));
        header = false;
        continue;
      }
      checker.check(format === 'csv' ? parseCsvLine(line) : (JSON.parse(line) as Record<string, number>));
    }
  }
  assert.equal(header, false, 'the CSV header is missing');
  assert.equal(reader.unterminated, null, 'every line ends with \\n');
  return { bytes: reader.meter.bytes };
}

async function exportsWholeSessionWithMemoryFlat(t: TestContext, baseUrl: string, sessionId: string, format: keyof typeof mediaTypes) {
  const checker = new SampleChecker(1);
  const memory = startMemorySampler({ intervalMs: 50, collectEvery: 5 });
  const startedMs = performance.now();
  let bytes: number;
  let peak: MemoryPeak;
  try {
    const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data?format=${format}`);
    assert.equal(response.headers.get('wavehouse-next-from-seq'), null);
    ({ bytes } = await readExport(response, format, sessionId, checker, null));
  } finally {
    peak = memory.stop();
  }
  const seconds = (performance.now() - startedMs) / 1000;
  t.diagnostic(
    `${format}: ${(bytes / MB).toFixed(1)} MB in ${seconds.toFixed(2)} s, ${Math.round(checker.count / seconds)} samples/s; ` +
      `peak growth over the baseline: reachable heapUsed+arrayBuffers ${(peak.retainedBytes / MB).toFixed(1)} MB ` +
      `(${peak.collectedSamples} samples after a full GC), with garbage ${(peak.heapBytes / MB).toFixed(1)} MB, ` +
      `rss ${(peak.rssBytes / MB).toFixed(1)} MB (${peak.samples} samples)`,
  );
  assert.equal(checker.count, totalSamples);
  assert.ok(bytes > minBodyBytes, `the body is ${bytes} bytes: too small for the memory bound to tell streaming from buffering`);
  assert.ok(peak.collectedSamples >= 3, `reachable memory was measured only ${peak.collectedSamples} times`);
  assert.ok(
    peak.retainedBytes < maxRetainedGrowthBytes,
    `memory grew by ${(peak.retainedBytes / MB).toFixed(1)} MB while exporting a ${(bytes / MB).toFixed(1)} MB body`,
  );
}

test('a session of 1,000,000 samples exports completely and exactly, in every format, with memory flat', async (t) => {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t);
  const session = await createSession(baseUrl);
  const { sessionId } = session;

  const producer = new RecordingSocket(ingestUrl(wsUrl, sessionId, session.ingestToken));
  await producer.opened;
  const first = expectedSamples(1, viaSocket);
  producer.send(samplesFrameText(first.slice(0, viaSocket / 2)));
  producer.send(samplesFrameText(first.slice(viaSocket / 2)));
  await producer.waitForAck(viaSocket);
  producer.close();
  await producer.waitForClose();

  const fillStartedMs = performance.now();
  await storeSamplesDirectly(databaseUrl, sessionId, viaSocket + 1, totalSamples);
  t.diagnostic(`stored ${totalSamples - viaSocket} samples directly in ${((performance.now() - fillStartedMs) / 1000).toFixed(2)} s`);

  await t.test('the session counts every stored sample', async () => {
    const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`);
    const record = (await response.json()) as Record<string, unknown>;
    assert.equal(record.sampleCount, totalSamples);
    assert.equal(record.lastSeq, totalSamples);
    assert.equal(record.status, 'active');
  });

  for (const format of ['json', 'ndjson', 'csv'] as const) {
    await t.test(`streams all of it as ${format}, each sample in seq order with its exact values, memory flat`, async (t) => {
      await exportsWholeSessionWithMemoryFlat(t, baseUrl, sessionId, format);
    });
  }

  await t.test('pages of 250,000 follow nextFromSeq and Wavehouse-Next-From-Seq to the end in four pages', async () => {
    const checker = new SampleChecker(1);
    const seen: Array<number | null> = [];
    let fromSeq: number | null = null;
    for (let page = 1; page <= 5 && (page === 1 || fromSeq !== null); page++) {
      const expectedNext: number | null = page < 4 ? page * 250_000 + 1 : null;
      const query: string = fromSeq === null ? '?limit=250000' : `?limit=250000&fromSeq=${fromSeq}`;
      const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data${query}`);
      const header = response.headers.get('wavehouse-next-from-seq');
      assert.equal(header, expectedNext === null ? null : String(expectedNext), `header of page ${page}`);
      // The tail check in readExport holds the body's nextFromSeq to the same value.
      await readExport(response, 'json', sessionId, checker, expectedNext);
      assert.equal(checker.count, page * 250_000);
      seen.push(expectedNext);
      fromSeq = expectedNext;
    }
    assert.deepEqual(seen, [250_001, 500_001, 750_001, null]);
  });

  await t.test('NDJSON and CSV pages carry Wavehouse-Next-From-Seq too, and the last page none', async () => {
    // Small pages: the full 250,000-sample pages are read as JSON above; the header is what differs here.
    for (const format of ['ndjson', 'csv'] as const) {
      const middle = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data?format=${format}&fromSeq=250001&limit=1000`);
      assert.equal(middle.headers.get('wavehouse-next-from-seq'), '251001', format);
      const middleChecker = new SampleChecker(250_001);
      await readExport(middle, format, sessionId, middleChecker, null);
      assert.equal(middleChecker.count, 1_000);

      const last = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data?format=${format}&fromSeq=999001&limit=1000`);
      assert.equal(last.headers.get('wavehouse-next-from-seq'), null, format);
      const lastChecker = new SampleChecker(999_001);
      await readExport(last, format, sessionId, lastChecker, null);
      assert.equal(lastChecker.count, 1_000);
    }
  });

  await t.test('a page that ends exactly where a stored chunk ends still says where the next one starts', async () => {
    // Seqs 1,001-3,000 and 3,001-5,000 are each one stored chunk (written directly, 2,000 a
    // chunk): a limit of 2,000 from 1,001 ends on a chunk boundary with more samples after it.
    const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data?fromSeq=1001&limit=2000`);
    assert.equal(response.headers.get('wavehouse-next-from-seq'), '3001');
    const checker = new SampleChecker(1_001);
    await readExport(response, 'json', sessionId, checker, 3_001);
    assert.equal(checker.count, 2_000);
  });

  await t.test('fromSeq=500000&toSeq=500009 returns exactly those 10 samples', async () => {
    const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/data?fromSeq=500000&toSeq=500009`);
    assert.equal(response.headers.get('wavehouse-next-from-seq'), null);
    const body = (await response.json()) as { samples: Array<Record<string, number>>; nextFromSeq: number | null };
    assert.equal(body.samples.length, 10);
    assert.equal(body.nextFromSeq, null);
    const checker = new SampleChecker(500_000);
    for (const sample of body.samples) checker.check(sample);
    // More samples exist past toSeq, but not in the range asked for: a full page is still the last.
    assert.equal((await getData(baseUrl, sessionId, '?fromSeq=500000&toSeq=500009&limit=10')).nextFromSeq, null);
  });
});
