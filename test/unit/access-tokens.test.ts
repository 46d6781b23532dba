/**
 * Our access tokens (src/access/access-tokens.ts) and their signing keys (signing-keys.ts):
 * issued and verified with jose, and every kind of bad JWT refused, each minted with jose.
 */
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { base64url, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import { AccessTokens, type TokenGrant } from '../../src/access/access-tokens.ts';
import {
  defaultKeyFile,
  generatePrivateKey,
  loadOrCreateSigningKey,
  type SigningKey,
  signingKeyFrom,
  verificationKeyFrom,
} from '../../src/access/signing-keys.ts';
import { ecPrivateJwk } from '../support/access.ts';

const grant: TokenGrant = {
  keyId: '6f1c2b8e-1d7a-4c1e-9a55-1f2e3d4c5b6a',
  scopes: ['sessions:read', 'sessions:write'],
  keyPrefix: 'plant-1/',
};
const start = Date.UTC(2026, 0, 1);

async function setup(options: { ttlS?: number } = {}) {
  let now = start;
  const signingKey = await signingKeyFrom(JSON.stringify(ecPrivateJwk()));
  const tokens = new AccessTokens({ signingKey, clock: () => now, ...options });
  return { signingKey, tokens, advance: (ms: number) => (now += ms), nowS: () => Math.floor(now / 1000) };
}

/** A JWT like ours, with `claims` and `header` changed, signed with `key`. */
function mint(
  key: KeyObject | Uint8Array,
  nowS: number,
  header: { alg: string; kid?: string; typ?: string },
  claims: JWTPayload = {},
): Promise<string> {
  return new SignJWT({ scope: 'sessions:read', ...claims })
    .setProtectedHeader({ typ: 'at+jwt', ...header })
    .setIssuer((claims.iss as string | undefined) ?? 'wavehouse')
    .setAudience((claims.aud as string | undefined) ?? 'wavehouse')
    .setSubject(grant.keyId)
    .setIssuedAt(nowS)
    .setExpirationTime((claims.exp as number | undefined) ?? nowS + 900)
    .sign(key);
}

function outcome(verified: Awaited<ReturnType<AccessTokens['verify']>>): string {
  return verified.ok ? 'ok' : verified.code;
}

describe('access tokens', () => {
  test('a token carries its key, scopes and prefix, and lives 15 minutes by default', async () => {
    const { tokens, nowS } = await setup();
    const { accessToken, expiresIn } = await tokens.issue(grant);
    assert.equal(expiresIn, 900);
    const verified = await tokens.verify(accessToken);
    assert.ok(verified.ok);
    assert.deepEqual(verified.grant, grant);
    assert.equal(verified.expiresAtMs, (nowS() + 900) * 1000);
    const unprefixed = await tokens.verify((await tokens.issue({ ...grant, keyPrefix: null })).accessToken);
    assert.ok(unprefixed.ok && unprefixed.grant.keyPrefix === null);
  });

  test('expired is told apart (a client refreshes); within the clock tolerance it is not yet', async () => {
    const { tokens, advance } = await setup({ ttlS: 60 });
    const { accessToken } = await tokens.issue(grant);
    advance(63_000);
    assert.equal(outcome(await tokens.verify(accessToken)), 'ok');
    advance(3_000);
    assert.equal(outcome(await tokens.verify(accessToken)), 'credential_expired');
  });

  test('every kind of bad JWT is refused as invalid_credential', async () => {
    const { signingKey, tokens, nowS } = await setup();
    const { accessToken } = await tokens.issue(grant);
    const [header, payload, signature] = accessToken.split('.');
    const ours = { alg: 'ES256', kid: signingKey.kid };
    const other = generatePrivateKey({ ec: 'P-256' }).key;
    const publicPem = createPublicKey(signingKey.privateKey).export({ format: 'pem', type: 'spki' }) as string;
    const tamperedPayload = base64url.encode(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'admin' }),
    );
    const hs256Header = base64url.encode(JSON.stringify({ alg: 'HS256', kid: signingKey.kid, typ: 'at+jwt' }));
    const bad: Record<string, string | Promise<string>> = {
      'not yet valid (nbf)': mint(signingKey.privateKey, nowS(), ours, { nbf: nowS() + 600 }),
      'wrong audience': mint(signingKey.privateKey, nowS(), ours, { aud: 'someone-else' }),
      'wrong issuer': mint(signingKey.privateKey, nowS(), ours, { iss: 'https://evil.example' }),
      'alg none': new UnsecuredJWT({ scope: 'admin' })
        .setIssuer('wavehouse')
        .setAudience('wavehouse')
        .setSubject(grant.keyId)
        .setIssuedAt(nowS())
        .setExpirationTime(nowS() + 900)
        .encode(),
      'HS256 signed with the public key': mint(new TextEncoder().encode(publicPem), nowS(), { alg: 'HS256', kid: signingKey.kid }),
      'another key under our kid': mint(other, nowS(), ours),
      'an unknown kid': mint(signingKey.privateKey, nowS(), { alg: 'ES256', kid: 'not-ours' }),
      'no kid': mint(signingKey.privateKey, nowS(), { alg: 'ES256' }),
      'another type (an ID token)': mint(signingKey.privateKey, nowS(), { ...ours, typ: 'JWT' }),
      'an unknown scope': mint(signingKey.privateKey, nowS(), ours, { scope: 'sessions:read root' }),
      'a prefix outside the alphabet': mint(signingKey.privateKey, nowS(), ours, { key_prefix: 'a b' }),
      'tampered payload': `${header}.${tamperedPayload}.${signature}`,
      'tampered header (alg HS256)': `${hs256Header}.${payload}.${signature}`,
      'truncated signature': accessToken.slice(0, -10),
      'no signature': `${header}.${payload}.`,
      'two parts': `${header}.${payload}`,
      'an expired token with a forged signature': mint(other, nowS() - 3600, ours, { exp: nowS() - 1800 }),
      garbage: 'eyJ.eyJ.xyz',
      'not base64': '@@@.###.$$$',
      empty: '',
    };
    for (const [name, token] of Object.entries(bad)) assert.equal(outcome(await tokens.verify(await token)), 'invalid_credential', name);
  });

  test("a rotation: the old key's tokens pass while it is a previous key, and not once it is dropped", async () => {
    const old = await setup();
    const { accessToken } = await old.tokens.issue(grant);
    const next = await signingKeyFrom(JSON.stringify(ecPrivateJwk()));
    const previous = await verificationKeyFrom(JSON.stringify(old.signingKey.publicJwk));
    const during = new AccessTokens({ signingKey: next, previousKeys: [previous], clock: () => start });
    const afterwards = new AccessTokens({ signingKey: next, clock: () => start });
    assert.equal(outcome(await during.verify(accessToken)), 'ok');
    assert.equal(outcome(await afterwards.verify(accessToken)), 'invalid_credential');
    // And the new key's tokens pass on an instance that still signs with the old one, given the new public key.
    const early = new AccessTokens({
      signingKey: old.signingKey,
      previousKeys: [await verificationKeyFrom(JSON.stringify(next.publicJwk))],
      clock: () => start,
    });
    assert.equal(outcome(await early.verify((await during.issue(grant)).accessToken)), 'ok');
  });
});

