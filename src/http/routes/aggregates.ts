/**
 * REST: aggregates (docs/reading-data.md, "Aggregates"): a session's samples in buckets
 * (GET /sessions/{id}/aggregate, read as /data is: the same access), and one row per session
 * of a key prefix for leaderboards (GET /aggregate, listed as GET /sessions is). The query is
 * read by aggregates/aggregate-query.ts, which says what was wrong with it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { type Parsed, parseAggregateQuery, parseLeaderboardQuery } from '../../aggregates/aggregate-query.ts';
import { type AggregateFormat, readAggregate, readLeaderboard } from '../../aggregates/aggregate-read.ts';
import type { SummarySource } from '../../aggregates/summary-source.ts';
import type { Config } from '../../config.ts';
import {
  AggregateAnswer,
  AggregateQuery,
  Leaderboard,
  LeaderboardQuery,
  maxLeaderboardSessions,
} from '../../contract/aggregate-schemas.ts';
import { Problem } from '../../contract/errors.ts';
import { CachedReadRequestHeaders, cachedReadResponses, problemResponses, SessionIdParams } from '../../contract/schemas.ts';
import { mediaTypes } from '../../export/data-formats.ts';
import { withinReach } from '../../sessions/session-listing.ts';
import type { SessionRepository } from '../../storage/session-repository.ts';
import { sessionVersion } from '../../storage/session-version.ts';
import { authorizeSession } from '../access-guard.ts';
import type { ReadCache } from '../read-cache.ts';
import { vary } from './data.ts';
import { sessionRef } from './session-admission.ts';
import { findSessionOr404 } from './sessions.ts';

export interface AggregateRoutesOptions {
  config: Config;
  repository: SessionRepository;
  summaries: SummarySource;
  readCache: ReadCache;
}

function orProblem<T>(outcome: Parsed<T>): T {
  if (!outcome.ok) throw new Problem(outcome.code, outcome.detail);
  return outcome.value;
}

/** `?format=` wins over Accept; JSON when neither names CSV. */
function formatOf(format: AggregateFormat | undefined, accept: string | undefined): AggregateFormat {
  return format ?? ((accept ?? '').toLowerCase().includes('text/csv') ? 'csv' : 'json');
}

export const aggregateRoutes: FastifyPluginAsyncTypebox<AggregateRoutesOptions> = async (
  server,
  { config, repository, summaries, readCache },
) => {
  server.get(
    '/api/v1/sessions/:id/aggregate',
    {
      config: { access: { scope: 'sessions:read', on: 'session' } },
      schema: {
        summary: "A session's samples in buckets",
        description:
          'Buckets aligned to t = 0, of bucketMs or of the smallest whole width giving at most points buckets over the range ' +
          '(fromT..toT, by default firstT..lastT). fn from count,min,max,avg,sum,first,last: count (top level) counts samples, ' +
          "a channel's count its non-null values, avg is sum/count of non-null values, first/last are the values at the " +
          'lowest/highest seq, nulls skipped. fill none omits empty buckets; null, previous and linear make every bucket of the ' +
          'range, count 0. An unknown fn, fill or channel is 400; a range of more than 100,000 buckets or 400,000 ' +
          'bucket-channel cells is 400 aggregate_too_large. ?format= wins over Accept.',
        tags: ['data'],
        params: SessionIdParams,
        querystring: AggregateQuery,
        headers: CachedReadRequestHeaders,
        produces: ['application/json', 'text/csv'],
        response: {
          ...cachedReadResponses({
            description: 'JSON below; CSV has the header t,count,<channel>_<fn>... and an empty field for null.',
            content: { 'application/json': { schema: AggregateAnswer }, 'text/csv': { schema: Type.String() } },
          }),
          ...problemResponses(400, 401, 403, 404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const session = await findSessionOr404(repository, request.params.id);
      authorizeSession(config, request, 'sessions:read', sessionRef(session));
      const query = orProblem(parseAggregateQuery(request.query));
      const format = formatOf(request.query.format, request.headers.accept);
      vary(reply, 'Accept');
      // Cached under the row's version: what an ack covered before the row was read is in the
      // answer (roll-ups commit with it); a sample committed since may be too, never one less.
      // So two answers of a version are equivalent, not byte-equal (a compaction also moves the
      // rounding of sums): a weak tag.
      return readCache.answer(request, reply, {
        resource: 'aggregate',
        version: sessionVersion(session),
        variant: [format, query],
        equivalentOnly: true,
        produce: async () => ({
          // The body is the declared shape, written as text (aggregates/aggregate-text.ts).
          type: format === 'csv' ? mediaTypes.csv : 'application/json; charset=utf-8',
          body: orProblem(await readAggregate(summaries, session, query, format)),
        }),
      });
    },
  );

  server.get(
    '/api/v1/aggregate',
    {
      // As listing: it names sessions and reads them, so it needs the read scope in either mode.
      config: { access: { scope: 'sessions:read', on: 'collection' } },
      schema: {
        summary: 'One row per session of a key prefix, for leaderboards',
        description:
          'Each session whose key starts with keyPrefix and that has the channel: its sample count over fromT..toT and ' +
          'each fn of the channel there (as in a bucket), ordered by orderBy (nulls last, ties by key) and cut to limit. ' +
          'More than 1,000 matching sessions is 400 aggregate_too_large. Needs the sessions:read scope, in open mode too.',
        tags: ['data'],
        security: [{ bearer: [] }],
        querystring: LeaderboardQuery,
        response: { 200: Leaderboard, ...problemResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const query = orProblem(parseLeaderboardQuery(request.query));
      const { channel } = request.query;
      const orderBy = `${query.orderBy.fn}:${query.orderBy.descending ? 'desc' : 'asc'}`;
      const filter = withinReach({ keyPrefix: request.query.keyPrefix }, request.access.principal.keyPrefix);
      if (filter === null) return { channel, fn: query.fns, orderBy, rows: [] };
      const page = await repository.list(filter, maxLeaderboardSessions + 1, null);
      if (page.records.length > maxLeaderboardSessions)
        throw new Problem('aggregate_too_large', `keyPrefix matches more than ${maxLeaderboardSessions} sessions; narrow it`);
      const rows = await readLeaderboard(summaries, page.records, channel, query);
      return { channel, fn: query.fns, orderBy, rows };
    },
  );
};
