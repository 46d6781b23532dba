/**
 * docs/protocol.md, samples (exact values): t and every channel value come back as the very
 * float64 they were sent as, through ingest, the live socket and every export format, each
 * number written in the shortest form that parses back to it (and -0 as -0 where the format can
 * say so).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, liveUrl, RecordingSocket, type Sample } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

const maxSeq = Number.MAX_SAFE_INTEGER;

/** Samples chosen to break any float32 step, fixed-precision printing, or sign-dropping on the way. */
const hardSamples: Sample[] = [
  { seq: 0, t: 1732345678901.25, ax: 0.1, ay: 0.2 + 0.1, az: -0 },
  { seq: 1, t: 0.001, ax: 1e-300, ay: 5e-324, az: -5e-324 },
  // biome-ignore lint/correctness/noPrecisionLoss: written with more digits than a double holds, on purpose
  { seq: 2, t: -0, ax: 1.7976931348623157e308, ay: -1.7976931348623157e308, az: 123456789.123456789 },
  { seq: 3, t: 1732345678901.2502, ax: 2.2250738585072014e-308, ay: 2.225073858507201e-308, az: 0.2 },
  { seq: 17, t: 4503599627370495.5, ax: 1 / 3, ay: -2 / 3, az: 100 },
  { seq: maxSeq - 2, t: 1e-7, ax: 0, ay: 1e21, az: -1e-7 },
  // biome-ignore lint/correctness/noPrecisionLoss: 2^53 + 1, which no double holds, on purpose
  { seq: maxSeq - 1, t: 1732345678901.25, ax: Math.PI, ay: -Math.E, az: 9007199254740993 },
  { seq: maxSeq, t: 1e21 + 65536, ax: 0.30000000000000004, ay: -0.1, az: 5e-324 },
];

