/** A local OpenID Connect provider for the access tests: its JWKS served over HTTP, and access tokens it signs. */
import { createPublicKey } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { type JWK, SignJWT } from 'jose';
import { generatePrivateKey } from '../../src/access/signing-keys.ts';

const providerIssuer = 'https://keycloak.example/realms/plant';
const audience = 'wavehouse';
const privateKey = generatePrivateKey({ rsa: 2048 }).key;

/** An access token of the provider, its roles where Keycloak puts them. */
export function providerToken(roles: string[], subject = 'alice'): Promise<string> {
  const nowS = Math.floor(Date.now() / 1000);
  return new SignJWT({ realm_access: { roles } })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(providerIssuer)
    .setAudience(audience)
    .setSubject(subject)
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + 300)
    .sign(privateKey);
}

/** The settings of an app that trusts the provider whose keys are at `jwksUrl`. */
export function trustingProvider(jwksUrl: string): Record<string, string> {
  return { AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: providerIssuer, AUTH_AUDIENCE: audience, AUTH_ROLES_CLAIM: 'realm_access.roles' };
}

/** Serves the provider's JWKS until the test ends; returns its URL. */
export async function serveProviderKeys(t: Pick<TestContext, 'after'>): Promise<string> {
  const jwks = { keys: [{ ...(createPublicKey(privateKey).export({ format: 'jwk' }) as JWK), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  const provider = http.createServer((_request, response) => response.writeHead(200).end(JSON.stringify(jwks)));
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => provider.close(() => resolve())));
  return `http://127.0.0.1:${(provider.address() as AddressInfo).port}/certs`;
}
