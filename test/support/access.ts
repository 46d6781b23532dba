/** Keys and records for the access tests. */
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';

/** A fresh P-256 private key as a JWK, as an operator would configure one. */
export function ecPrivateJwk(): JsonWebKey {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
}
