/**
 * The two aggregate reads, from a parsed query to the answer: a session's buckets
 * (GET /sessions/{id}/aggregate) and one row per session for leaderboards (GET /aggregate).
 * Each plans first (channels, bucket width, bounds: any refusal comes before a sample is
 * read), then asks the SummarySource, then writes the answer.
 *
 * The range is the session record's firstT..lastT where fromT or toT is not given, and only
 * buckets of that range are answered: a sample committed after the record was read (and
 * so after the request came) may be left out, never one acked before it, as a commit moves
 * firstT and lastT with its chunks (storage/sample-store.ts).
 */
import type { AggregateFn } from '../contract/aggregate-schemas.ts';
import { answerOf } from './aggregate-body.ts';
import { type AggregateRequest, type LeaderboardRequest, type Parsed, parsed, refuse } from './aggregate-query.ts';
import { aggregateCsv, aggregateJson } from './aggregate-text.ts';
import { BucketColumns, fieldCount } from './bucket-columns.ts';
import { planBuckets, spanOf } from './bucket-plan.ts';
import type { SummarySource } from './summary-source.ts';

/** What an aggregate needs to know of a session (storage's SessionRecord has it). */
export interface AggregatedSession {
  id: string;
  key: string | null;
  channels: readonly string[];
  firstT: number | null;
  lastT: number | null;
}

export type AggregateFormat = 'json' | 'csv';

/** The indexes of the channels asked for, in the order asked. */
function channelIndexes(session: AggregatedSession, asked: readonly string[] | null, format: AggregateFormat): number[] {
  const indexes = (asked ?? session.channels).map((name) => {
    const index = session.channels.indexOf(name);
    return index >= 0 ? index : refuse(`channel ${JSON.stringify(name)} is not one of the session's: ${session.channels.join(',')}`);
  });
  if (format === 'json' && indexes.some((index) => session.channels[index] === 'count'))
    refuse('a channel named count would be two members of a JSON bucket (count is its sample count): ask format=csv, or leave it out');
  return indexes;
}

export async function readAggregate(
  source: SummarySource,
  session: AggregatedSession,
  request: AggregateRequest,
  format: AggregateFormat,
): Promise<Parsed<Buffer>> {
  const planned = parsed(() => {
    const channels = channelIndexes(session, request.channels, format);
    const span = spanOf(request, session.firstT, session.lastT);
    const ask = request.bucketMs !== null ? { bucketMs: request.bucketMs } : { points: request.points as number };
    return { channels, span, plan: planBuckets(span, ask, channels.length) };
  });
  if (!planned.ok) return planned;
  const { channels, span, plan } = planned.value;
  let summaries = new BucketColumns(plan.bucketMs, channels.length, 1);
  const rows = { from: 0, to: 0 };
  if (span !== null && plan.firstIndex !== null && plan.lastIndex !== null) {
    const { bucketMs } = plan;
    const toT = span.toIncluded ? Number.POSITIVE_INFINITY : span.to;
    summaries = await source.summaries({ sessionId: session.id, channels, bucketMs, fromT: span.from, toT });
    const lowest = plan.firstIndex * bucketMs + 0;
    const highest = plan.lastIndex * bucketMs + 0;
    // In ascending t: the plan's buckets are one run of rows.
    while (rows.from < summaries.length && summaries.t[rows.from] < lowest) rows.from++;
    rows.to = rows.from;
    while (rows.to < summaries.length && summaries.t[rows.to] <= highest) rows.to++;
  }
  const answer = answerOf(summaries, rows, plan, request.fns, request.fill);
  const header = { sessionId: session.id, bucketMs: plan.bucketMs, channels: channels.map((c) => session.channels[c]), fns: request.fns };
  return { ok: true, value: format === 'csv' ? aggregateCsv(header, answer) : aggregateJson(header, answer) };
}

export interface LeaderboardRow {
  sessionId: string;
  key: string;
  count: number;
  values: Partial<Record<AggregateFn, number | null>>;
}

/**
 * The width a leaderboard asks its source for: the range is one row, so any width does, the
 * buckets merged. A whole number of hours, so that a source keeping hourly roll-ups answers
 * from them; 2^31 hours (about 7.7e15 ms, near the widest safe integer) gives the fewest.
 */
const wholeRangeMs = 3_600_000 * 2 ** 31;

/** The summary of one channel of a session over fromT..toT, in one row. */
async function summarizeRange(source: SummarySource, sessionId: string, channel: number, request: LeaderboardRequest) {
  const fromT = request.fromT ?? Number.NEGATIVE_INFINITY;
  const toT = request.toT ?? Number.POSITIVE_INFINITY;
  const total = new BucketColumns(wholeRangeMs, 1, 1);
  total.rowAt(0);
  if (fromT === toT) return total;
  const summaries = await source.summaries({ sessionId, channels: [channel], bucketMs: wholeRangeMs, fromT, toT });
  for (let row = 0; row < summaries.length; row++) {
    total.count[0] += summaries.count[row];
    total.mergeFields(0, 0, summaries.fields, row * fieldCount, 1);
  }
  return total;
}

const nullIfNaN = (value: number) => (Number.isNaN(value) ? null : value);

/** Nulls last; ties (nulls among them) by key. */
function compareRows(fn: AggregateFn, descending: boolean) {
  return (a: LeaderboardRow, b: LeaderboardRow) => {
    const x = a.values[fn] ?? null;
    const y = b.values[fn] ?? null;
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      return descending ? y - x : x - y;
    }
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  };
}

/**
 * One row per session that has `channel`, ordered and cut to the limit. The sessions are read
 * one after another: a leaderboard is bounded (maxLeaderboardSessions) but may be long to
 * compute from raw samples, and should not take every database connection while it is.
 */
export async function readLeaderboard(
  source: SummarySource,
  sessions: readonly AggregatedSession[],
  channel: string,
  request: LeaderboardRequest,
): Promise<LeaderboardRow[]> {
  const rows: LeaderboardRow[] = [];
  for (const session of sessions) {
    const index = session.channels.indexOf(channel);
    if (index < 0 || session.key === null) continue;
    const total = await summarizeRange(source, session.id, index, request);
    const values = Object.fromEntries(request.fns.map((fn) => [fn, nullIfNaN(total.value(0, 0, fn))]));
    rows.push({ sessionId: session.id, key: session.key, count: total.count[0], values });
  }
  return rows.sort(compareRows(request.orderBy.fn, request.orderBy.descending)).slice(0, request.limit);
}
