/**
 * The authenticator (src/access/authenticator.ts) over an in-memory key store: its caches and
 * their bounds, revocation, expiry, tokens of ours and of a provider, and a brute force.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { AccessTokens } from '../../src/access/access-tokens.ts';
import { AuditTrail } from '../../src/access/audit-trail.ts';
import { Authenticator, type AuthenticatorOptions } from '../../src/access/authenticator.ts';
import { classifyCredential, type PresentedCredential } from '../../src/access/bearer.ts';
import { newApiKey } from '../../src/access/key-format.ts';
import { OidcVerifier } from '../../src/access/oidc-verifier.ts';
import { signingKeyFrom } from '../../src/access/signing-keys.ts';
import type { ApiKeyRecord } from '../../src/storage/api-key-repository.ts';
import type { AuditRow } from '../../src/storage/audit-repository.ts';
import { ecPrivateJwk } from '../support/access.ts';

/** Keys in memory, counting the lookups that reach it (each would be a database round trip). */
class MemoryKeys {
  readonly records = new Map<string, ApiKeyRecord>();
  lookups = 0;
  /** When set, lookups wait for it: a load in flight. */
  gate: Promise<void> | null = null;

  add(overrides: Partial<ApiKeyRecord> = {}): { key: string; record: ApiKeyRecord } {
    const { secret, hash } = newApiKey();
    const record: ApiKeyRecord = {
      id: randomUUID(),
      name: 'test',
      keyHash: hash,
      scopes: ['sessions:read'],
      keyPrefix: null,
      limits: { requestsPerMinute: 600 },
      createdBy: 'test',
      createdAt: new Date(),
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null,
      ...overrides,
    };
    this.records.set(record.id, record);
    return { key: secret, record };
  }

  async findByHash(hash: Buffer): Promise<ApiKeyRecord | null> {
    this.lookups += 1;
    await this.gate;
    return [...this.records.values()].find((record) => record.keyHash.equals(hash)) ?? null;
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    this.lookups += 1;
    await this.gate;
    return this.records.get(id) ?? null;
  }
}

const client = { ip: '203.0.113.7' };
const bearer = (text: string): PresentedCredential => classifyCredential(text);

function setup(options: Partial<AuthenticatorOptions> = {}) {
  let now = Date.UTC(2026, 0, 1);
  const keys = new MemoryKeys();
  const uses: [string, number][] = [];
  const refused: { code: string; keyId?: string | null }[] = [];
  const authenticator = new Authenticator({
    keys,
    clock: () => now,
    lastUsed: { used: (id, at) => uses.push([id, at]) },
    audit: { refused: (refusal) => refused.push(refusal) },
    ...options,
  });
  const check = async (text: string) => {
    const outcome = await authenticator.authenticate(bearer(text), client);
    return outcome.ok ? outcome.principal : outcome.code;
  };
  return { keys, authenticator, uses, refused, check, advance: (ms: number) => (now += ms), now: () => now };
}

