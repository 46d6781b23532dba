/**
 * Access on the real PostgreSQL (migration 005): API keys, refresh-token families and the
 * audit log, through their repositories and the src/access/ classes built on them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AccessTokens } from '../../src/access/access-tokens.ts';
import { ApiKeys } from '../../src/access/api-keys.ts';
import { AuditTrail } from '../../src/access/audit-trail.ts';
import { Authenticator } from '../../src/access/authenticator.ts';
import { classifyCredential } from '../../src/access/bearer.ts';
import { hashSecret, newApiKey, newRefreshToken } from '../../src/access/key-format.ts';
import { LastUsedTracker } from '../../src/access/last-used.ts';
import { signingKeyFrom } from '../../src/access/signing-keys.ts';
import { type TokenPair, TokenService } from '../../src/access/token-service.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ApiKeyRepository, type KeyUse } from '../../src/storage/api-key-repository.ts';
import { AuditRepository } from '../../src/storage/audit-repository.ts';
import { createPool, type Pool } from '../../src/storage/database.ts';
import { RefreshTokenRepository } from '../../src/storage/refresh-token-repository.ts';
import { ecPrivateJwk } from '../support/access.ts';
import { freshDatabase, type TestDatabase } from '../support/database.ts';

const log = createLogger('silent');
const cli = { actor: 'cli', ip: null, requestId: null };
const caller = { ip: '192.0.2.10', requestId: 'req-1' };

let database: TestDatabase;
let pool: Pool;

before(async () => {
  database = await freshDatabase();
  pool = createPool(database.url, 8, log);
});
after(async () => {
  await pool.end();
  await database.drop();
});

/** Every part, on one clock the test moves. */
async function parts() {
  let now = Date.now();
  const clock = () => now;
  const keysRepository = new ApiKeyRepository({ pool });
  const auditRepository = new AuditRepository({ pool });
  const refreshRepository = new RefreshTokenRepository({ pool });
  const audit = new AuditTrail({ store: auditRepository, clock });
  const accessTokens = new AccessTokens({ signingKey: await signingKeyFrom(JSON.stringify(ecPrivateJwk())), clock });
  const authenticator = new Authenticator({ keys: keysRepository, accessTokens, audit, clock });
  const keys = new ApiKeys({ store: keysRepository, authenticator, audit, clock });
  const tokens = new TokenService({ accessTokens, store: refreshRepository, audit, clock });
  const authenticate = async (text: string) => {
    const outcome = await authenticator.authenticate(classifyCredential(text), { ip: caller.ip });
    return outcome.ok ? outcome.principal : outcome.code;
  };
  const principalOf = async (text: string) => {
    const outcome = await authenticator.authenticate(classifyCredential(text), { ip: caller.ip });
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.code);
    return outcome.principal;
  };
  const createKey = async (request: Parameters<ApiKeys['create']>[0] = { name: 'test', role: 'writer' }) => {
    const created = await keys.create(request, cli);
    assert.ok(created.ok, created.ok ? '' : created.problem);
    return created;
  };
  return {
    keysRepository,
    auditRepository,
    refreshRepository,
    audit,
    authenticator,
    keys,
    tokens,
    authenticate,
    principalOf,
    createKey,
    clock,
    advance: (ms: number) => (now += ms),
  };
}

async function auditRows(action: string): Promise<{ actor: string; target: string | null; outcome: string; count: number }[]> {
  const { rows } = await pool.query('SELECT actor, target, outcome, count FROM audit_log WHERE action = $1 ORDER BY id', [action]);
  return rows;
}

