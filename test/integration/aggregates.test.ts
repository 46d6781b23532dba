/**
 * Aggregates on the real PostgreSQL, ingested through HTTP ingest: every answer checked against
 * a reference computed here from the samples sent (nulls, seq gaps, resent bodies, t that jumps
 * back), for random queries over every fn, fill, bucket form, range and format, in a nullable
 * and a non-nullable session; hostile queries answered 400 with their code, never 500; and the
 * leaderboard across sessions of a key prefix, with who may read it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { bearer, call } from '../support/access.ts';
import { type RunningApp, startApp } from '../support/app.ts';
import { createSession } from '../support/clients.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const fns = ['count', 'min', 'max', 'avg', 'sum', 'first', 'last'] as const;
type Fn = (typeof fns)[number];
type Value = number | null;
interface Row {
  seq: number;
  t: number;
  values: Value[];
}

let running: RunningApp;
const teardown: Array<() => Promise<void>> = [];

before(async () => {
  // No read cache: these tests change stored rows behind the session's version, and check what is computed.
  const hooks = { after: (fn: unknown) => void teardown.push(fn as () => Promise<void>) };
  running = await startApp(hooks, { RATE_LIMIT_PER_MINUTE: '0', READ_CACHE_MAX_BYTES: '0' });
});
after(async () => {
  for (const fn of teardown.reverse()) await fn();
});

/** Samples with seq gaps, t that mostly rises but jumps back (late t) and repeats, and nulls if `nullable`. */
function rowsOf(count: number, channelCount: number, nullable: boolean, seed: number): Row[] {
  const random = fc.sample(fc.integer({ min: 0, max: 999_999 }), { numRuns: count * (channelCount + 2), seed });
  let seq = 0;
  let t = 1_000.5;
  return Array.from({ length: count }, (_, i) => {
    const r = (k: number) => random[i * (channelCount + 2) + k];
    seq += 1 + (r(0) % 5 === 0 ? r(0) % 7 : 0);
    t += r(1) % 31 === 0 ? -(r(1) % 900) : (r(1) % 13) * 0.75;
    const values = Array.from({ length: channelCount }, (_, c) =>
      nullable && r(c + 2) % 4 === 0 ? null : (r(c + 2) % 20_001) / 100 - 100,
    );
    return { seq, t, values };
  });
}

async function ingest(sessionId: string, token: string, channels: readonly string[], rows: readonly Row[]): Promise<void> {
  const body = (part: readonly Row[]) =>
    JSON.stringify({
      samples: part.map((row) => ({ seq: row.seq, t: row.t, ...Object.fromEntries(channels.map((c, i) => [c, row.values[i]])) })),
    });
  const post = async (part: readonly Row[]) => {
    const answer = await call(`${running.baseUrl}/api/v1/sessions/${sessionId}/samples`, 'POST', bearer(token), JSON.parse(body(part)));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  };
  for (let at = 0, size = 97; at < rows.length; at += size, size = 40 + ((size * 7) % 300)) {
    await post(rows.slice(at, at + size));
    // A resend of what was stored, overlapping the next body: stored once.
    if (at > 0) await post(rows.slice(Math.max(0, at - 30), at + 5));
  }
}

interface Query {
  bucketMs?: number;
  points?: number;
  fn?: Fn[];
  fill?: 'none' | 'null' | 'previous' | 'linear';
  channels?: string[];
  fromT?: number;
  toT?: number;
  format: 'json' | 'csv';
}

interface RefBucket {
  t: number;
  count: number;
  values: Value[][];
}

