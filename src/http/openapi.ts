/**
 * docs/API_CONTRACT.yml, generated from the route schemas (docs/architecture.md, principle 5):
 * the same server factory and route plugins as the running service, registered with parts that
 * are never called, since generating the document runs no handler.
 */
import { pino } from 'pino';
import { loadConfig } from '../config.ts';
import { createMetrics } from '../observability/metrics.ts';
import { type ApiParts, registerApi } from './api.ts';
import { createHttpServer } from './server.ts';

/** Only the config is read while routes register; the rest serve requests, and none comes. */
function unusedParts(): ApiParts {
  return { config: loadConfig({}), metrics: createMetrics() } as ApiParts;
}

export async function generateContractYaml(): Promise<string> {
  const parts = unusedParts();
  const server = await createHttpServer({
    config: parts.config,
    metrics: parts.metrics,
    rateLimitRedis: null,
    log: pino({ level: 'silent' }),
    isDraining: () => false,
  });
  await registerApi(server, parts);
  await server.ready();
  const yaml = server.swagger({ yaml: true });
  await server.close();
  return yaml;
}