describe('API keys', () => {
  test('a key is created with a role, shown once, stored as its hash, and found by it', async () => {
    const { keys, createKey, principalOf, audit } = await parts();
    const created = await createKey({ name: 'ingest robot', role: 'writer', keyPrefix: 'plant-1/', limits: { requestsPerMinute: 120 } });
    assert.match(created.key, /^wh_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(created.view.scopes, ['sessions:read', 'sessions:write']);
    const { rows } = await pool.query('SELECT key_hash FROM api_keys WHERE id = $1', [created.view.id]);
    assert.deepEqual(rows[0].key_hash, hashSecret(created.key));
    const principal = await principalOf(created.key);
    assert.equal(principal.keyId, created.view.id);
    assert.equal(principal.keyPrefix, 'plant-1/');
    assert.deepEqual(principal.limits, { requestsPerMinute: 120 });
    const listed = (await keys.list()).find((view) => view.id === created.view.id);
    assert.ok(listed);
    assert.equal('keyHash' in listed, false);
    await audit.flush();
    assert.deepEqual(
      (await auditRows('key.create')).find((row) => row.target === created.view.id),
      { actor: 'cli', target: created.view.id, outcome: 'success', count: 1 },
    );
  });

  test('what cannot be granted is refused before anything is stored', async () => {
    const { keys } = await parts();
    const { rows: before } = await pool.query('SELECT count(*)::int AS n FROM api_keys');
    const bad = [
      { name: '', role: 'reader' },
      { name: 'x', role: 'root' },
      { name: 'x', scopes: ['sessions:read', 'sessions:delete'] },
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['admin'], role: 'admin' },
      { name: 'x', role: 'reader', keyPrefix: 'a b' },
      { name: 'x', role: 'reader', expiresAt: new Date(Date.now() - 1000) },
      { name: 'x', role: 'reader', limits: { maxSockets: 0 } },
      { name: 'x\u0000', role: 'reader' },
    ];
    for (const request of bad) assert.equal((await keys.create(request, cli)).ok, false, JSON.stringify(request));
    const { rows: afterwards } = await pool.query('SELECT count(*)::int AS n FROM api_keys');
    assert.equal(afterwards[0].n, before[0].n);
  });

  test('an expired key is refused; a revoked one at once, audited once however often it is revoked', async () => {
    const { keys, createKey, authenticate, advance, clock, audit } = await parts();
    const expiring = await createKey({ name: 'short', role: 'reader', expiresAt: new Date(clock() + 60_000) });
    assert.notEqual(typeof (await authenticate(expiring.key)), 'string');
    advance(60_000);
    assert.equal(await authenticate(expiring.key), 'credential_expired');

    const revoked = await createKey();
    assert.notEqual(typeof (await authenticate(revoked.key)), 'string');
    const view = await keys.revoke(revoked.view.id, cli);
    assert.ok(view?.revokedAt instanceof Date);
    assert.equal(await authenticate(revoked.key), 'credential_revoked');
    assert.equal((await keys.revoke(revoked.view.id, cli))?.revokedAt?.getTime(), view.revokedAt.getTime());
    assert.equal(await keys.revoke(randomUUID(), cli), null);
    assert.equal(await keys.revoke('not-a-uuid', cli), null);
    await audit.flush();
    assert.equal((await auditRows('key.revoke')).filter((row) => row.target === revoked.view.id).length, 1);
  });

  test('another instance sees a revocation when its cache entry expires, and at once when told', async () => {
    const here = await parts();
    const elsewhere = await parts();
    const { key, view } = await here.createKey();
    assert.notEqual(typeof (await elsewhere.authenticate(key)), 'string');
    await here.keys.revoke(view.id, cli);
    assert.notEqual(typeof (await elsewhere.authenticate(key)), 'string');
    elsewhere.advance(30_000);
    assert.equal(await elsewhere.authenticate(key), 'credential_revoked');

    const second = await here.createKey();
    const third = await parts();
    assert.notEqual(typeof (await third.authenticate(second.key)), 'string');
    await here.keys.revoke(second.view.id, cli);
    third.authenticator.revoked(second.view.id);
    assert.equal(await third.authenticate(second.key), 'credential_revoked');
  });

  test('concurrent lookups go together; unknown hashes and ids are no key', async () => {
    const { keysRepository, createKey } = await parts();
    const created = await Promise.all(Array.from({ length: 5 }, () => createKey()));
    const wanted = [...created.map(({ key }) => hashSecret(key)), ...Array.from({ length: 300 }, () => newApiKey().hash)];
    const found = await Promise.all(wanted.map((hash) => keysRepository.findByHash(hash)));
    assert.deepEqual(
      found.slice(0, 5).map((record) => record?.id),
      created.map(({ view }) => view.id),
    );
    assert.ok(found.slice(5).every((record) => record === null));
    assert.equal(await keysRepository.findById('nope'), null);
    assert.equal(await keysRepository.findById(randomUUID()), null);
  });

  test('last use is written in one batched UPDATE per flush, and never moves back', async () => {
    const { keysRepository, createKey } = await parts();
    const [first, second] = [await createKey(), await createKey()];
    const writes: (readonly KeyUse[])[] = [];
    const tracker = new LastUsedTracker({
      store: {
        recordUse: (uses) => {
          writes.push(uses);
          return keysRepository.recordUse(uses);
        },
      },
      maxPending: 10,
    });
    const at = Date.UTC(2026, 5, 1, 12);
    for (let i = 0; i < 1_000; i += 1) tracker.used(first.view.id, at + i);
    tracker.used(second.view.id, at);
    for (let i = 0; i < 20; i += 1) tracker.used(randomUUID(), at);
    assert.equal(tracker.pendingKeys, 10);
    await tracker.flush();
    assert.equal(writes.length, 1);
    assert.equal((await keysRepository.findById(first.view.id))?.lastUsedAt?.getTime(), at + 999);
    assert.equal((await keysRepository.findById(second.view.id))?.lastUsedAt?.getTime(), at);
    tracker.used(first.view.id, at - 60_000);
    await tracker.close(Date.now() + 1_000);
    assert.equal((await keysRepository.findById(first.view.id))?.lastUsedAt?.getTime(), at + 999);
  });
});

