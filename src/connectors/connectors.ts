/**
 * The connectors part, built from Config: its kinds, the secret key (configured, or with the
 * embedded database a key file beside the database's password), the upstream client and its
 * policies, the runner and the service the routes call. app.ts only starts the runner and hands
 * the service to the routes.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { type ConnectorCounters, connectorCounters, type Metrics } from '../observability/metrics.ts';
import type { LockPort, SessionCoordinator } from '../sessions/session-coordinator.ts';
import type { ConnectorRepository } from '../storage/connector-repository.ts';
import type { ConnectorConfig, ConnectorKind, ConnectorKindName } from './connector-kind.ts';
import { ConnectorRunner } from './connector-runner.ts';
import { loadOrCreateSecretKey } from './connector-secrets.ts';
import { type ConnectorAudit, ConnectorService } from './connector-service.ts';
import { StreamIntake, type StreamSessions } from './stream-intake.ts';
import { thingSpeak } from './thingspeak.ts';
import { twelveData } from './twelvedata.ts';
import { upstreamGet } from './upstream-client.ts';
import { UpstreamPolicies } from './upstream-policies.ts';

/** A kind for each the contract names, taking the config its schema declares: a kind added to one and not the other does not compile. */
const builtInKinds: { [K in ConnectorKindName]: ConnectorKind<ConnectorConfig<K>, K> } = {
  thingspeak: thingSpeak,
  twelvedata: twelveData,
};

/** Every built-in kind, by name. */
export const connectorKinds: ReadonlyMap<string, ConnectorKind<unknown>> = new Map(
  Object.values(builtInKinds).map((kind) => [kind.kind, kind as ConnectorKind<unknown>]),
);

export interface ConnectorParts {
  config: Config;
  /** Whether the database is the embedded one, whose data dir may hold a generated key. */
  embedded: boolean;
  repository: ConnectorRepository;
  sessions: StreamSessions;
  coordinator: SessionCoordinator;
  locks: LockPort;
  metrics: Metrics;
  audit: ConnectorAudit;
  log: Logger;
}

export async function buildConnectors(parts: ConnectorParts): Promise<{ runner: ConnectorRunner; service: ConnectorService }> {
  const { config, repository, metrics, log } = parts;
  const settings = config.connectors;
  const secretKey = settings.secretKey ?? (parts.embedded ? await loadOrCreateSecretKey(config.database.dataDir) : null);
  const counters: ConnectorCounters = connectorCounters(metrics);
  const intake = new StreamIntake({
    coordinator: parts.coordinator,
    sessions: parts.sessions,
    commitTimeoutMs: config.ingest.httpCommitTimeoutMs,
  });
  const runner = new ConnectorRunner({
    repository,
    kinds: connectorKinds,
    intake,
    locks: parts.locks,
    policies: new UpstreamPolicies(settings.upstream),
    get: upstreamGet({ maxBodyBytes: settings.upstream.maxBodyBytes }),
    secretKey,
    counters,
    log: log.child({ part: 'connectors' }),
    claimIntervalMs: settings.claimIntervalMs,
  });
  metrics.observeConnectors(runner.gauges());
  const service = new ConnectorService({
    repository,
    kinds: connectorKinds,
    secretKey,
    minPollIntervalMs: settings.minPollIntervalMs,
    audit: parts.audit,
    wake: () => runner.wake(),
  });
  return { runner, service };
}
