/**
 * The API: every route plugin, registered top to bottom, each handed the parts it uses.
 * Here rather than in app.ts so that the contract generator (openapi.ts) registers exactly the
 * routes the service serves without importing the composition root.
 */
import { dataRoutes, type DataRoutesOptions } from './routes/data.ts';
import { healthRoutes, type HealthRoutesOptions } from './routes/health.ts';
import { metricsRoutes, type MetricsRoutesOptions } from './routes/metrics.ts';
import { pageRoutes } from './routes/pages.ts';
import { sessionRoutes, type SessionRoutesOptions } from './routes/sessions.ts';
import { socketRoutes, type SocketRoutesOptions } from './routes/sockets.ts';
import type { HttpServer } from './server.ts';

export type ApiParts = HealthRoutesOptions & MetricsRoutesOptions & SessionRoutesOptions & DataRoutesOptions & SocketRoutesOptions;

export async function registerApi(server: HttpServer, parts: ApiParts): Promise<void> {
  await server.register(healthRoutes, parts);
  await server.register(metricsRoutes, parts);
  await server.register(sessionRoutes, parts);
  await server.register(dataRoutes, parts);
  await server.register(socketRoutes, parts);
  await server.register(pageRoutes);
}