/** The contract's definitions, computed from the rows directly. */
function reference(rows: readonly Row[], channels: readonly string[], query: Query): { bucketMs: number; buckets: RefBucket[] } | null {
  const ts = rows.map((row) => row.t);
  const from = query.fromT ?? Math.min(...ts);
  const to = query.toT ?? Math.max(...ts);
  const included = query.toT === undefined;
  const fnList = query.fn ?? ['count', 'min', 'max', 'avg'];
  const picked = (query.channels ?? channels).map((name) => channels.indexOf(name));
  const empty = !(from < to || (included && from === to));
  const count = (w: number) => (included ? Math.floor(to / w) : Math.ceil(to / w) - 1) - Math.floor(from / w) + 1;
  let width = query.bucketMs ?? 1;
  if (query.points !== undefined && !empty) {
    while (count(width) > query.points && width < 1e6) width++;
    // Buckets are aligned to 0: a range across it fits in no single one.
    if (count(width) > query.points) return null;
  }
  if (empty) return { bucketMs: width, buckets: [] };
  const inRange = rows.filter((row) => row.t >= from && (included ? row.t <= to : row.t < to));
  const groups = new Map<number, Row[]>();
  for (const row of inRange) {
    const t = Math.floor(row.t / width) * width + 0;
    groups.set(t, [...(groups.get(t) ?? []), row]);
  }
  const fnOfGroup = (group: Row[], c: number, fn: Fn): Value => {
    const present = [...group].sort((a, b) => a.seq - b.seq).flatMap((row) => (row.values[c] === null ? [] : [row.values[c] as number]));
    if (fn === 'count') return present.length;
    if (present.length === 0) return null;
    const sum = present.reduce((a, b) => a + b, 0);
    return {
      min: Math.min(...present),
      max: Math.max(...present),
      sum,
      avg: sum / present.length,
      first: present[0],
      last: present.at(-1),
    }[fn] as number;
  };
  const full = [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([t, group]): RefBucket => ({ t, count: group.length, values: picked.map((c) => fnList.map((fn) => fnOfGroup(group, c, fn))) }));
  if ((query.fill ?? 'none') === 'none') return { bucketMs: width, buckets: full };
  const buckets: RefBucket[] = [];
  const last = included ? Math.floor(to / width) : Math.ceil(to / width) - 1;
  let next = 0;
  for (let index = Math.floor(from / width); index <= last; index++) {
    const t = index * width + 0;
    if (full[next]?.t === t) {
      buckets.push(full[next++]);
      continue;
    }
    const [before, after] = [full[next - 1], full[next]];
    const fill = (c: number, f: number): Value => {
      if (query.fill === 'null' || !before) return null;
      const v0 = before.values[c][f];
      if (query.fill === 'previous') return v0;
      const v1 = after?.values[c][f] ?? null;
      return v0 === null || v1 === null ? null : v0 + (v1 - v0) * ((t - before.t) / (after.t - before.t));
    };
    buckets.push({ t, count: 0, values: picked.map((_, c) => fnList.map((_, f) => fill(c, f))) });
  }
  return { bucketMs: width, buckets };
}

function queryString(query: Query): string {
  const { fn, channels, ...rest } = query;
  const params = Object.entries(rest).flatMap(([name, value]) => (value === undefined ? [] : [[name, String(value)]]));
  if (fn) params.push(['fn', fn.join(',')]);
  if (channels) params.push(['channels', channels.join(',')]);
  return new URLSearchParams(params).toString();
}

/**
 * Equal, but for sums and averages (and what fill derives from them), which roll-ups add up in
 * another grouping than the reference's seq order: those to a relative 1e-9.
 */
function assertSameBuckets(actual: readonly RefBucket[], expected: readonly RefBucket[], fnList: readonly Fn[], message: string): void {
  assert.deepStrictEqual(
    actual.map(({ t, count }) => [t, count]),
    expected.map(({ t, count }) => [t, count]),
    message,
  );
  for (const [b, bucket] of actual.entries()) {
    for (const [c, channel] of bucket.values.entries()) {
      for (const [f, value] of channel.entries()) {
        const want = expected[b].values[c][f];
        const at = `${message}: bucket ${bucket.t}, channel ${c}, ${fnList[f]}: ${value} against ${want}`;
        if ((fnList[f] === 'sum' || fnList[f] === 'avg') && value !== null && want !== null) {
          assert.ok(Math.abs(value - want) <= 1e-9 * Math.max(1, Math.abs(want)), at);
        } else assert.equal(value, want, at);
      }
    }
  }
}

/** The answer in the reference's shape, from JSON or CSV. */
function parseAnswer(format: Query['format'], text: string, channels: readonly string[], fnList: readonly Fn[]) {
  if (format === 'json') {
    const body = JSON.parse(text) as { bucketMs: number; buckets: Array<Record<string, unknown>> };
    const buckets = body.buckets.map((b) => ({
      t: b.t as number,
      count: b.count as number,
      values: channels.map((c) => fnList.map((fn) => (b[c] as Record<string, Value>)[fn])),
    }));
    return { bucketMs: body.bucketMs, buckets };
  }
  const [header, ...lines] = text.trimEnd().split('\n');
  assert.equal(header, ['t', 'count', ...channels.flatMap((c) => fnList.map((fn) => `${c}_${fn}`))].join(','));
  const buckets = lines.map((line) => {
    const fields = line.split(',').map((field) => (field === '' ? null : Number(field)));
    const values = channels.map((_, c) => fields.slice(2 + c * fnList.length, 2 + (c + 1) * fnList.length));
    return { t: fields[0] as number, count: fields[1] as number, values };
  });
  return { bucketMs: null, buckets };
}

