/**
 * REST: a session's stored samples, streamed (docs/API_CONTRACT.yml, GET /sessions/{id}/data),
 * by seq and by time, and its latest one (GET /sessions/{id}/latest).
 * With `limit`, the end of the page is found first by a pass over the seqs alone, so that
 * `Wavehouse-Next-From-Seq` can go in the headers before the body starts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import Type from 'typebox';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/errors.ts';
import {
  CachedReadRequestHeaders,
  cachedReadResponses,
  DataQuery,
  LatestSample,
  problemResponses,
  SessionData,
  SessionIdParams,
} from '../../contract/schemas.ts';
import { chooseFormat, mediaTypes } from '../../export/data-formats.ts';
import { encodeExportBody } from '../../export/export-body.ts';
import { decimalNumber, isDecimalInteger } from '../../samples/decimal-text.ts';
import type { SampleBatch } from '../../samples/sample-batch.ts';
import type { SampleStore, TimeRange } from '../../storage/sample-store.ts';
import type { SessionRecord, SessionRepository } from '../../storage/session-repository.ts';
import { sessionVersion } from '../../storage/session-version.ts';
import { authorizeSession } from '../access-guard.ts';
import type { ReadCache } from '../read-cache.ts';
import { sessionRef } from './session-admission.ts';
import { findSessionOr404 } from './sessions.ts';

export interface DataRoutesOptions {
  config: Config;
  repository: SessionRepository;
  store: SampleStore;
  readCache: ReadCache;
}

const maxSeq = Number.MAX_SAFE_INTEGER;

/** Checked in decimal digits before the query validator coerces them (samples/decimal-text.ts). */
const integerParams = ['fromSeq', 'toSeq', 'limit'] as const;
/** Checked as finite decimal numbers, for the same reason (samples/decimal-text.ts). */
const numberParams = ['fromT', 'toT'] as const;

/** The t bounds asked for, or none: a read without them takes no part of the time path. */
function timeRangeOf(query: DataQuery): TimeRange | undefined {
  const { fromT, toT } = query;
  if (fromT === undefined && toT === undefined) return undefined;
  if (fromT !== undefined && toT !== undefined && fromT > toT)
    throw new Problem('invalid_request', `fromT (${fromT}) is above toT (${toT}); fromT is inclusive and toT exclusive`);
  return { fromT: fromT ?? Number.NEGATIVE_INFINITY, toT: toT ?? Number.POSITIVE_INFINITY };
}

/** The last seq of a page of `limit` samples from `fromSeq`, and whether more follow. */
async function pageEnd(store: SampleStore, sessionId: string, fromSeq: number, toSeq: number, limit: number, times?: TimeRange) {
  let seen = 0;
  let lastSeenSeq = -1;
  for await (const batch of store.readRange(sessionId, fromSeq, toSeq, times)) {
    // The page ended exactly at the previous batch, and this one proves more samples follow.
    if (seen === limit) return { toSeq: lastSeenSeq, nextFromSeq: lastSeenSeq + 1 };
    if (seen + batch.count > limit) {
      const lastSeq = batch.seq(limit - seen - 1);
      return { toSeq: lastSeq, nextFromSeq: lastSeq + 1 };
    }
    seen += batch.count;
    lastSeenSeq = batch.lastSeq;
  }
  return { toSeq, nextFromSeq: null };
}

/** The highest seq a read of `session` may answer: what its row counts (read-cache.ts: an answer as of one version). */
function committedUpTo(session: SessionRecord): number {
  return session.lastSeq ?? -1;
}

/** Adds `header` to the answer's Vary (a cached read whose body follows it), after what the CORS plugin may have put there (Origin). */
export function vary(reply: FastifyReply, header: string): void {
  const before = reply.getHeader('vary');
  reply.header('vary', before === undefined ? header : `${before}, ${header}`);
}