describe('signing keys', () => {
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'wavehouse-keys-'));
    dirs.push(dir);
    return dir;
  };
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  test('PEM and JWK keys of each type, with the algorithm of their type and a thumbprint kid', async () => {
    const pem = (type: 'rsa' | 'ed25519' | 'ec') =>
      generatePrivateKey(type === 'ec' ? { ec: 'P-384' } : type === 'rsa' ? { rsa: 2048 } : 'ed25519').pem;
    const rsa = await signingKeyFrom(pem('rsa'));
    assert.equal(rsa.alg, 'RS256');
    assert.equal((await signingKeyFrom(pem('ed25519'))).alg, 'EdDSA');
    assert.equal((await signingKeyFrom(pem('ec'))).alg, 'ES384');
    assert.match(rsa.kid, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(rsa.publicJwk.d, undefined);
    const named = await signingKeyFrom(JSON.stringify({ ...ecPrivateJwk(), kid: '2026-01', alg: 'ES256' }));
    assert.equal(named.kid, '2026-01');
    const tokens = new AccessTokens({ signingKey: rsa });
    assert.equal(outcome(await tokens.verify((await tokens.issue(grant)).accessToken)), 'ok');
  });

  test('a symmetric key, a public key or an algorithm the key cannot sign with is refused', async () => {
    await assert.rejects(signingKeyFrom(JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' })));
    await assert.rejects(
      signingKeyFrom(createPublicKey(generatePrivateKey('ed25519').key).export({ format: 'pem', type: 'spki' }) as string),
    );
    await assert.rejects(signingKeyFrom(JSON.stringify({ ...ecPrivateJwk(), alg: 'RS256' })));
    await assert.rejects(signingKeyFrom(JSON.stringify({ ...ecPrivateJwk(), alg: 'HS256' })));
  });

  test('the embedded default is generated once, readable by its owner only, and kept', async () => {
    const dir = await tempDir();
    // Several at once, as instances starting together would: all end with the one key that won.
    const [first, ...others] = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateSigningKey(dir)));
    assert.deepEqual(new Set(others.map((key) => key.kid)), new Set([first.kid]));
    const file = path.join(dir, defaultKeyFile);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await loadOrCreateSigningKey(dir)).kid, first.kid);
    assert.equal(JSON.parse(await readFile(file, 'utf8')).kid, first.kid);
  });

  test('a key file others may read is refused', async () => {
    const dir = await tempDir();
    const key: SigningKey = await loadOrCreateSigningKey(dir);
    const file = path.join(dir, defaultKeyFile);
    await chmod(file, 0o644);
    await assert.rejects(loadOrCreateSigningKey(dir), /chmod 600/);
    await writeFile(file, JSON.stringify(key.publicJwk), { mode: 0o600 });
    await chmod(file, 0o600);
    await assert.rejects(loadOrCreateSigningKey(dir), /private key/);
  });
});