/** The shortest text that parses back to the same float64, keeping the sign of -0. */
function shortest(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

/** Samples as JSON text written by hand, since JSON.stringify writes -0 as 0. */
function samplesText(samples: Sample[]): string {
  return (
    '[' +
    samples
      .map(
        (sample) =>
          '{' +
          Object.entries(sample)
            .map(([key, value]) => `"${key}":${shortest(value)}`)
            .join(',') +
          '}',
      )
      .join(',') +
    ']'
  );
}

function assertExactly(actual: Sample[], expected: Sample[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: sample count`);
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(Object.keys(actual[i]).sort(), Object.keys(expected[i]).sort(), `${what}: keys of sample ${i}`);
    for (const [key, value] of Object.entries(expected[i])) {
      assert.ok(
        Object.is(actual[i][key], value),
        `${what}: sample ${i} ${key} came back as ${shortest(actual[i][key])}, sent ${shortest(value)}`,
      );
    }
  }
}

/** Every number token after `"key":` in JSON text is written in its shortest form. */
function assertShortestJsonNumbers(text: string, what: string): void {
  const tokens = [...text.matchAll(/"[A-Za-z0-9_.-]+":(-?[0-9][0-9.eE+-]*)/g)].map((match) => match[1]);
  assert.ok(tokens.length > 0, `${what}: no numbers found`);
  for (const token of tokens) assert.equal(token, shortest(Number(token)), `${what}: ${token} is not the shortest form`);
}

/** The texts each value must appear as, and the longer renderings a lossy writer would produce. */
function assertNamedForms(text: string, what: string): void {
  for (const form of [
    '0.1',
    '0.30000000000000004',
    '1e-300',
    '5e-324',
    '-5e-324',
    '1.7976931348623157e+308',
    '123456789.12345679',
    '1732345678901.25',
    '0.001',
    '-0',
    String(maxSeq),
  ]) {
    assert.ok(text.includes(form), `${what}: ${form} is missing`);
  }
  for (const lossy of ['0.10000000000000001', '0.1000000', '4.9406564584124654e-324', '123456789.123456789', '1.0e', 'E+']) {
    assert.ok(!text.includes(lossy), `${what}: contains ${lossy}`);
  }
}

function parseCsv(text: string): { header: string; samples: Sample[]; cells: string[] } {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'CSV ends with a newline');
  const [header, ...rows] = lines;
  const names = header.split(',');
  const cells = rows.flatMap((row) => row.split(','));
  return {
    header,
    cells,
    samples: rows.map((row) => Object.fromEntries(row.split(',').map((cell, i) => [names[i], Number(cell)])) as Sample),
  };
}

describe('exact values', () => {
  test('t and every value round-trip bit for bit through ingest, live, history and every export format', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    const liveTexts: string[] = [];
    viewer.socket.on('message', (data, isBinary) => {
      if (!isBinary) liveTexts.push(data.toString());
    });
    await viewer.opened;
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;

    producer.send(`{"samples":${samplesText(hardSamples.slice(0, 4))}}`);
    producer.send(`{"type":"samples_batch","payload":{"samples":${samplesText(hardSamples.slice(4))}}}`);
    await producer.waitForAck(maxSeq);
    assert.deepEqual(producer.ofType('error'), []);

    await eventually(() => assert.equal(viewer.samples.length, hardSamples.length));
    assertExactly(viewer.samples, hardSamples, 'live');
    const live = liveTexts.join('\n');
    assertShortestJsonNumbers(live, 'live');
    assertNamedForms(live, 'live');

    // History comes from the stored chunks rather than the frames the producer's batch became.
    const history = new RecordingSocket(liveUrl(wsUrl, session.sessionId, 0));
    await eventually(() => assert.equal(history.samples.length, hardSamples.length));
    assertExactly(history.samples, hardSamples, 'history');

    const dataUrl = `${baseUrl}/api/v1/sessions/${session.sessionId}/data`;
    const json = await (await fetch(`${dataUrl}?format=json`)).text();
    assertExactly(JSON.parse(json).samples, hardSamples, 'JSON');
    assertShortestJsonNumbers(json, 'JSON');
    assertNamedForms(json, 'JSON');

    const ndjson = await (await fetch(`${dataUrl}?format=ndjson`)).text();
    assert.ok(ndjson.endsWith('\n'));
    assertExactly(
      ndjson
        .slice(0, -1)
        .split('\n')
        .map((line) => JSON.parse(line) as Sample),
      hardSamples,
      'NDJSON',
    );
    assertShortestJsonNumbers(ndjson, 'NDJSON');
    assertNamedForms(ndjson, 'NDJSON');

    const csv = await (await fetch(`${dataUrl}?format=csv`)).text();
    const parsed = parseCsv(csv);
    assert.equal(parsed.header, 'seq,t,ax,ay,az');
    assertExactly(parsed.samples, hardSamples, 'CSV');
    for (const cell of parsed.cells) assert.equal(cell, shortest(Number(cell)), `CSV: ${cell} is not the shortest form`);
    assertNamedForms(csv, 'CSV');

    const page = await fetch(`${dataUrl}?fromSeq=${maxSeq - 1}&limit=1`);
    assert.equal(page.headers.get('wavehouse-next-from-seq'), String(maxSeq));
    assert.equal(((await page.json()) as { nextFromSeq: number }).nextFromSeq, maxSeq);

    const stored = (await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json()) as {
      sampleCount: number;
      lastSeq: number;
    };
    assert.equal(stored.sampleCount, hardSamples.length);
    assert.equal(stored.lastSeq, maxSeq);

    producer.close();
    viewer.close();
    history.close();
  });

  test('channel names of every allowed character come back unchanged as keys and CSV columns', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const channels = ['Acc.X', 'acc_y', 'acc-z', '0'];
    const session = await createSession(baseUrl, { channels });
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    const sent: Sample[] = [
      { seq: 5, t: 0.1, 'Acc.X': -0, acc_y: 5e-324, 'acc-z': 0.30000000000000004, '0': 1e-300 },
      { seq: 6, t: 0.2, 'Acc.X': 1, acc_y: -1, 'acc-z': 2, '0': -0 },
    ];
    producer.send(`{"samples":${samplesText(sent)}}`);
    await producer.waitForAck(6);
    const dataUrl = `${baseUrl}/api/v1/sessions/${session.sessionId}/data`;
    const json = JSON.parse(await (await fetch(dataUrl)).text());
    assert.deepEqual(json.channels, channels);
    assertExactly(json.samples, sent, 'JSON');
    const csv = parseCsv(await (await fetch(`${dataUrl}?format=csv`)).text());
    assert.equal(csv.header, 'seq,t,Acc.X,acc_y,acc-z,0');
    assertExactly(csv.samples, sent, 'CSV');
    producer.close();
  });
});
