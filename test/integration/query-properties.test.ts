/**
 * GET /sessions/{id}/data against a reference written from docs/API_CONTRACT.yml (its paging):
 * for any fromSeq, toSeq, limit, fromT, toT, format and Accept, the answer is a 400 problem exactly when a
 * value is not what the contract allows, else 200 with exactly the stored samples the reference
 * picks, in the chosen format. One server and one session, with gaps and seqs at the very top
 * of the range, serve the whole file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type RunningApp, startApp } from '../support/app.ts';
import {
  createSession,
  type DataFormat,
  dataMediaTypes,
  ingestUrl,
  makeSamples,
  parseDataBody,
  RecordingSocket,
  type Sample,
} from '../support/clients.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const maxSeq = Number.MAX_SAFE_INTEGER;
const channels = ['ax', 'ay', 'az'];
const mediaTypes = dataMediaTypes;
type Format = DataFormat;

/** What the session holds, in seq order: gaps, 0, and the top of the seq range. */
const storedSeqs = [0, 1, 2, 3, 7, 8, 20, 21, 22, 23, 24, 40, 99, 100, 101, 1_000, maxSeq - 2, maxSeq - 1, maxSeq];
/** Their t, which jumps back and forth and repeats, as a producer's clock may. */
const storedTs = [5, 3, 3, 10, -2, 0.5, 7, 7, 1e12, 4, -1e12, 6.25, 6.25, 2, 9, 0, -0.5, 8, 1];
const stored: Sample[] = storedSeqs.map((seq, i) => ({ ...makeSamples(seq, 1)[0], t: storedTs[i] }));

let running: RunningApp;
let sessionId: string;
const teardown: Array<() => Promise<void>> = [];

before(async () => {
  running = await startApp({ after: (fn) => void teardown.push(fn as () => Promise<void>) }, { RATE_LIMIT_PER_MINUTE: '0' });
  const session = await createSession(running.baseUrl);
  sessionId = session.sessionId;
  const producer = new RecordingSocket(ingestUrl(running.wsUrl, sessionId, session.ingestToken));
  await producer.opened;
  // Frame by frame, each committed before the next, so that the store holds several chunks
  // and a page can end inside one, at its end, or at the end of the previous one.
  for (let at = 0; at < stored.length; at += 4) {
    const frame = stored.slice(at, at + 4);
    producer.send({ samples: frame });
    await producer.waitForAck(frame.at(-1)!.seq);
  }
  producer.close();
});
after(async () => {
  for (const fn of teardown.reverse()) await fn();
});

/** Written from docs/API_CONTRACT.yml: an integer from `min` to 2^53-1, in decimal digits. */
function integerParam(raw: string | undefined, min: number): number | undefined | 'bad' {
  if (raw === undefined) return undefined;
  if (!/^[0-9]+$/.test(raw)) return 'bad';
  const value = Number(raw);
  return value >= min && value <= maxSeq ? value : 'bad';
}

/** Written from docs/API_CONTRACT.yml: a finite number in decimal, with an optional sign, fraction and exponent. */
function numberParam(raw: string | undefined): number | undefined | 'bad' {
  if (raw === undefined) return undefined;
  if (!/^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(raw)) return 'bad';
  return Number.isFinite(Number(raw)) ? Number(raw) : 'bad';
}

interface Query {
  fromSeq?: string;
  toSeq?: string;
  limit?: string;
  fromT?: string;
  toT?: string;
  format?: string;
  accept?: string;
}

type Expected = { status: 400 } | { status: 200; format: Format | null; samples: Sample[]; nextFromSeq: number | null };

function reference(query: Query): Expected {
  const fromSeq = integerParam(query.fromSeq, 0);
  const toSeq = integerParam(query.toSeq, 0);
  const limit = integerParam(query.limit, 1);
  const fromT = numberParam(query.fromT);
  const toT = numberParam(query.toT);
  const formatOk = query.format === undefined || query.format in mediaTypes;
  if (fromSeq === 'bad' || toSeq === 'bad' || limit === 'bad' || fromT === 'bad' || toT === 'bad' || !formatOk) return { status: 400 };
  if (fromT !== undefined && toT !== undefined && fromT > toT) return { status: 400 };
  const inRange = stored.filter(
    (sample) =>
      sample.seq >= (fromSeq ?? 0) &&
      sample.seq <= (toSeq ?? maxSeq) &&
      sample.t >= (fromT ?? Number.NEGATIVE_INFINITY) &&
      sample.t < (toT ?? Number.POSITIVE_INFINITY),
  );
  const samples = limit === undefined ? inRange : inRange.slice(0, limit);
  const nextFromSeq = samples.length < inRange.length ? samples.at(-1)!.seq + 1 : null;
  // ?format= wins; an Accept of exactly one media type chooses it; for any other Accept
  // the contract leaves the choice open among the three.
  const accepted = Object.entries(mediaTypes).find(([, type]) => type === query.accept)?.[0];
  return { status: 200, format: (query.format ?? accepted ?? null) as Format | null, samples, nextFromSeq };
}

