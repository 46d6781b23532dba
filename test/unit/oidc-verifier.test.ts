/**
 * Identity-provider tokens (src/access/oidc-verifier.ts) against a local stand-in for a
 * provider: a node:http server serving a JWKS whose keys the test rotates.
 */
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import { IdentityProviderUnavailableError, type OidcOptions, OidcVerifier } from '../../src/access/oidc-verifier.ts';
import { generatePrivateKey } from '../../src/access/signing-keys.ts';

const issuer = 'https://idp.example/realms/plant';
const audience = 'wavehouse-api';

interface ProviderKey {
  kid: string;
  privateKey: KeyObject;
}

function providerKey(kid: string): ProviderKey {
  return { kid, privateKey: generatePrivateKey({ rsa: 2048 }).key };
}

/** The stand-in: serves `keys` as its JWKS (or fails, when told to), and counts the fetches. */
class Provider {
  keys: ProviderKey[] = [];
  failing = false;
  fetches = 0;
  private readonly server = http.createServer((_request, response) => {
    this.fetches += 1;
    if (this.failing) {
      response.writeHead(500).end();
      return;
    }
    const jwks = {
      keys: this.keys.map(({ kid, privateKey }) => ({
        ...(createPublicKey(privateKey).export({ format: 'jwk' }) as JWK),
        kid,
        alg: 'RS256',
        use: 'sig',
      })),
    };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function sign(key: ProviderKey, claims: JWTPayload = {}, alg = 'RS256'): Promise<string> {
  const nowS = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: ['writer'], ...claims })
    .setProtectedHeader({ alg, kid: key.kid })
    .setIssuer((claims.iss as string | undefined) ?? issuer)
    .setAudience((claims.aud as string | undefined) ?? audience)
    .setSubject('alice')
    .setIssuedAt(nowS)
    .setExpirationTime((claims.exp as number | undefined) ?? nowS + 300)
    .sign(key.privateKey);
}

describe('OIDC verifier', () => {
  const provider = new Provider();
  let jwksUrl: string;
  const verifier = (options: Partial<OidcOptions> = {}) => new OidcVerifier({ jwksUrl, issuer, audience, jwksCooldownMs: 0, ...options });
  const outcome = async (verify: OidcVerifier, token: string | Promise<string>) => {
    const verified = await verify.verify(await token);
    return verified.ok ? 'ok' : verified.code;
  };

  before(async () => {
    jwksUrl = await provider.start();
  });
  after(() => provider.close());

  test("a provider's token gives its subject, and its roles mapped to scopes", async () => {
    const first = providerKey('k1');
    provider.keys = [first];
    const verified = await verifier().verify(await sign(first, { roles: ['reader', 'writer', 'payroll'] }));
    assert.ok(verified.ok);
    assert.deepEqual(verified.identity, { subject: 'alice', scopes: ['sessions:read', 'sessions:write'] });
  });

  test('roles from a nested claim, or a space-separated string; none is no scope', async () => {
    const key = providerKey('k1');
    provider.keys = [key];
    const nested = await verifier({ rolesClaim: 'realm_access.roles' }).verify(await sign(key, { realm_access: { roles: ['admin'] } }));
    assert.ok(nested.ok);
    assert.deepEqual(nested.identity.scopes, ['sessions:read', 'sessions:write', 'connectors:write', 'admin']);
    const spaced = await verifier().verify(await sign(key, { roles: 'reader other' }));
    assert.ok(spaced.ok && spaced.identity.scopes.join() === 'sessions:read');
    const none = await verifier().verify(await sign(key, { roles: undefined }));
    assert.ok(none.ok && none.identity.scopes.length === 0);
    const odd = await verifier({ rolesClaim: 'a.b' }).verify(await sign(key, { a: 'not an object' }));
    assert.ok(odd.ok && odd.identity.scopes.length === 0);
  });

  test("a claim's name may hold dots (Auth0's namespaced claims) or reach into an object, or both", async () => {
    const key = providerKey('k1');
    provider.keys = [key];
    const scopesFor = async (rolesClaim: string, claims: JWTPayload) => {
      const verified = await verifier({ rolesClaim }).verify(await sign(key, claims));
      assert.ok(verified.ok);
      return verified.identity.scopes.join(' ');
    };
    assert.equal(await scopesFor('https://wavehouse.example/roles', { 'https://wavehouse.example/roles': ['reader'] }), 'sessions:read');
    const both = { 'https://wavehouse.example/app': { roles: 'reader' } };
    assert.equal(await scopesFor('https://wavehouse.example/app.roles', both), 'sessions:read');
    // The longest name present wins: a claim named `a.b` is read before `b` inside `a`.
    assert.equal(await scopesFor('a.b', { 'a.b': ['reader'], a: { b: ['admin'] } }), 'sessions:read');
    assert.equal(await scopesFor('https://wavehouse.example/roles', { https: { '//wavehouse': { example: ['admin'] } } }), '');
    assert.equal(await scopesFor('a.toString', { a: {} }), '');
  });

  test('after a rotation, a new kid passes (the set is fetched again) and the removed key does not', async () => {
    const [old, next] = [providerKey('2026-01'), providerKey('2026-02')];
    provider.keys = [old];
    const verify = verifier();
    const oldToken = await sign(old);
    assert.equal(await outcome(verify, oldToken), 'ok');
    provider.keys = [next];
    const fetches = provider.fetches;
    assert.equal(await outcome(verify, sign(next)), 'ok');
    assert.equal(provider.fetches, fetches + 1);
    assert.equal(await outcome(verify, oldToken), 'invalid_credential');
  });

  test('unknown kids refetch the set at most once per cooldown', async () => {
    const key = providerKey('k1');
    provider.keys = [key];
    const verify = verifier({ jwksCooldownMs: 60_000 });
    assert.equal(await outcome(verify, sign(key)), 'ok');
    const fetches = provider.fetches;
    for (let i = 0; i < 20; i += 1) assert.equal(await outcome(verify, sign(providerKey(`made-up-${i}`))), 'invalid_credential');
    assert.equal(provider.fetches, fetches);
  });

  test('every kind of bad token is refused', async () => {
    const key = providerKey('k1');
    provider.keys = [key];
    const verify = verifier();
    const nowS = Math.floor(Date.now() / 1000);
    const publicPem = createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }) as string;
    const good = await sign(key);
    const [header, payload, signature] = good.split('.');
    const tampered = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), roles: ['admin'] }),
    ).toString('base64url');
    assert.equal(await outcome(verify, sign(key, { exp: nowS - 120 })), 'credential_expired');
    const bad: Record<string, string | Promise<string>> = {
      'not yet valid (nbf)': sign(key, { nbf: nowS + 600 }),
      'wrong audience': sign(key, { aud: 'another-api' }),
      'wrong issuer': sign(key, { iss: 'https://idp.example/realms/other' }),
      'alg none': new UnsecuredJWT({ roles: ['admin'] })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject('alice')
        .setExpirationTime(nowS + 300)
        .encode(),
      'HS256 signed with the public key': new SignJWT({ roles: ['admin'] })
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject('alice')
        .setExpirationTime(nowS + 300)
        .sign(new TextEncoder().encode(publicPem)),
      'tampered payload': `${header}.${tampered}.${signature}`,
      truncated: good.slice(0, good.length - 20),
      'no sub': new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime(nowS + 300)
        .sign(key.privateKey),
      'no exp': new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject('alice')
        .sign(key.privateKey),
      garbage: 'a.b.c',
    };
    for (const [name, token] of Object.entries(bad)) assert.equal(await outcome(verify, token), 'invalid_credential', name);
  });

  test('only asymmetric algorithms may be allowed', () => {
    assert.throws(() => verifier({ algorithms: ['HS256' as 'RS256'] }), /asymmetric/);
    assert.throws(() => verifier({ algorithms: [] }), /asymmetric/);
  });

  test('a provider whose keys cannot be fetched is unavailable, not a refusal of the token', async () => {
    const key = providerKey('k1');
    provider.failing = true;
    try {
      await assert.rejects(verifier().verify(await sign(key)), IdentityProviderUnavailableError);
    } finally {
      provider.failing = false;
    }
  });
});