describe('authenticator: API keys', () => {
  test('a key is its Principal, looked up once and then answered from memory', async () => {
    const { keys, check, uses } = setup();
    const { key, record } = keys.add({ scopes: ['sessions:read', 'admin', 'unknown:scope'], keyPrefix: 'p/' });
    for (let i = 0; i < 100; i += 1) {
      const principal = await check(key);
      assert.ok(typeof principal !== 'string');
      assert.equal(principal.kind, 'key');
      assert.equal(principal.keyId, record.id);
      assert.deepEqual(principal.scopes, ['sessions:read', 'admin']);
      assert.equal(principal.keyPrefix, 'p/');
      assert.deepEqual(principal.limits, { requestsPerMinute: 600 });
    }
    assert.equal(keys.lookups, 1);
    assert.equal(uses.length, 100);
  });

  test('concurrent requests with an uncached key make one lookup', async () => {
    const { keys, check } = setup();
    const { key } = keys.add();
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => check(key)));
    assert.ok(outcomes.every((outcome) => typeof outcome !== 'string'));
    assert.equal(keys.lookups, 1);
  });

  test('unknown, malformed and opaque credentials are all invalid_credential; a wrong key is asked about once per TTL', async () => {
    const { keys, check, advance, refused } = setup({ cacheTtlMs: 30_000 });
    const wrong = newApiKey().secret;
    for (let i = 0; i < 10; i += 1) assert.equal(await check(wrong), 'invalid_credential');
    assert.equal(keys.lookups, 1);
    advance(30_000);
    assert.equal(await check(wrong), 'invalid_credential');
    assert.equal(keys.lookups, 2);
    assert.equal(await check('wh_short'), 'invalid_credential');
    assert.equal(await check('an-ingest-token-which-only-its-session-checks'), 'invalid_credential');
    assert.equal(refused.length, 13);
    assert.ok(refused.every((refusal) => refusal.code === 'invalid_credential' && !refusal.keyId));
  });

  test('no credential is the anonymous principal, and is not a refusal', async () => {
    const { authenticator, refused } = setup();
    const outcome = await authenticator.authenticate('absent', client);
    assert.ok(outcome.ok && outcome.principal.kind === 'anonymous');
    assert.equal(refused.length, 0);
  });

  test('an expired key is credential_expired, a revoked one credential_revoked, each audited with its id', async () => {
    const { keys, check, advance, now, refused } = setup();
    const expiring = keys.add({ expiresAt: new Date(now() + 60_000) });
    const revoked = keys.add({ revokedAt: new Date(now()) });
    assert.notEqual(typeof (await check(expiring.key)), 'string');
    advance(60_000);
    assert.equal(await check(expiring.key), 'credential_expired');
    assert.equal(await check(revoked.key), 'credential_revoked');
    assert.deepEqual(
      refused.map(({ code, keyId }) => [code, keyId]),
      [
        ['credential_expired', expiring.record.id],
        ['credential_revoked', revoked.record.id],
      ],
    );
  });

  test('revoked(keyId) refuses a cached key at once; without it, a revocation elsewhere is seen within the cache TTL', async () => {
    const { keys, authenticator, check, advance } = setup({ cacheTtlMs: 30_000 });
    const first = keys.add();
    const second = keys.add();
    await check(first.key);
    await check(second.key);
    authenticator.revoked(first.record.id);
    assert.equal(await check(first.key), 'credential_revoked');
    // Revoked in the database by another instance, with no broadcast: still cached here...
    keys.records.set(second.record.id, { ...second.record, revokedAt: new Date() });
    assert.notEqual(typeof (await check(second.key)), 'string');
    // ...until the TTL runs out, which is the bound.
    advance(30_000);
    assert.equal(await check(second.key), 'credential_revoked');
  });

  test('a load in flight when the key is revoked does not bring it back', async () => {
    const { keys, authenticator, check } = setup();
    const { key, record } = keys.add();
    let open!: () => void;
    keys.gate = new Promise((resolve) => (open = resolve));
    const pending = check(key);
    authenticator.revoked(record.id);
    open();
    assert.equal(await pending, 'credential_revoked');
    assert.equal(await check(key), 'credential_revoked');
  });

  test('a flood of wrong keys from one address: bounded caches, one refusal bucket, one audit row', async () => {
    const rows: AuditRow[] = [];
    const audit = new AuditTrail({ store: { append: async (batch) => void rows.push(...batch), list: async () => [] } });
    const { keys, authenticator } = setup({ audit, maxUnknownKeys: 1_000, maxCachedKeys: 100 });
    const caches = authenticator as unknown as Record<'unknownHashes' | 'idsByHash' | 'keysById' | 'loadingByHash', { size: number }>;
    const prefix = newApiKey().secret.slice(0, 30);
    // A million go through the audit trail alone in audit-trail.test.ts; here each also makes a
    // lookup, so a tenth of that shows the same: nothing grows with the attempts.
    const attempts = 100_000;
    const concurrent = 1_000;
    for (let i = 0; i < attempts; i += concurrent) {
      await Promise.all(
        Array.from({ length: concurrent }, (_, j) =>
          authenticator.authenticate(bearer(`${prefix}${String(i + j).padStart(16, '0')}`), client),
        ),
      );
      assert.equal(caches.unknownHashes.size, Math.min(1_000, i + concurrent));
      assert.equal(caches.idsByHash.size + caches.keysById.size + caches.loadingByHash.size, 0);
      assert.equal(audit.refusalBuckets, 1);
    }
    assert.equal(keys.lookups, attempts);
    audit.closeWindow();
    await audit.flush();
    assert.deepEqual(
      rows.map(({ action, ip, outcome, count }) => ({ action, ip, outcome, count })),
      [{ action: 'credential.refuse', ip: client.ip, outcome: 'invalid_credential', count: attempts }],
    );
  });
});

