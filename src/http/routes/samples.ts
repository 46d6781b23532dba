/**
 * REST: HTTP ingest, `POST /sessions/{id}/samples` (docs/protocol.md, HTTP ingest). Thin: it
 * takes the body as bytes in one of three media types, finds the session (404), checks the
 * credential (401, 403), and hands the rest to ingest/http-ingest.ts, whose refusals it
 * answers as problem+json with the socket's error codes.
 *
 * The body is bounded by the frame limit (INGEST_MAX_FRAME_BYTES), not HTTP_MAX_BODY_BYTES:
 * a body is a frame, and Fastify refuses a larger one from its Content-Length before reading
 * it, answered 413 `frame_too_large` like a frame over the limit.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError } from 'fastify';
import Type from 'typebox';
import type { Config } from '../../config.ts';
import { Problem } from '../../contract/errors.ts';
import { IngestReceipt, problemResponses, SamplesBody, SessionIdParams } from '../../contract/schemas.ts';
import type { HttpIngest } from '../../ingest/http-ingest.ts';
import type { BodyMedia } from '../../ingest/sample-bodies.ts';
import type { SessionRepository } from '../../storage/session-repository.ts';
import { admitWriter } from './session-admission.ts';
import { findSessionOr404 } from './sessions.ts';

export interface SampleRoutesOptions {
  config: Config;
  repository: SessionRepository;
  httpIngest: HttpIngest;
}

const mediaTypes: Record<string, BodyMedia> = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
  'text/csv': 'csv',
};

interface RawBody {
  media: BodyMedia;
  bytes: Buffer;
}

export const sampleRoutes: FastifyPluginAsyncTypebox<SampleRoutesOptions> = async (server, options) => {
  const { config, repository, httpIngest } = options;
  // In this plugin only: every other route keeps the server's JSON parsing.
  server.removeAllContentTypeParsers();
  for (const [type, media] of Object.entries(mediaTypes)) {
    server.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: config.ingest.maxFrameBytes }, (_request, bytes, done) =>
      done(null, { media, bytes: bytes as Buffer } satisfies RawBody),
    );
  }
  server.setErrorHandler(async (error: FastifyError) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      throw new Problem('frame_too_large', `the body is over ${config.ingest.maxFrameBytes} bytes (INGEST_MAX_FRAME_BYTES)`);
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      throw new Problem('unsupported_media_type', `the body must be ${Object.keys(mediaTypes).join(', ')}`);
    }
    throw error;
  });

  server.post(
    '/api/v1/sessions/:id/samples',
    {
      config: { access: { scope: 'sessions:write', on: 'session', ingestToken: true } },
      // The body is bytes that the ingest rules decode, and the id any text (404 when not a session's): the schema only documents them.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Send samples (HTTP ingest)',
        description:
          'For producers that cannot hold a socket. The body is a JSON frame of the ingest socket, NDJSON (a Sample a line) ' +
          'or CSV (a header naming seq, t and the channels, in any order). Answered only once every sample is committed; ' +
          '4xx and 429 store nothing. One request at a time per session: while another producer is attached, 409.',
        tags: ['sessions'],
        params: SessionIdParams,
        body: {
          content: {
            'application/json': { schema: SamplesBody },
            'application/x-ndjson': { schema: Type.String({ description: 'One Sample (JSON) a line.' }) },
            'text/csv': { schema: Type.String({ description: 'seq,t,<channels> header, then one sample a line.' }) },
          },
        },
        security: [{ ingestToken: [] }, { bearer: [] }],
        response: { 200: IngestReceipt, ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429, 503) },
      },
    },
    async (request) => {
      const record = await findSessionOr404(repository, request.params.id);
      admitWriter(config, request, record);
      const body = request.body as RawBody | undefined;
      if (body === undefined || body.bytes.length === 0) {
        throw new Problem('invalid_frame', 'the body is empty: send {"samples":[...]}, NDJSON or CSV');
      }
      const outcome = await httpIngest.ingest(record, body.bytes, body.media);
      if (!outcome.ok) throw new Problem(outcome.code, outcome.message, outcome.retryAfterS);
      return outcome.receipt;
    },
  );
};
