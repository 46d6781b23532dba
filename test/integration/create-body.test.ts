/**
 * The session create body is the one JSON body anyone may send: whatever its shape, the
 * answer is 201 or a catalogued 4xx problem, never a 500. One server serves the whole file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { problems } from '../../src/contract/errors.ts';
import { maxMetadataDepth } from '../../src/contract/schemas.ts';
import { type RunningApp, startApp } from '../support/app.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const maxMetadataBytes = 4096;

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

let running: RunningApp;
const teardown: Array<() => Promise<void>> = [];

before(async () => {
  // The rate limits would turn a few hundred creates a minute into 429s.
  running = await startApp(
    { after: (fn) => void teardown.push(fn as () => Promise<void>) },
    { RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_CREATE_PER_MINUTE: '0' },
  );
});
after(async () => {
  for (const fn of teardown.reverse()) await fn();
});

async function create(body: string | Uint8Array<ArrayBuffer>, contentType: string | null = 'application/json'): Promise<Answer> {
  const response = await fetch(`${running.baseUrl}/api/v1/sessions`, {
    method: 'POST',
    headers: contentType === null ? {} : { 'content-type': contentType },
    body,
  });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** A problem+json answer with a catalogued code of this status, and the code. */
function problemCode(answer: Answer): string {
  assert.match(answer.contentType, /^application\/problem\+json/, `${answer.status}: ${answer.text}`);
  const { code, status } = JSON.parse(answer.text);
  assert.ok(code in problems, `uncatalogued code ${code}`);
  assert.equal(status, answer.status);
  assert.equal(problems[code as keyof typeof problems].status, answer.status);
  return code;
}

/** `levels` arrays or objects, one inside the next, around `core`. */
function nested(levels: number, kind: 'array' | 'object', core = '1'): string {
  return kind === 'array' ? '['.repeat(levels) + core + ']'.repeat(levels) : '{"a":'.repeat(levels) + core + '}'.repeat(levels);
}

async function assertStoredAsSent(answer: Answer, expected: unknown): Promise<void> {
  assert.equal(answer.status, 201, answer.text);
  const created = JSON.parse(answer.text);
  assert.deepStrictEqual(created.metadata, expected);
  const fetched = await (await fetch(`${running.baseUrl}/api/v1/sessions/${created.sessionId}`)).json();
  assert.deepStrictEqual(fetched.metadata, expected);
}

describe('POST /api/v1/sessions, hostile bodies', () => {
  test(`stores metadata ${maxMetadataDepth} levels deep and refuses one more with 400, even 30,000 levels in 60 KB`, async () => {
    for (const kind of ['array', 'object'] as const) {
      // One level past the limit, and as many as fit in 60 KB.
      for (const levels of [maxMetadataDepth, kind === 'array' ? 30_000 : 10_000]) {
        const answer = await create(`{"metadata":{"a":${nested(levels, kind)}}}`);
        assert.equal(problemCode(answer), 'invalid_request');
        assert.match(JSON.parse(answer.text).detail, new RegExp(`metadata nests deeper than ${maxMetadataDepth} levels`));
      }
      const deepest = `{"a":${nested(maxMetadataDepth - 1, kind)}}`;
      await assertStoredAsSent(await create(`{"metadata":${deepest}}`), JSON.parse(deepest));
    }
  });

  test('refuses a metadata number beyond the float64 range with 400, rather than storing null', async () => {
    for (const number of ['1e400', '-1e400', `1${'0'.repeat(400)}`]) {
      const answer = await create(`{"metadata":{"a":[${number}]}}`);
      assert.equal(problemCode(answer), 'invalid_request');
      assert.match(JSON.parse(answer.text).detail, /float64 range/);
    }
  });

  // Metadata is stored as the JSON it was sent as (numbers as the float64 they parse to) when
  // it is at most 32 levels, 4 KiB and free of what jsonb refuses; each excess has its answer.
  test('answers any metadata as a reference model of the limits says: stored as sent, or the right 400', async () => {
    await fc.assert(
      fc.asyncProperty(metadataText, async (text) => {
        const answer = await create(`{"metadata":${text}}`);
        const expected = referenceOutcome(JSON.parse(text));
        if (expected.stored) return assertStoredAsSent(answer, expected.stored);
        assert.equal(problemCode(answer), expected.code, `${answer.text} for ${text.slice(0, 300)}`);
        if (expected.detail) assert.match(JSON.parse(answer.text).detail, expected.detail);
      }),
      fuzzParameters(150),
    );
  });

  test('answers any body, of any content type, with 201 or a catalogued 4xx problem', async () => {
    const contentType = fc.oneof(
      fc.constantFrom(
        null,
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/json; charset=utf-16',
        'application/problem+json',
        '',
      ),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(anyBody, contentType, async (body, type) => {
        const answer = await create(body, type);
        if (answer.status === 201) return;
        assert.ok(
          answer.status >= 400 && answer.status < 500,
          `${answer.status} for ${type} ${String(body).slice(0, 300)}: ${answer.text}`,
        );
        problemCode(answer);
      }),
      fuzzParameters(250),
    );
    assert.equal((await fetch(`${running.baseUrl}/health`)).status, 200);
  });
});