for (const nullable of [true, false]) {
  describe(`GET /sessions/{id}/aggregate, ${nullable ? 'a nullable' : 'a non-nullable'} session`, () => {
    const channels = ['ax', 'ay', 'az'];
    let sessionId: string;
    let rows: Row[];

    before(async () => {
      const session = await createSession(running.baseUrl, { channels, nullable });
      sessionId = session.sessionId;
      rows = rowsOf(3000, channels.length, nullable, nullable ? 7 : 8);
      await ingest(sessionId, session.ingestToken, channels, rows);
    });

    test('answers what the reference computes from the samples, for every fn, fill, bucket form, range and format', async () => {
      const ts = rows.map((row) => row.t);
      const bound = fc.oneof(
        fc.constantFrom(...ts),
        fc.constantFrom(...ts).map((t) => t + 0.5),
        fc.integer({ min: -50, max: 40_000 }),
      );
      const queries = fc.record(
        {
          width: fc.oneof(
            // 600, 1800, 3600 and 60000 are answered from roll-ups (resolutions that divide them), the others from raw samples.
            fc.record({ bucketMs: fc.constantFrom(1, 3, 50, 333, 1000, 7919, 1e9, 600, 1800, 3600, 60_000) }),
            fc.record({ points: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.constantFrom(1000, 10_000)) }),
          ),
          fn: fc.option(fc.uniqueArray(fc.constantFrom(...fns), { minLength: 1 }), { nil: undefined }),
          fill: fc.option(fc.constantFrom('none', 'null', 'previous', 'linear' as const), { nil: undefined }),
          channels: fc.option(fc.uniqueArray(fc.constantFrom(...channels), { minLength: 1 }), { nil: undefined }),
          a: fc.option(bound, { nil: undefined }),
          b: fc.option(bound, { nil: undefined }),
          format: fc.constantFrom('json' as const, 'csv' as const),
        },
        { requiredKeys: ['width', 'format'] },
      );
      await fc.assert(
        fc.asyncProperty(queries, async ({ width, a, b, ...rest }) => {
          const [fromT, toT] = a !== undefined && b !== undefined && a > b ? [b, a] : [a, b];
          const query: Query = { ...width, ...rest };
          if (fromT !== undefined) query.fromT = fromT;
          if (toT !== undefined) query.toT = toT;
          const expected = reference(rows, channels, query);
          const response = await fetch(`${running.baseUrl}/api/v1/sessions/${sessionId}/aggregate?${queryString(query)}`);
          const text = await response.text();
          if (expected === null) return assert.equal(response.status, 400, text);
          assert.equal(response.status, 200, `${queryString(query)}: ${text}`);
          const answer = parseAnswer(query.format, text, query.channels ?? channels, query.fn ?? ['count', 'min', 'max', 'avg']);
          if (query.format === 'json') assert.equal(answer.bucketMs, expected.bucketMs);
          assertSameBuckets(answer.buckets, expected.buckets, query.fn ?? ['count', 'min', 'max', 'avg'], queryString(query));
        }),
        fuzzParameters(60),
      );
    });
  });
}

describe('where an aggregate comes from', () => {
  test('a range of whole roll-up buckets is read from roll-ups, not samples; incomplete roll-ups fall back to samples', async () => {
    const channels = ['x'];
    const session = await createSession(running.baseUrl, { channels });
    const rows = rowsOf(2000, 1, false, 11);
    await ingest(session.sessionId, session.ingestToken, channels, rows);
    // fromT and toT on 600 ms roll-up bucket edges: no raw edge is read. No sum or avg: exact in any grouping.
    const query: Query = { bucketMs: 3600, fromT: 0, toT: 72_000, fn: ['count', 'min', 'max', 'first', 'last'], format: 'json' };
    const ask = async () => {
      const response = await fetch(`${running.baseUrl}/api/v1/sessions/${session.sessionId}/aggregate?${queryString(query)}`);
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return parseAnswer('json', text, channels, query.fn as Fn[]).buckets;
    };
    const answered = await ask();
    assert.deepStrictEqual(answered, reference(rows, channels, query)?.buckets);
    const pool = new pg.Pool({ connectionString: running.databaseUrl, max: 1 });
    try {
      await pool.query('DELETE FROM sample_chunks WHERE session_id = $1', [session.sessionId]);
      assert.deepStrictEqual(await ask(), answered, 'with no sample left to read, the roll-ups still answer');
      // 1 min buckets over a range that cuts them but not 600 ms ones: the finer roll-ups answer the cut pieces.
      for (const range of [
        { fromT: 1_200, toT: 7_800 },
        { fromT: 600, toT: 61_200 },
      ]) {
        const cut: Query = { ...query, bucketMs: 60_000, ...range };
        const url = `${running.baseUrl}/api/v1/sessions/${session.sessionId}/aggregate?${queryString(cut)}`;
        const response = await fetch(url);
        const text = await response.text();
        assert.equal(response.status, 200, text);
        const buckets = parseAnswer('json', text, channels, cut.fn as Fn[]).buckets;
        assert.deepStrictEqual(buckets, reference(rows, channels, cut)?.buckets, `${JSON.stringify(range)}, from roll-ups alone`);
      }
      await pool.query('UPDATE sessions SET rollup_sample_count = 0 WHERE id = $1', [session.sessionId]);
      assert.deepStrictEqual(await ask(), [], 'roll-ups that miss samples are not used: the (now deleted) samples answer');
    } finally {
      await pool.end();
    }
  });
});

