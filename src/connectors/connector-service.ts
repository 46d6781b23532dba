/**
 * The connectors API's application side (docs/connectors.md): create, list, get, pause,
 * resume and delete, each change audited as key changes are. A connector's secrets are split
 * from its config and sealed before anything is stored; its view has their names, never them.
 */
import type { AuditContext, AuditEvent } from '../access/audit-trail.ts';
import type { ConnectorRecord, ConnectorRepository } from '../storage/connector-repository.ts';
import type { ConnectorKind } from './connector-kind.ts';
import { sealSecrets } from './connector-secrets.ts';
import { type CreditsView, creditsView } from './credit-budget.ts';

export interface ConnectorAudit {
  record(context: AuditContext, event: AuditEvent): void;
}

export interface NewConnectorRequest {
  kind: string;
  name: string;
  config: Record<string, unknown>;
  pollIntervalS?: number;
}

export type CreateOutcome =
  | { ok: true; connector: ConnectorRecord }
  | { ok: false; problem: 'invalid_request' | 'connector_secrets_off' | 'outside_key_prefix'; detail: string };

/**
 * Whether the caller reaches a stream key (an API key's keyPrefix, docs/security.md): a connector
 * is seen and changed only by callers that reach every stream it feeds, as its sessions would be.
 */
export type ReachesKey = (key: string) => boolean;

export interface ConnectorServiceOptions {
  repository: ConnectorRepository;
  kinds: ReadonlyMap<string, ConnectorKind<unknown>>;
  secretKey: Buffer | null;
  minPollIntervalMs: number;
  audit: ConnectorAudit;
  /** Told of a connector that may be polled now (created, resumed): the runner takes it up without waiting. */
  wake: () => void;
}

const defaultPollIntervalS = 15;

export type ConnectorState = 'running' | 'paused' | 'failing';

export function connectorState(record: ConnectorRecord): ConnectorState {
  if (record.paused) return 'paused';
  return record.lastError === null ? 'running' : 'failing';
}

export class ConnectorService {
  constructor(private readonly options: ConnectorServiceOptions) {}

  async create(request: NewConnectorRequest, reaches: ReachesKey, context: AuditContext): Promise<CreateOutcome> {
    const { kinds, secretKey, minPollIntervalMs, repository, audit } = this.options;
    const kind = kinds.get(request.kind);
    if (kind === undefined) return { ok: false, problem: 'invalid_request', detail: `no connector kind ${request.kind}` };
    const outside = kind.streamKeys(request.config).find((key) => !reaches(key));
    if (outside !== undefined) {
      return { ok: false, problem: 'outside_key_prefix', detail: `the stream ${outside} is outside this credential's keyPrefix` };
    }
    const pollIntervalS = request.pollIntervalS ?? defaultPollIntervalS;
    if (pollIntervalS * 1_000 < minPollIntervalMs) {
      return { ok: false, problem: 'invalid_request', detail: `pollIntervalS must be at least ${minPollIntervalMs / 1_000}` };
    }
    const config: Record<string, unknown> = {};
    const secrets: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.config)) {
      if (kind.secretKeys.includes(name)) secrets[name] = String(value);
      else config[name] = value;
    }
    const secretNames = Object.keys(secrets);
    if (secretNames.length > 0 && secretKey === null) {
      return {
        ok: false,
        problem: 'connector_secrets_off',
        detail: `this server cannot store ${secretNames.join(', ')}: it has no CONNECTOR_SECRET_KEY`,
      };
    }
    const id = crypto.randomUUID();
    const connector = await repository.insert({
      id,
      kind: kind.kind,
      name: request.name,
      config,
      secrets: secretNames.length > 0 && secretKey !== null ? sealSecrets(secretKey, id, secrets) : null,
      secretNames,
      pollIntervalS,
    });
    audit.record(context, { action: 'connector.create', target: id, outcome: 'success' });
    this.options.wake();
    return { ok: true, connector };
  }

  /** The connector's credit budget and what is spent of it now; null for a kind without one. */
  credits(record: ConnectorRecord): CreditsView | null {
    const terms = this.options.kinds.get(record.kind)?.credits?.(record.config);
    return terms === undefined ? null : creditsView(terms, record.credits, Date.now());
  }

  async list(reaches: ReachesKey): Promise<ConnectorRecord[]> {
    return (await this.options.repository.list()).filter((record) => this.reachable(record, reaches));
  }

  /** The connector, null when there is none or the caller does not reach it (answered alike: 404). */
  async find(id: string, reaches: ReachesKey): Promise<ConnectorRecord | null> {
    const record = await this.options.repository.find(id);
    return record !== null && this.reachable(record, reaches) ? record : null;
  }

  async setPaused(id: string, paused: boolean, reaches: ReachesKey, context: AuditContext): Promise<ConnectorRecord | null> {
    if ((await this.find(id, reaches)) === null) return null;
    const connector = await this.options.repository.setPaused(id, paused);
    if (connector === null) return null;
    this.options.audit.record(context, { action: 'connector.update', target: id, outcome: paused ? 'paused' : 'resumed' });
    if (!paused) this.options.wake();
    return connector;
  }

  async delete(id: string, reaches: ReachesKey, context: AuditContext): Promise<ConnectorRecord | null> {
    if ((await this.find(id, reaches)) === null) return null;
    const connector = await this.options.repository.delete(id);
    if (connector !== null) this.options.audit.record(context, { action: 'connector.delete', target: id, outcome: 'success' });
    return connector;
  }

  private reachable(record: ConnectorRecord, reaches: ReachesKey): boolean {
    return this.options.kinds.get(record.kind)?.streamKeys(record.config).every(reaches) === true;
  }
}
