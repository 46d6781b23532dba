import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { ecPrivateJwk } from '../support/access.ts';

const databaseUrl = 'postgres://127.0.0.1/wavehouse';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
}

test('access defaults: open mode, 15-minute access tokens, 30-day refresh tokens, no identity provider', () => {
  const { access } = loadConfig({});
  assert.equal(access.mode, 'open');
  assert.equal(access.accessTokenTtlS, 900);
  assert.equal(access.refreshTokenTtlS, 2_592_000);
  assert.equal(access.cacheTtlMs, 30_000);
  assert.equal(access.auditRetentionDays, 365);
  assert.equal(access.oidc, null);
  assert.deepEqual(access.previousKeys, []);
});

test('AUDIT_RETENTION_DAYS: 0 keeps the audit forever; a negative, fractional or absurd one is a config error', () => {
  assert.equal(loadConfig({ AUDIT_RETENTION_DAYS: '0' }).access.auditRetentionDays, 0);
  assert.equal(loadConfig({ AUDIT_RETENTION_DAYS: '90' }).access.auditRetentionDays, 90);
  for (const value of ['-1', '1.5', 'forever', '36501']) {
    assert.match(
      problemsOf({ AUDIT_RETENTION_DAYS: value }).join('\n'),
      /AUDIT_RETENTION_DAYS: expected an integer from 0 to 36500/,
      value,
    );
  }
});

test('an AUTH_MODE other than open or private is a config error', () => {
  assert.match(problemsOf({ AUTH_MODE: 'closed' }).join('\n'), /AUTH_MODE: expected one of open, private/);
});

test('private mode with DATABASE_URL and no signing key is refused; with a key, or embedded, it starts', () => {
  assert.match(problemsOf({ AUTH_MODE: 'private', DATABASE_URL: databaseUrl }).join('\n'), /ACCESS_TOKEN_SIGNING_KEY/);
  const key = JSON.stringify(ecPrivateJwk());
  assert.equal(loadConfig({ AUTH_MODE: 'private', DATABASE_URL: databaseUrl, ACCESS_TOKEN_SIGNING_KEY: key }).access.mode, 'private');
  assert.equal(loadConfig({ AUTH_MODE: 'private' }).access.signingKey, null);
});

test('previous keys: a JSON array, one JWK, or PEM blocks; anything else is a config error', () => {
  const jwk = ecPrivateJwk();
  assert.equal(loadConfig({ ACCESS_TOKEN_PREVIOUS_KEYS: JSON.stringify([jwk, jwk]) }).access.previousKeys.length, 2);
  assert.equal(loadConfig({ ACCESS_TOKEN_PREVIOUS_KEYS: JSON.stringify(jwk) }).access.previousKeys.length, 1);
  const pem = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----';
  assert.equal(loadConfig({ ACCESS_TOKEN_PREVIOUS_KEYS: `${pem}\n${pem}` }).access.previousKeys.length, 2);
  assert.match(problemsOf({ ACCESS_TOKEN_PREVIOUS_KEYS: '[1]' }).join('\n'), /ACCESS_TOKEN_PREVIOUS_KEYS/);
  assert.match(problemsOf({ ACCESS_TOKEN_PREVIOUS_KEYS: 'not a key' }).join('\n'), /ACCESS_TOKEN_PREVIOUS_KEYS/);
});

test('the identity provider needs its JWKS URL, issuer and audience together', () => {
  assert.match(problemsOf({ AUTH_ISSUER: 'https://idp.example' }).join('\n'), /set all three/);
  const { oidc } = loadConfig({
    AUTH_JWKS_URL: 'https://idp.example/certs',
    AUTH_ISSUER: 'https://idp.example',
    AUTH_AUDIENCE: 'wavehouse',
    AUTH_ROLES_CLAIM: 'realm_access.roles',
  }).access;
  assert.deepEqual(oidc, {
    jwksUrl: 'https://idp.example/certs',
    issuer: 'https://idp.example',
    audience: 'wavehouse',
    rolesClaim: 'realm_access.roles',
  });
});