describe('hostile aggregate queries', () => {
  let sessionId: string;
  before(async () => {
    const session = await createSession(running.baseUrl, { channels: ['count', 'b'] });
    sessionId = session.sessionId;
    const samples = [
      { seq: 1, t: 1, count: 1e308, b: -1e308 },
      { seq: 2, t: 2, count: 1e308, b: 0 },
    ];
    await call(`${running.baseUrl}/api/v1/sessions/${sessionId}/samples`, 'POST', bearer(session.ingestToken), { samples });
  });

  const get = (query: string) => call(`${running.baseUrl}/api/v1/sessions/${sessionId}/aggregate?${query}`);

  test('each is answered 400 with its code, never 500', async () => {
    const cases: Array<[string, string]> = [
      ['', 'invalid_request'],
      ['bucketMs=1&points=1', 'invalid_request'],
      ['points=0', 'invalid_request'],
      ['points=10001', 'invalid_request'],
      ['bucketMs=0', 'invalid_request'],
      ['bucketMs=-1', 'invalid_request'],
      ['bucketMs=1.5', 'invalid_request'],
      ['bucketMs=1&fromT=NaN', 'invalid_request'],
      ['bucketMs=1&fromT=Infinity', 'invalid_request'],
      ['bucketMs=1&toT=1e309', 'invalid_request'],
      ['bucketMs=1&fn=median', 'invalid_request'],
      ['bucketMs=1&fill=zero', 'invalid_request'],
      ['bucketMs=1&channels=nope&format=csv', 'invalid_request'],
      ['bucketMs=1&channels=b,b&format=csv', 'invalid_request'],
      ['bucketMs=1&channels=b&channels=b', 'invalid_request'],
      ['bucketMs=1&format=xml', 'invalid_request'],
      ['bucketMs=1&extra=1', 'invalid_request'],
      ['bucketMs=1', 'invalid_request'],
      ['bucketMs=1&fromT=-1e308&toT=1e308&format=csv', 'aggregate_too_large'],
      ['bucketMs=1&fromT=0&toT=1e12&fill=linear&format=csv', 'aggregate_too_large'],
      ['bucketMs=1&fromT=1e20&toT=100000000000000016384&format=csv', 'invalid_request'],
      [`points=1&fromT=-1&toT=1&format=csv`, 'invalid_request'],
    ];
    for (const [query, code] of cases) {
      const answer = await get(query);
      assert.equal(answer.status, 400, `${query}: ${JSON.stringify(answer.body)}`);
      assert.equal((answer.body as { code: string }).code, code, query);
    }
  });

  test('sums beyond the float64 range are null, and -0 and 1e308 bounds are ranges like any other', async () => {
    const answer = await fetch(`${running.baseUrl}/api/v1/sessions/${sessionId}/aggregate?bucketMs=10&fn=sum,avg,max&format=csv`);
    assert.equal(await answer.text(), 't,count,count_sum,count_avg,count_max,b_sum,b_avg,b_max\n0,2,,,1e+308,-1e+308,-5e+307,0\n');
    const edge = await get('bucketMs=1&fromT=-0&toT=1e308&channels=b');
    assert.equal(edge.status, 400);
    const json = await get('bucketMs=1&fromT=-0&toT=3&channels=b&fn=last');
    assert.deepStrictEqual((json.body as { buckets: unknown }).buckets, [
      { t: 1, count: 1, b: { last: -1e308 } },
      { t: 2, count: 1, b: { last: 0 } },
    ]);
  });

  test('arbitrary query strings get a 200 or a 400 problem, never anything else', async () => {
    const names = fc.constantFrom('bucketMs', 'points', 'fn', 'fill', 'channels', 'fromT', 'toT', 'format', 'x');
    const values = fc.oneof(fc.string(), fc.constantFrom('1', '10000', 'b', 'sum,last', 'linear', 'csv', '1e308', '-0', '', '%', '&'));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(names, values), { maxLength: 6 }), async (pairs) => {
        const query = new URLSearchParams(pairs).toString();
        const answer = await fetch(`${running.baseUrl}/api/v1/sessions/${sessionId}/aggregate?${query}`);
        const text = await answer.text();
        assert.ok(answer.status === 200 || answer.status === 400, `${query}: ${answer.status} ${text}`);
        if (answer.status === 400) assert.match(answer.headers.get('content-type') ?? '', /problem\+json/);
      }),
      fuzzParameters(150),
    );
  });
});