const nearStoredSeq = fc
  .tuple(fc.constantFrom(...storedSeqs), fc.integer({ min: -2, max: 2 }))
  .map(([seq, d]) => String(Math.max(0, seq + d)));
/** Spellings a client might send: canonical, at the range's edges, near misses, junk. */
const integerText = fc.oneof(
  { weight: 5, arbitrary: nearStoredSeq },
  { weight: 2, arbitrary: fc.nat({ max: 200 }).map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n }).map(String) },
  {
    weight: 2,
    // biome-ignore format: a packed list of cases reads better than one a line
    arbitrary: fc.constantFrom(
      '9007199254740991', '9007199254740992', '9007199254740990.5', '00000000000000000000007', '-0', '-1', '0x10', '1e3', '1E1', ' 5',
      '5 ', ' ', '+5', '5.0', '5.5', '', 'Infinity', 'NaN', 'true', 'null', '[]', '\u0000', '٣',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);
/** Times: the stored ones and just beside them, other spellings of a number, and junk. */
const numberText = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...storedTs), fc.constantFrom(-0.5, 0, 0, 0.25)).map(([t, d]) => String(t + d)) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  {
    weight: 2,
    // biome-ignore format: a packed list of cases reads better than one a line
    arbitrary: fc.constantFrom(
      '5.0', '5e0', '+5', '-0', '0.5e1', '1e999', '-1e999', 'Infinity', '-Infinity', 'NaN', ' 5', '5 ', '0x5', '.5', '5.', '', '1e',
      '1_000', '٣', '1,5',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);
const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 3 });
const query = fc.record({
  fromSeq: maybe(integerText),
  toSeq: maybe(integerText),
  limit: maybe(integerText),
  fromT: maybe(numberText),
  toT: maybe(numberText),
  format: maybe(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('json', 'ndjson', 'csv') },
      fc.constantFrom('JSON', 'xml', '', 'csv '),
      fc.string({ maxLength: 6 }),
    ),
  ),
  accept: maybe(
    fc.oneof(
      fc.constantFrom(
        ...Object.values(mediaTypes),
        '*/*',
        'text/csv;q=0.5, application/json',
        'application/x-ndjson;q=0',
        'TEXT/CSV',
        'text/*',
        '',
      ),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
    ),
  ),
});

describe('GET /api/v1/sessions/{id}/data, any query', () => {
  test('answers as the reference: 400 problem+json for a value outside the contract, else exactly the page it picks', async () => {
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const search = new URLSearchParams();
        for (const name of ['fromSeq', 'toSeq', 'limit', 'fromT', 'toT', 'format'] as const)
          if (q[name] !== undefined) search.set(name, q[name]);
        const response = await fetch(`${running.baseUrl}/api/v1/sessions/${sessionId}/data?${search}`, {
          headers: q.accept === undefined ? {} : { accept: q.accept },
        });
        const body = await response.text();
        const expected = reference(q);
        assert.equal(response.status, expected.status, `${body} for ${JSON.stringify(q)}`);
        const contentType = response.headers.get('content-type') ?? '';
        if (expected.status === 400) {
          assert.match(contentType, /^application\/problem\+json/);
          assert.equal(JSON.parse(body).code, 'invalid_request');
          return;
        }
        const format = (Object.keys(mediaTypes) as Format[]).find((name) => contentType.startsWith(mediaTypes[name]));
        assert.ok(format !== undefined, `content type ${contentType}`);
        if (expected.format !== null) assert.equal(format, expected.format);
        const answer = parseDataBody(format, body, channels);
        assert.deepStrictEqual(answer.samples, expected.samples);
        if (format === 'json') assert.equal(answer.nextFromSeq, expected.nextFromSeq);
        assert.equal(response.headers.get('wavehouse-next-from-seq'), expected.nextFromSeq === null ? null : String(expected.nextFromSeq));
      }),
      fuzzParameters(400),
    );
  });

  test('answers any query string, even repeated or unknown names, with 200 or a 4xx problem', async () => {
    const pair = fc.tuple(
      fc.oneof(
        fc.constantFrom('fromSeq', 'toSeq', 'limit', 'fromT', 'toT', 'format', '__proto__', 'constructor', 'fromSeq[]'),
        fc.string({ maxLength: 6 }),
      ),
      integerText,
    );
    await fc.assert(
      fc.asyncProperty(fc.array(pair, { maxLength: 4 }), async (pairs) => {
        const response = await fetch(`${running.baseUrl}/api/v1/sessions/${sessionId}/data?${new URLSearchParams(pairs)}`);
        const body = await response.text();
        if (response.status === 200) return;
        assert.ok(response.status >= 400 && response.status < 500, `${response.status} for ${JSON.stringify(pairs)}: ${body}`);
        assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/, body);
      }),
      fuzzParameters(200),
    );
  });
});