describe('authenticator: access tokens', async () => {
  const signingKey = await signingKeyFrom(JSON.stringify(ecPrivateJwk()));

  function withTokens() {
    const context = setup({ accessTokens: new AccessTokens({ signingKey, clock: () => context.now() }) });
    const tokens = new AccessTokens({ signingKey, clock: () => context.now() });
    return { ...context, tokens };
  }

  test("a token is its key's principal with the token's grant and the key's limits, verified once", async () => {
    const { keys, check, tokens, uses } = withTokens();
    const { record } = keys.add({ scopes: ['sessions:read', 'sessions:write'] });
    const { accessToken } = await tokens.issue({ keyId: record.id, scopes: ['sessions:read'], keyPrefix: 'a/' });
    for (let i = 0; i < 10; i += 1) {
      const principal = await check(accessToken);
      assert.ok(typeof principal !== 'string');
      assert.equal(principal.kind, 'access-token');
      assert.equal(principal.actor, `key:${record.id}`);
      assert.deepEqual(principal.scopes, ['sessions:read']);
      assert.equal(principal.keyPrefix, 'a/');
      assert.deepEqual(principal.limits, { requestsPerMinute: 600 });
    }
    assert.equal(keys.lookups, 1);
    assert.equal(uses.length, 10);
  });

  test('revoking the key stops its live tokens at once; a token of a key that is gone is invalid', async () => {
    const { keys, authenticator, check, tokens } = withTokens();
    const { record } = keys.add();
    const { accessToken } = await tokens.issue({ keyId: record.id, scopes: ['sessions:read'], keyPrefix: null });
    assert.notEqual(typeof (await check(accessToken)), 'string');
    authenticator.revoked(record.id);
    assert.equal(await check(accessToken), 'credential_revoked');
    const orphan = await tokens.issue({ keyId: randomUUID(), scopes: ['sessions:read'], keyPrefix: null });
    assert.equal(await check(orphan.accessToken), 'invalid_credential');
  });

  test('a token expires on time even once cached', async () => {
    const { keys, check, tokens, advance } = withTokens();
    const { record } = keys.add();
    const { accessToken } = await tokens.issue({ keyId: record.id, scopes: ['sessions:read'], keyPrefix: null });
    assert.notEqual(typeof (await check(accessToken)), 'string');
    advance(900_000 + 6_000);
    assert.equal(await check(accessToken), 'credential_expired');
  });

  test("a JWT of an issuer nobody here trusts is invalid; ours and a provider's may not share an issuer", async () => {
    const { check } = withTokens();
    const foreign = await new AccessTokens({ signingKey, issuer: 'https://elsewhere' }).issue({
      keyId: randomUUID(),
      scopes: ['admin'],
      keyPrefix: null,
    });
    assert.equal(await check(foreign.accessToken), 'invalid_credential');
    const oidc = new OidcVerifier({ jwksUrl: 'http://127.0.0.1:9/jwks', issuer: 'wavehouse', audience: 'x' });
    assert.throws(() => new Authenticator({ keys: new MemoryKeys(), accessTokens: new AccessTokens({ signingKey }), oidc }), /issuer/);
  });
});
