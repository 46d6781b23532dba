/**
 * Ingest tokens: the capability to write to and end a session (DESIGN principle 4).
 * 256 random bits, shown once at creation; only the SHA-256 is stored, and compared in
 * constant time. A plain hash (not a slow KDF) is enough: the token is random, not a password.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newIngestToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function tokenMatches(token: string, storedHash: Buffer): boolean {
  const hash = hashToken(token);
  return hash.length === storedHash.length && timingSafeEqual(hash, storedHash);
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Session ids are UUIDs; anything else is answered as an unknown session (DESIGN). */
export function isSessionId(value: string): boolean {
  return uuidPattern.test(value);
}
