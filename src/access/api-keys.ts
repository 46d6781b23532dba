/**
 * Creating, listing and revoking API keys (POST/GET/DELETE /keys, and the CLI's `keys create`).
 * A key is shown once, at creation; only its hash is stored. A revocation takes effect at once
 * on this instance, and on the others through the broadcast (or within the cache TTL without
 * one, revocation.ts). Both are audited.
 */
import { randomUUID } from 'node:crypto';
import type { ApiKeyRecord, NewApiKey } from '../storage/api-key-repository.ts';
import type { AuditContext, AuditTrail } from './audit-trail.ts';
import type { Authenticator } from './authenticator.ts';
import { newApiKey } from './key-format.ts';
import type { KeyLimits } from './principal.ts';
import type { RevocationBroadcast } from './revocation.ts';
import { isKeyPrefix, isRole, knownScopes, parseScopes, roles, type Scope } from './scopes.ts';

export interface ApiKeyStore {
  create(key: NewApiKey): Promise<ApiKeyRecord>;
  list(limit?: number): Promise<ApiKeyRecord[]>;
  revoke(id: string): Promise<{ record: ApiKeyRecord; revokedNow: boolean } | null>;
}

export interface ApiKeysOptions {
  readonly store: ApiKeyStore;
  readonly authenticator: Pick<Authenticator, 'revoked'>;
  /** Tells the other instances of a revocation; absent with a single instance or no Redis. */
  readonly broadcast?: Pick<RevocationBroadcast, 'publish'>;
  readonly audit: Pick<AuditTrail, 'record'>;
  readonly clock?: () => number;
}

/** What is asked for: scopes, or a role that names them (the CLI's `--role`), not both. */
export interface KeyRequest {
  readonly name: string;
  readonly scopes?: readonly string[];
  readonly role?: string;
  readonly keyPrefix?: string | null;
  readonly expiresAt?: Date | null;
  readonly limits?: KeyLimits;
}

/** A key as it is shown: everything but its secret and its hash. */
export interface ApiKeyView {
  readonly id: string;
  readonly name: string;
  readonly scopes: Scope[];
  readonly keyPrefix: string | null;
  readonly expiresAt: Date | null;
  readonly limits: KeyLimits;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export type CreatedKey =
  | { readonly ok: true; readonly view: ApiKeyView; readonly key: string }
  | { readonly ok: false; readonly problem: string };

/** Bounds of the per-key limits. */
const limitBounds = { requestsPerMinute: 1_000_000, maxSockets: 100_000 } as const;

function viewOf(record: ApiKeyRecord): ApiKeyView {
  return {
    id: record.id,
    name: record.name,
    scopes: knownScopes(record.scopes),
    keyPrefix: record.keyPrefix,
    expiresAt: record.expiresAt,
    limits: record.limits as KeyLimits,
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    revokedAt: record.revokedAt,
    lastUsedAt: record.lastUsedAt,
  };
}

/** The scopes asked for, or why the request cannot be granted. */
function scopesOf(request: KeyRequest): Scope[] | string {
  if ((request.scopes === undefined) === (request.role === undefined)) return 'give scopes or a role, not both';
  if (request.role !== undefined)
    return isRole(request.role) ? [...roles[request.role]] : `role must be one of ${Object.keys(roles).join(', ')}`;
  const scopes = parseScopes(request.scopes ?? []);
  if (scopes === null || scopes.length === 0) return 'scopes must be one or more of sessions:read, sessions:write, connectors:write, admin';
  return scopes;
}

/** Why the rest of a request cannot be granted, or null if it can. */
function problemWith(request: KeyRequest, nowMs: number): string | null {
  if (request.name.length < 1 || request.name.length > 200 || /\p{Cc}/u.test(request.name))
    return 'name must be 1 to 200 characters, none a control character';
  if (request.keyPrefix != null && !isKeyPrefix(request.keyPrefix)) return 'keyPrefix must be 1 to 200 of A-Z a-z 0-9 _ . : / -';
  if (request.expiresAt != null && !(request.expiresAt.getTime() > nowMs)) return 'expiresAt must be in the future';
  for (const [name, max] of Object.entries(limitBounds)) {
    const value = request.limits?.[name as keyof KeyLimits];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1 || value > max))
      return `limits.${name} must be an integer from 1 to ${max}`;
  }
  return null;
}

export class ApiKeys {
  private readonly clock: () => number;

  constructor(private readonly options: ApiKeysOptions) {
    this.clock = options.clock ?? Date.now;
  }

  async create(request: KeyRequest, context: AuditContext): Promise<CreatedKey> {
    const scopes = scopesOf(request);
    if (typeof scopes === 'string') return { ok: false, problem: scopes };
    const problem = problemWith(request, this.clock());
    if (problem !== null) return { ok: false, problem };
    const { secret, hash } = newApiKey();
    const record = await this.options.store.create({
      id: randomUUID(),
      name: request.name,
      keyHash: hash,
      scopes,
      keyPrefix: request.keyPrefix ?? null,
      limits: { ...request.limits },
      createdBy: context.actor,
      expiresAt: request.expiresAt ?? null,
    });
    this.options.audit.record(context, { action: 'key.create', target: record.id, outcome: 'success' });
    return { ok: true, view: viewOf(record), key: secret };
  }

  async list(): Promise<ApiKeyView[]> {
    return (await this.options.store.list()).map(viewOf);
  }

  /**
   * Revokes the key everywhere; null for no such key. Revoking twice is audited once, but
   * broadcast again: a retry is how a revocation whose broadcast failed still gets out.
   */
  async revoke(id: string, context: AuditContext): Promise<ApiKeyView | null> {
    const revoked = await this.options.store.revoke(id);
    if (revoked === null) return null;
    const { record } = revoked;
    this.options.authenticator.revoked(record.id);
    if (revoked.revokedNow) this.options.audit.record(context, { action: 'key.revoke', target: record.id, outcome: 'success' });
    await this.options.broadcast?.publish(record.id);
    return viewOf(record);
  }
}
