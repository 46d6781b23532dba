/**
 * The API: every route plugin, registered top to bottom, each handed the parts it uses.
 * Here rather than in app.ts so that the contract generator (openapi.ts) registers exactly the
 * routes the service serves without importing the composition root.
 */
import type { Access } from '../access/access-service.ts';
import { installAccessGuard } from './access-guard.ts';
import { type AggregateRoutesOptions, aggregateRoutes } from './routes/aggregates.ts';
import { type AuditRoutesOptions, auditRoutes } from './routes/audit.ts';
import { type AuthRoutesOptions, authRoutes } from './routes/auth.ts';
import { type ConnectorRoutesOptions, connectorRoutes } from './routes/connectors.ts';
import { type DataRoutesOptions, dataRoutes } from './routes/data.ts';
import { type HealthRoutesOptions, healthRoutes } from './routes/health.ts';
import { type KeyRoutesOptions, keyRoutes } from './routes/keys.ts';
import { type MetricsRoutesOptions, metricsRoutes } from './routes/metrics.ts';
import { pageRoutes } from './routes/pages.ts';
import { type SampleRoutesOptions, sampleRoutes } from './routes/samples.ts';
import { type SessionDeleteRoutesOptions, sessionDeleteRoutes } from './routes/session-deletes.ts';
import { type SessionListRoutesOptions, sessionListRoutes } from './routes/session-list.ts';
import { type SessionRoutesOptions, sessionRoutes } from './routes/sessions.ts';
import { type SocketRoutesOptions, socketRoutes } from './routes/sockets.ts';
import type { HttpServer } from './server.ts';

export type ApiParts = HealthRoutesOptions &
  MetricsRoutesOptions &
  SessionRoutesOptions &
  SessionDeleteRoutesOptions &
  SampleRoutesOptions &
  SessionListRoutesOptions &
  DataRoutesOptions &
  AggregateRoutesOptions &
  SocketRoutesOptions &
  KeyRoutesOptions &
  AuthRoutesOptions &
  AuditRoutesOptions &
  ConnectorRoutesOptions & { access: Access };

export async function registerApi(server: HttpServer, parts: ApiParts): Promise<void> {
  // On the root, so that its hook sees every route; the parts are read per request, never here.
  installAccessGuard(server, parts.config, () => parts.access);
  await server.register(healthRoutes, parts);
  await server.register(metricsRoutes, parts);
  await server.register(sessionRoutes, parts);
  await server.register(sessionDeleteRoutes, parts);
  await server.register(sessionListRoutes, parts);
  await server.register(sampleRoutes, parts);
  await server.register(dataRoutes, parts);
  await server.register(aggregateRoutes, parts);
  await server.register(socketRoutes, parts);
  await server.register(keyRoutes, parts);
  await server.register(authRoutes, parts);
  await server.register(auditRoutes, parts);
  await server.register(connectorRoutes, parts);
  await server.register(pageRoutes, { authMode: parts.config.access.mode });
}
