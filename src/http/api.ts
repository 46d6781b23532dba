/**
 * The API: every route plugin, registered top to bottom, each handed the parts it uses.
 * Here rather than in app.ts so that the contract generator (openapi.ts) registers exactly the
 * routes the service serves without importing the composition root.
 */
import type { Access } from '../access/access-service.ts';
import { type DataRoutesOptions, dataRoutes } from './routes/data.ts';
import { type HealthRoutesOptions, healthRoutes } from './routes/health.ts';
import { type MetricsRoutesOptions, metricsRoutes } from './routes/metrics.ts';
import { pageRoutes } from './routes/pages.ts';
import { type SessionRoutesOptions, sessionRoutes } from './routes/sessions.ts';
import { type SocketRoutesOptions, socketRoutes } from './routes/sockets.ts';
import type { HttpServer } from './server.ts';

export type ApiParts = HealthRoutesOptions &
  MetricsRoutesOptions &
  SessionRoutesOptions &
  DataRoutesOptions &
  SocketRoutesOptions & { access: Access };

export async function registerApi(server: HttpServer, parts: ApiParts): Promise<void> {
  await server.register(healthRoutes, parts);
  await server.register(metricsRoutes, parts);
  await server.register(sessionRoutes, parts);
  await server.register(dataRoutes, parts);
  await server.register(socketRoutes, parts);
  await server.register(pageRoutes);
}