/** Characters jsonb refuses, and others that stress an encoder, among ordinary ones. */
const hostileUnit = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d\ude00', '"', '\\', '\u2028', '\u0001', '€') },
);
const key = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'a', '0'),
  fc.string({ unit: hostileUnit, maxLength: 6 }),
);
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom('-0', '1e400', '-1e400', '1e-400', '5e-324', '123456789012345678901234567890', '1E+2', '0.1'),
);
const scalarText = fc.oneof(
  fc.constantFrom('null', 'true', 'false'),
  numberText,
  fc.string({ unit: hostileUnit, maxLength: 12 }).map((s) => JSON.stringify(s)),
  // Near the 4 KiB limit: two- and three-byte characters.
  fc.integer({ min: 1_300, max: 2_100 }).map((n) => JSON.stringify('é'.repeat(n))),
);
const { value: jsonText } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalarText, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  object: fc
    .array(fc.tuple(key, tie('value')), { maxLength: 4 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
}));
/** An object, whose values may sit inside up to 40 more levels, to cross the depth limit often. */
const metadataText = fc
  .tuple(fc.integer({ min: 0, max: maxMetadataDepth + 8 }), fc.constantFrom<'array' | 'object'>('array', 'object'), jsonText)
  .map(([levels, kind, core]) => `{"m":${nested(levels, kind, core)}}`);

const anyBody = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc
    .tuple(fc.constantFrom('channels', 'sampleRateHz', 'retentionDays', 'metadata', '__proto__', 'constructor', 'extra'), jsonText)
    .map(([name, value]) => `{"${name}":${value}}`),
  metadataText.map((text) => `{"metadata":${text}}`),
  // Up to 60 KB of nesting, far past the limit.
  fc
    .tuple(fc.integer({ min: 0, max: 30_000 }), fc.constantFrom<'array' | 'object'>('array', 'object'))
    .map(([levels, kind]) => `{"metadata":{"a":${nested(kind === 'array' ? levels : Math.floor(levels / 3), kind)}}}`),
  // A valid body cut short or spliced: what a broken client or a proxy sends.
  fc.tuple(metadataText, fc.nat(), fc.string({ maxLength: 3 })).map(([text, at, splice]) => {
    const body = `{"channels":["x","y"],"sampleRateHz":50,"metadata":${text}}`;
    const cut = at % (body.length + 1);
    return body.slice(0, cut) + splice + body.slice(cut + splice.length);
  }),
);

/** Written from the contract, not from the server: how deep a parsed value nests. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depthOf));
}

type Unstorable = 'character' | 'number';

/** Every kind of content jsonb cannot hold as sent, found in a value: the server may name any one. */
function unstorableKinds(value: unknown, found = new Set<Unstorable>()): Set<Unstorable> {
  // UTF-8 has no encoding for a lone surrogate: Buffer turns it into U+FFFD.
  if (typeof value === 'string' && (value.includes('\u0000') || Buffer.from(value).toString() !== value)) found.add('character');
  if (typeof value === 'number' && !Number.isFinite(value)) found.add('number');
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      unstorableKinds(k, found);
      unstorableKinds(v, found);
    }
  }
  return found;
}

function referenceOutcome(metadata: unknown): { stored?: unknown; code?: string; detail?: RegExp } {
  if (depthOf(metadata) > maxMetadataDepth) return { code: 'invalid_request', detail: /nests deeper/ };
  const encoded = JSON.stringify(metadata);
  if (Buffer.byteLength(encoded) > maxMetadataBytes) return { code: 'metadata_too_large' };
  const kinds = unstorableKinds(metadata);
  if (kinds.size === 2) return { code: 'invalid_request', detail: /U\+0000 or an unpaired surrogate|float64 range/ };
  if (kinds.has('character')) return { code: 'invalid_request', detail: /U\+0000 or an unpaired surrogate/ };
  if (kinds.has('number')) return { code: 'invalid_request', detail: /float64 range/ };
  return { stored: JSON.parse(encoded) };
}
