/**
 * REST: pull connectors (docs/connectors.md). Changing one needs `connectors:write`; reading
 * them needs `sessions:read`, as listing sessions does, since a connector names the sessions it
 * feeds and a session id reads it. A connector's secrets are never answered.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type ConnectorService, connectorState, type ReachesKey } from '../../connectors/connector-service.ts';
import type { CreditsView } from '../../connectors/credit-budget.ts';
import {
  type Connector,
  ConnectorIdParams,
  ConnectorList,
  Connector as ConnectorSchema,
  CreateConnectorBody,
} from '../../contract/connector-schemas.ts';
import { Problem } from '../../contract/errors.ts';
import { problemResponses, uuidPattern } from '../../contract/schemas.ts';
import type { ConnectorRecord } from '../../storage/connector-repository.ts';
import { auditContext } from '../access-guard.ts';

export interface ConnectorRoutesOptions {
  connectors: ConnectorService;
}

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function connectorView(record: ConnectorRecord, credits: CreditsView | null): Connector {
  return {
    id: record.id,
    kind: record.kind,
    name: record.name,
    config: record.config,
    secrets: record.secretNames,
    pollIntervalS: record.pollIntervalS,
    createdAt: record.createdAt.toISOString(),
    state: connectorState(record),
    lastPollAt: iso(record.lastPollAt),
    lastSuccessAt: iso(record.lastSuccessAt),
    lastError: record.lastError,
    failingSince: iso(record.failingSince),
    breaker: record.breaker,
    breakerOpenSince: iso(record.breakerOpenSince),
    lastRecordAt: iso(record.lastRecordAt),
    nextPollAt: record.paused ? null : iso(record.nextPollAt),
    credits,
    sessions: record.streams,
  };
}

const write = { access: { scope: 'connectors:write', on: 'collection' } } as const;
const read = { access: { scope: 'sessions:read', on: 'collection' } } as const;
const common = { tags: ['connectors'], security: [{ bearer: [] }] };

/** The stream keys the caller reaches: all, or those under its key's keyPrefix. */
function reachesOf(request: FastifyRequest): ReachesKey {
  const { principal } = request.access;
  return (key) => principal.reaches({ id: '', key });
}

function found(connectors: ConnectorService, id: string, record: ConnectorRecord | null): Connector {
  if (record === null) throw new Problem('not_found', `no connector ${id}`);
  return connectorView(record, connectors.credits(record));
}

export const connectorRoutes: FastifyPluginAsyncTypebox<ConnectorRoutesOptions> = async (server, { connectors }) => {
  server.post(
    '/api/v1/connectors',
    {
      config: write,
      schema: {
        ...common,
        summary: 'Create a connector',
        description:
          'Polls an upstream API into a stream (a session keyed by the kind, created by the first poll). ' +
          'Secret config members are stored encrypted and never answered. Needs connectors:write; with a keyPrefix, ' +
          'every stream key the connector would feed must be under it (else 403 outside_key_prefix).',
        body: CreateConnectorBody,
        response: { 201: ConnectorSchema, ...problemResponses(400, 401, 403, 429, 501, 503) },
      },
    },
    async (request, reply) => {
      const created = await connectors.create(request.body, reachesOf(request), auditContext(request));
      if (!created.ok) throw new Problem(created.problem, created.detail);
      return reply.code(201).send(connectorView(created.connector, connectors.credits(created.connector)));
    },
  );

  server.get(
    '/api/v1/connectors',
    {
      config: read,
      schema: {
        ...common,
        summary: 'List the connectors, with their status',
        description:
          'Oldest first; with a key that has a keyPrefix, only the connectors whose streams are all under it. Needs sessions:read.',
        response: { 200: ConnectorList, ...problemResponses(401, 403, 429, 503) },
      },
    },
    async (request) => ({
      connectors: (await connectors.list(reachesOf(request))).map((record) => connectorView(record, connectors.credits(record))),
    }),
  );

  server.get(
    '/api/v1/connectors/:id',
    {
      config: read,
      schema: {
        ...common,
        summary: 'A connector and its status',
        description:
          'state is failing from the first poll that failed after its retries until one succeeds, with lastError set; ' +
          'breaker tells an upstream failing (open since breakerOpenSince) from a device gone silent (lastRecordAt old, ' +
          'polls succeeding). Needs sessions:read.',
        params: ConnectorIdParams,
        response: { 200: ConnectorSchema, ...problemResponses(401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      return found(connectors, id, uuidPattern.test(id) ? await connectors.find(id, reachesOf(request)) : null);
    },
  );

  for (const action of ['pause', 'resume'] as const) {
    server.post(
      `/api/v1/connectors/:id/${action}`,
      {
        config: write,
        schema: {
          ...common,
          summary: action === 'pause' ? 'Pause a connector' : 'Resume a paused connector',
          description:
            action === 'pause'
              ? 'Polling stops before its next poll; a poll under way finishes. Idempotent. Needs connectors:write.'
              : 'Polling starts again on some instance, from what is stored. Idempotent. Needs connectors:write.',
          params: ConnectorIdParams,
          response: { 200: ConnectorSchema, ...problemResponses(401, 403, 404, 429, 503) },
        },
      },
      async (request) => {
        const { id } = request.params;
        return found(
          connectors,
          id,
          uuidPattern.test(id) ? await connectors.setPaused(id, action === 'pause', reachesOf(request), auditContext(request)) : null,
        );
      },
    );
  }

  server.delete(
    '/api/v1/connectors/:id',
    {
      config: write,
      schema: {
        ...common,
        summary: 'Delete a connector',
        description: 'Polling stops; the sessions it fed, and their data, stay. Answers the connector as it was. Needs connectors:write.',
        params: ConnectorIdParams,
        response: { 200: ConnectorSchema, ...problemResponses(401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      return found(connectors, id, uuidPattern.test(id) ? await connectors.delete(id, reachesOf(request), auditContext(request)) : null);
    },
  );
};