describe('refresh tokens', () => {
  async function exchanged() {
    const context = await parts();
    const created = await context.createKey({ name: 'app', role: 'reader', keyPrefix: 'a/' });
    const first = await context.tokens.exchange(await context.principalOf(created.key), caller);
    assert.ok(first.ok);
    return { ...context, created, pair: first.pair };
  }

  const pairOf = (result: Awaited<ReturnType<TokenService['refresh']>>): TokenPair => {
    assert.ok(result.ok, result.ok ? '' : result.code);
    return result.pair;
  };

  test("a key's exchange answers a 15-minute access token with its grant and a single-use refresh token", async () => {
    const { pair, principalOf, created } = await exchanged();
    assert.equal(pair.expiresIn, 900);
    assert.match(pair.refreshToken, /^whr_[A-Za-z0-9_-]{43}$/);
    const principal = await principalOf(pair.accessToken);
    assert.equal(principal.kind, 'access-token');
    assert.equal(principal.keyId, created.view.id);
    assert.deepEqual(principal.scopes, ['sessions:read']);
    assert.equal(principal.keyPrefix, 'a/');
  });

  test('only an API key is exchanged, not a token', async () => {
    const { pair, tokens, principalOf } = await exchanged();
    assert.deepEqual(await tokens.exchange(await principalOf(pair.accessToken), caller), { ok: false, code: 'invalid_credential' });
  });

  test('a refresh answers a new pair and uses up its token; replaying it revokes the whole family, once, audited', async () => {
    const { pair, tokens, audit, created } = await exchanged();
    const second = pairOf(await tokens.refresh(pair.refreshToken, caller));
    const third = pairOf(await tokens.refresh(second.refreshToken, caller));
    assert.deepEqual(await tokens.refresh(pair.refreshToken, caller), { ok: false, code: 'credential_revoked' });
    assert.deepEqual(await tokens.refresh(third.refreshToken, caller), { ok: false, code: 'credential_revoked' });
    assert.deepEqual(await tokens.refresh(pair.refreshToken, caller), { ok: false, code: 'credential_revoked' });
    audit.closeWindow();
    await audit.flush();
    const revokes = (await auditRows('token_family.revoke')).filter((row) => row.actor === `key:${created.view.id}`);
    assert.deepEqual(
      revokes.map((row) => row.outcome),
      ['reuse'],
    );
  });

  test('of two refreshes racing with one token exactly one wins, and the loser revokes the family', async () => {
    for (let round = 0; round < 5; round += 1) {
      const { pair, tokens } = await exchanged();
      const outcomes = await Promise.all([tokens.refresh(pair.refreshToken, caller), tokens.refresh(pair.refreshToken, caller)]);
      assert.deepEqual(outcomes.map((outcome) => (outcome.ok ? 'ok' : outcome.code)).sort(), ['credential_revoked', 'ok']);
      const winner = pairOf(outcomes.find((outcome) => outcome.ok) ?? outcomes[0]);
      assert.deepEqual(await tokens.refresh(winner.refreshToken, caller), { ok: false, code: 'credential_revoked' });
    }
  });

  test('logout revokes the family; expired tokens and those of a revoked key are refused; unknown ones are invalid', async () => {
    const { pair, tokens, keys, created, advance, createKey, principalOf } = await exchanged();
    const next = pairOf(await tokens.refresh(pair.refreshToken, caller));
    assert.deepEqual(await tokens.logout(next.refreshToken, caller), { ok: true });
    assert.deepEqual(await tokens.logout(next.refreshToken, caller), { ok: true });
    assert.deepEqual(await tokens.refresh(next.refreshToken, caller), { ok: false, code: 'credential_revoked' });
    assert.deepEqual(await tokens.logout(newRefreshToken().secret, caller), { ok: false, code: 'invalid_credential' });
    assert.deepEqual(await tokens.refresh(newRefreshToken().secret, caller), { ok: false, code: 'invalid_credential' });
    assert.deepEqual(await tokens.refresh('whr_short', caller), { ok: false, code: 'invalid_credential' });

    const other = await createKey({ name: 'other', role: 'reader' });
    const otherPair = await tokens.exchange(await principalOf(other.key), caller);
    assert.ok(otherPair.ok);
    await keys.revoke(other.view.id, cli);
    assert.deepEqual(await tokens.refresh(otherPair.pair.refreshToken, caller), { ok: false, code: 'credential_revoked' });

    const fresh = await tokens.exchange(await principalOf(created.key), caller);
    assert.ok(fresh.ok);
    advance(30 * 24 * 60 * 60 * 1000);
    assert.deepEqual(await tokens.refresh(fresh.pair.refreshToken, caller), { ok: false, code: 'credential_expired' });
  });

  test('expired tokens are deleted in bounded batches; live ones are kept', async () => {
    const { refreshRepository, pair } = await exchanged();
    const far = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);
    const deleted = await refreshRepository.deleteExpired(far, 1_000_000);
    assert.ok(deleted >= 1);
    assert.equal(await refreshRepository.familyOf(hashSecret(pair.refreshToken)), null);
    assert.equal(await refreshRepository.deleteExpired(new Date(0), 10), 0);
  });
});