export const dataRoutes: FastifyPluginAsyncTypebox<DataRoutesOptions> = async (server, { config, repository, store, readCache }) => {
  server.get(
    '/api/v1/sessions/:id/data',
    {
      config: { access: { scope: 'sessions:read', on: 'session' } },
      preValidation: async (request) => {
        const query = request.query as Record<string, unknown>;
        for (const name of integerParams) {
          const text = query[name];
          if (typeof text === 'string' && !isDecimalInteger(text))
            throw new Problem('invalid_request', `querystring/${name} must be an integer written in decimal digits`);
        }
        for (const name of numberParams) {
          const text = query[name];
          if (typeof text === 'string' && decimalNumber(text) === null)
            throw new Problem(
              'invalid_request',
              `querystring/${name} must be a finite number written in decimal (1732345678901.25, -5, 1.7e12)`,
            );
        }
      },
      schema: {
        summary: "A session's stored samples",
        description:
          'All stored samples in seq order, streamed. fromSeq and toSeq are inclusive; ' +
          'fromT (inclusive) and toT (exclusive) keep the samples whose t lies between, combined with the seqs and limit. ' +
          'With limit, nextFromSeq (and the Wavehouse-Next-From-Seq header) tell where the next page starts. ' +
          'Parquet (?format=parquet or Accept: application/vnd.apache.parquet) has the CSV header as columns, seq INT64, ' +
          't and a DOUBLE per channel (OPTIONAL in a nullable session), streamed in row groups. ?format= wins over Accept.',
        tags: ['data'],
        params: SessionIdParams,
        querystring: DataQuery,
        headers: CachedReadRequestHeaders,
        produces: [mediaTypes.json, mediaTypes.ndjson, mediaTypes.csv, mediaTypes.parquet],
        response: {
          ...cachedReadResponses({
            description: 'JSON body below; NDJSON is one Sample per line; CSV has the header seq,t,<channels>.',
            content: {
              'application/json': { schema: SessionData },
              'application/x-ndjson': { schema: Type.String() },
              'text/csv': { schema: Type.String() },
              'application/vnd.apache.parquet': { schema: Type.String({ format: 'binary' }) },
            },
          }),
          ...problemResponses(400, 401, 403, 404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const session = await findSessionOr404(repository, request.params.id);
      authorizeSession(config, request, 'sessions:read', sessionRef(session));
      const format = chooseFormat(request.query.format, request.headers.accept);
      const times = timeRangeOf(request.query);
      const fromSeq = request.query.fromSeq ?? 0;
      const toSeq = Math.min(request.query.toSeq ?? maxSeq, committedUpTo(session));
      const { limit } = request.query;
      vary(reply, 'Accept');
      return readCache.answer(request, reply, {
        resource: 'data',
        version: sessionVersion(session),
        variant: [format, fromSeq, toSeq, limit ?? null, times?.fromT ?? null, times?.toT ?? null],
        produce: async () => {
          let lastSeq = toSeq;
          let nextFromSeq: number | null = null;
          if (limit !== undefined && fromSeq <= toSeq) {
            ({ toSeq: lastSeq, nextFromSeq } = await pageEnd(store, session.id, fromSeq, toSeq, limit, times));
          }
          const headers: Record<string, string> = nextFromSeq === null ? {} : { 'wavehouse-next-from-seq': String(nextFromSeq) };
          const batches = store.readRange(session.id, fromSeq, lastSeq, times);
          return {
            type: mediaTypes[format],
            headers,
            body: encodeExportBody(
              format,
              { sessionId: session.id, channels: session.channels, nextFromSeq, nullable: session.nullable },
              batches,
            ),
          };
        },
      });
    },
  );

  server.get(
    '/api/v1/sessions/:id/latest',
    {
      config: { access: { scope: 'sessions:read', on: 'session' } },
      schema: {
        summary: "A session's latest sample",
        description: 'The committed sample with the highest seq (what the last ack covered), or null before any.',
        tags: ['data'],
        params: SessionIdParams,
        headers: CachedReadRequestHeaders,
        response: { ...cachedReadResponses(LatestSample), ...problemResponses(401, 403, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const session = await findSessionOr404(repository, request.params.id);
      authorizeSession(config, request, 'sessions:read', sessionRef(session));
      return readCache.answer(request, reply, {
        resource: 'latest',
        version: sessionVersion(session),
        variant: null,
        produce: async () => ({ json: { sessionId: session.id, sample: await latestOf(store, session) } }),
      });
    },
  );
};

/**
 * The sample at the session's lastSeq, as of the row the route loaded: a commit since then
 * cannot change it (seqs only grow), so the answer belongs to that version.
 */
async function latestOf(store: SampleStore, session: SessionRecord) {
  const upTo = committedUpTo(session);
  if (upTo < 0) return null;
  for await (const batch of store.readRange(session.id, upTo, upTo)) return sampleObject(batch, batch.count - 1, session.channels);
  return null;
}

/** One sample of a batch as the contract's Sample object. */
function sampleObject(batch: SampleBatch, index: number, channels: readonly string[]) {
  const sample: Record<string, number | null> = { seq: batch.seq(index), t: batch.t(index) };
  channels.forEach((name, channel) => {
    const value = batch.value(channel, index);
    // NaN is a nullable session's null (ingest/frame-decoder.ts).
    sample[name] = Number.isNaN(value) ? null : value;
  });
  return sample as { seq: number; t: number };
}
