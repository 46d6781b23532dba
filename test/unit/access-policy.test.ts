/** Scopes and roles, the Principal's checks, and what each mode allows (src/access/policy.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AuthMode, authorize, type Need, refusalStatus } from '../../src/access/policy.ts';
import { type KeyGrant, Principal } from '../../src/access/principal.ts';
import { isKeyPrefix, parseScopes, roles, scopes, scopesOfRoles } from '../../src/access/scopes.ts';

function grant(overrides: Partial<KeyGrant> = {}): KeyGrant {
  return { id: 'k1', scopes: ['sessions:read'], keyPrefix: null, expiresAtMs: null, revoked: false, limits: {}, ...overrides };
}

const session = (key: string | null, id = 's1') => ({ id, key });

describe('scopes and roles', () => {
  test('each role is a set of scopes, admin all four', () => {
    assert.deepEqual(roles.reader, ['sessions:read']);
    assert.deepEqual(roles.writer, ['sessions:read', 'sessions:write']);
    assert.deepEqual([...roles.admin].sort(), [...scopes].sort());
  });

  test('scope names parse to the table order, each once; one unknown name refuses them all', () => {
    assert.deepEqual(parseScopes(['admin', 'sessions:read', 'admin']), ['sessions:read', 'admin']);
    assert.deepEqual(parseScopes([]), []);
    assert.equal(parseScopes(['sessions:read', 'sessions:delete']), null);
    assert.equal(parseScopes(['__proto__']), null);
  });

  test("a provider's roles map to scopes; roles of other applications are left out", () => {
    assert.deepEqual(scopesOfRoles(['reader', 'billing-admin', 'writer']), ['sessions:read', 'sessions:write']);
    assert.deepEqual(scopesOfRoles(['constructor', 'toString', '__proto__']), []);
  });

  test('a key prefix is 1 to 200 characters of the session-key alphabet', () => {
    for (const good of ['a', 'plant-1/', 'site:line.2_x', 'x'.repeat(200)]) assert.equal(isKeyPrefix(good), true, good);
    for (const bad of ['', 'x'.repeat(201), 'a b', 'é', 'a*', 'a\n']) assert.equal(isKeyPrefix(bad), false, JSON.stringify(bad));
  });
});

describe('Principal', () => {
  test('a key can what its scopes say, and is named key:<id>', () => {
    const principal = Principal.key(grant({ scopes: ['sessions:read', 'sessions:write'] }));
    assert.equal(principal.actor, 'key:k1');
    assert.equal(principal.can('sessions:read'), true);
    assert.equal(principal.can('sessions:write'), true);
    assert.equal(principal.can('admin'), false);
    assert.deepEqual(principal.scopes, ['sessions:read', 'sessions:write']);
  });

  test('a prefixed key reaches sessions whose key starts with it, never a session without a key', () => {
    const principal = Principal.key(grant({ keyPrefix: 'plant-1/' }));
    assert.equal(principal.reaches(session('plant-1/line-3')), true);
    assert.equal(principal.reaches(session('plant-1/')), true);
    assert.equal(principal.reaches(session('plant-10/line-3')), false);
    assert.equal(principal.reaches(session('plant-2/line-3')), false);
    assert.equal(principal.reaches(session(null)), false);
    assert.equal(Principal.key(grant()).reaches(session(null)), true);
  });

  test('an ingest principal reaches its own session only', () => {
    const principal = Principal.ingest('s1');
    assert.equal(principal.actor, 'ingest:s1');
    assert.equal(principal.reaches(session(null, 's1')), true);
    assert.equal(principal.reaches(session(null, 's2')), false);
  });

  test('the actors of tokens and of provider subjects', () => {
    assert.equal(Principal.accessToken('k9', ['admin'], null, {}).actor, 'key:k9');
    assert.equal(Principal.oidc('alice@idp', ['sessions:read']).actor, 'oidc:alice@idp');
    assert.equal(Principal.anonymous.actor, 'anonymous');
    assert.equal(Principal.anonymous.can('sessions:read'), false);
  });
});

describe('authorize', () => {
  const read = (key: string | null = null): Need => ({ scope: 'sessions:read', session: session(key) });
  const write = (key: string | null = null): Need => ({ scope: 'sessions:write', session: session(key) });
  const create: Need = { scope: 'sessions:write' };
  const list: Need = { scope: 'sessions:read' };
  const admin: Need = { scope: 'admin' };
  const decide = (mode: AuthMode, principal: Principal, need: Need) => {
    const decision = authorize(mode, principal, need);
    return decision.ok ? 'ok' : decision.code;
  };

  test("open mode keeps today's capabilities for anyone: an id reads, anyone creates", () => {
    assert.equal(decide('open', Principal.anonymous, read()), 'ok');
    assert.equal(decide('open', Principal.anonymous, create), 'ok');
    assert.equal(decide('open', Principal.anonymous, write()), 'missing_credential');
    assert.equal(decide('open', Principal.anonymous, list), 'missing_credential');
    assert.equal(decide('open', Principal.anonymous, admin), 'missing_credential');
  });

  test('private mode: nothing without a credential, an id alone reads nothing', () => {
    for (const need of [read(), create, write(), list, admin])
      assert.equal(decide('private', Principal.anonymous, need), 'missing_credential');
  });

  test('an ingest token writes to and ends its own session in both modes, and nothing else', () => {
    for (const mode of ['open', 'private'] as const) {
      const ingest = Principal.ingest('s1');
      assert.equal(decide(mode, ingest, write()), 'ok');
      assert.equal(decide(mode, ingest, { scope: 'sessions:write', session: session(null, 's2') }), 'insufficient_scope');
      assert.equal(decide(mode, ingest, create), mode === 'open' ? 'ok' : 'insufficient_scope');
      assert.equal(decide(mode, ingest, admin), 'insufficient_scope');
    }
    assert.equal(decide('private', Principal.ingest('s1'), read()), 'insufficient_scope');
  });

  test('a key needs the scope (403 insufficient_scope), then the prefix (403 outside_key_prefix)', () => {
    const reader = Principal.key(grant({ keyPrefix: 'a/' }));
    assert.equal(decide('private', reader, read('a/1')), 'ok');
    assert.equal(decide('private', reader, read('b/1')), 'outside_key_prefix');
    assert.equal(decide('private', reader, read(null)), 'outside_key_prefix');
    assert.equal(decide('private', reader, write('a/1')), 'insufficient_scope');
    assert.equal(decide('private', reader, admin), 'insufficient_scope');
    assert.equal(decide('private', Principal.key(grant({ scopes: ['admin'] })), admin), 'ok');
  });

  test('in open mode a key adds to what anyone may do, never takes from it', () => {
    const prefixed = Principal.key(grant({ keyPrefix: 'a/', scopes: ['sessions:write'] }));
    assert.equal(decide('open', prefixed, read('b/1')), 'ok');
    assert.equal(decide('open', prefixed, write('a/1')), 'ok');
    assert.equal(decide('open', prefixed, write('b/1')), 'outside_key_prefix');
  });

  test('a refusal for a credential is 401, one for its reach 403', () => {
    assert.equal(refusalStatus('missing_credential'), 401);
    assert.equal(refusalStatus('invalid_credential'), 401);
    assert.equal(refusalStatus('credential_expired'), 401);
    assert.equal(refusalStatus('credential_revoked'), 401);
    assert.equal(refusalStatus('insufficient_scope'), 403);
    assert.equal(refusalStatus('outside_key_prefix'), 403);
  });
});