describe('audit log', () => {
  test('rows cannot be changed, deleted or truncated', async () => {
    const { auditRepository } = await parts();
    await auditRepository.append([
      { at: new Date(), actor: 'cli', action: 'key.create', target: 'k', ip: null, requestId: null, outcome: 'success', count: 1 },
    ]);
    for (const sql of ["UPDATE audit_log SET outcome = 'forged'", 'DELETE FROM audit_log', 'TRUNCATE audit_log']) {
      await assert.rejects(pool.query(sql), (error: { code?: string }) => error.code === '42501', sql);
    }
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM audit_log WHERE outcome = 'forged'");
    assert.equal(rows[0].n, 0);
  });

  test('a field too long for its column, or holding NUL, is cut rather than failing its batch', async () => {
    const { auditRepository } = await parts();
    const actor = `oidc:${'x'.repeat(1_000)}`;
    await auditRepository.append([
      {
        at: new Date(),
        actor,
        action: 'session.create',
        target: 's',
        ip: null,
        requestId: 'a\u0000b'.repeat(200),
        outcome: 'success',
        count: 1,
      },
      { at: new Date(), actor: 'cli', action: 'session.create', target: 't', ip: null, requestId: null, outcome: 'success', count: 1 },
    ]);
    const { rows } = await pool.query("SELECT actor, request_id FROM audit_log WHERE actor LIKE 'oidc:xxx%'");
    assert.deepEqual(rows, [{ actor: actor.slice(0, 300), request_id: 'ab'.repeat(100) }]);
  });

  test('pages newest first with a cursor, by actor or action', async () => {
    const { audit } = await parts();
    const actor = `key:${randomUUID()}`;
    for (let i = 0; i < 250; i += 1) {
      audit.record(
        { actor, ip: '192.0.2.1', requestId: `r${i}` },
        { action: i % 5 === 0 ? 'session.end' : 'session.create', target: `s${i}`, outcome: 'success' },
      );
    }
    await audit.flush();
    const targets: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await audit.list({ actor, limit: 100, cursor });
      assert.ok(page.ok);
      targets.push(...page.entries.map((entry) => entry.target ?? ''));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(
      targets,
      Array.from({ length: 250 }, (_, i) => `s${249 - i}`),
    );
    const ends = await audit.list({ actor, action: 'session.end', limit: 1000 });
    assert.ok(ends.ok);
    assert.equal(ends.entries.length, 50);
    assert.ok(ends.entries.every((entry) => entry.action === 'session.end' && entry.requestId !== null && entry.ip === '192.0.2.1'));
    const first = await audit.list({});
    assert.ok(first.ok && first.entries.length === 100);
  });

  test('a million wrong keys from one address are one row; from many, the bounded map and one overflow row', async () => {
    const { auditRepository } = await parts();
    const trail = new AuditTrail({ store: auditRepository, maxRefusalBuckets: 1_000 });
    const ip = '203.0.113.250';
    for (let i = 0; i < 1_000_000; i += 1) trail.refused({ ip, code: 'invalid_credential' });
    for (let i = 0; i < 100_000; i += 1) trail.refused({ ip: `2001:db8::${i.toString(16)}`, code: 'invalid_credential' });
    assert.equal(trail.refusalBuckets, 1_000);
    trail.closeWindow();
    await trail.close(Date.now() + 10_000);
    const { rows } = await pool.query(
      "SELECT ip, count FROM audit_log WHERE action = 'credential.refuse' " +
        "AND (ip = $1 OR ip LIKE '2001:db8::%' OR outcome = 'overflow') ORDER BY id",
      [ip],
    );
    assert.equal(rows.length, 1_001);
    assert.deepEqual(rows[0], { ip, count: 1_000_000 });
    assert.deepEqual(rows[1_000], { ip: null, count: 100_000 - 999 });
  });
});
