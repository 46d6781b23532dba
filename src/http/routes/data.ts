/**
 * REST: a session's stored samples, streamed (docs/API_CONTRACT.yml, GET /sessions/{id}/data).
 * With `limit`, the end of the page is found first by a pass over the seqs alone, so that
 * `Wavehouse-Next-From-Seq` can go in the headers before the body starts.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/errors.ts';
import { DataQuery, problemResponses, SessionData, SessionIdParams } from '../../contract/schemas.ts';
import { chooseFormat, mediaTypes } from '../../export/data-formats.ts';
import { encodeExportBody } from '../../export/export-body.ts';
import type { SampleStore } from '../../storage/sample-store.ts';
import type { SessionRepository } from '../../storage/session-repository.ts';
import { authorizeSession } from '../access-guard.ts';
import { isDecimalInteger } from '../decimal-integer.ts';
import { sessionRef } from './session-admission.ts';
import { findSessionOr404 } from './sessions.ts';

export interface DataRoutesOptions {
  config: Config;
  repository: SessionRepository;
  store: SampleStore;
}

const maxSeq = Number.MAX_SAFE_INTEGER;

/** Checked in decimal digits before the query validator coerces them (decimal-integer.ts). */
const integerParams = ['fromSeq', 'toSeq', 'limit'] as const;

/** The last seq of a page of `limit` samples from `fromSeq`, and whether more follow. */
async function pageEnd(store: SampleStore, sessionId: string, fromSeq: number, toSeq: number, limit: number) {
  let seen = 0;
  let lastSeenSeq = -1;
  for await (const batch of store.readRange(sessionId, fromSeq, toSeq)) {
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

export const dataRoutes: FastifyPluginAsyncTypebox<DataRoutesOptions> = async (server, { config, repository, store }) => {
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
      },
      schema: {
        summary: "A session's stored samples",
        description:
          'All stored samples in seq order, streamed. fromSeq and toSeq are inclusive. ' +
          'With limit, nextFromSeq (and the Wavehouse-Next-From-Seq header) tell where the next page starts. ' +
          '?format= wins over Accept.',
        tags: ['data'],
        params: SessionIdParams,
        querystring: DataQuery,
        produces: [mediaTypes.json, mediaTypes.ndjson, mediaTypes.csv],
        response: {
          200: {
            description: 'JSON body below; NDJSON is one Sample per line; CSV has the header seq,t,<channels>.',
            content: {
              'application/json': { schema: SessionData },
              'application/x-ndjson': { schema: Type.String() },
              'text/csv': { schema: Type.String() },
            },
          },
          ...problemResponses(400, 401, 403, 404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const session = await findSessionOr404(repository, request.params.id);
      authorizeSession(config, request, 'sessions:read', sessionRef(session));
      const format = chooseFormat(request.query.format, request.headers.accept);
      const fromSeq = request.query.fromSeq ?? 0;
      let toSeq = request.query.toSeq ?? maxSeq;
      let nextFromSeq: number | null = null;
      if (request.query.limit !== undefined && fromSeq <= toSeq) {
        ({ toSeq, nextFromSeq } = await pageEnd(store, session.id, fromSeq, toSeq, request.query.limit));
      }
      if (nextFromSeq !== null) reply.header('wavehouse-next-from-seq', String(nextFromSeq));
      const batches = store.readRange(session.id, fromSeq, toSeq);
      const body = Readable.from(encodeExportBody(format, { sessionId: session.id, channels: session.channels, nextFromSeq }, batches));
      // The response schema types the JSON shape; the body is that shape, streamed.
      return reply.type(mediaTypes[format]).send(body as never);
    },
  );
};
