/**
 * The secrets Wavehouse hands out for access: API keys (`wh_...`, sent as a bearer) and
 * refresh tokens (`whr_...`, sent only in the body of /auth/refresh and /auth/logout). Each is
 * a prefix and 32 random bytes in base64url (43 characters), shown once and stored only as
 * its SHA-256. A plain hash rather than a slow KDF is enough, as for ingest tokens: the secret
 * is 256 random bits, not a password, so there is nothing to guess from the hash.
 *
 * The prefix tells the secret apart at a glance (a key pasted where a token goes, a key found
 * by a secret scanner) and lets the bearer parser route it without a lookup.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const apiKeyPrefix = 'wh_';
export const refreshTokenPrefix = 'whr_';

const secretBytes = 32;
/**
 * Keys read `wh_` and at least 32 base64url characters (keys of another generator may be
 * shorter than ours, never weaker than 192 bits); the upper bound keeps what is hashed small.
 */
const apiKeyPattern = /^wh_[A-Za-z0-9_-]{32,256}$/;
const refreshTokenPattern = /^whr_[A-Za-z0-9_-]{43}$/;

export interface NewSecret {
  /** Shown once, to whoever asked for it. */
  readonly secret: string;
  /** What is stored. */
  readonly hash: Buffer;
}

function newSecret(prefix: string): NewSecret {
  const secret = prefix + randomBytes(secretBytes).toString('base64url');
  return { secret, hash: hashSecret(secret) };
}

export function newApiKey(): NewSecret {
  return newSecret(apiKeyPrefix);
}

export function newRefreshToken(): NewSecret {
  return newSecret(refreshTokenPrefix);
}

/** The SHA-256 of the whole secret, prefix included. */
export function hashSecret(secret: string): Buffer {
  return hash('sha256', secret, 'buffer');
}

/** Whether `text` is shaped like an API key; only a lookup of its hash tells whether it is one. */
export function isApiKey(text: string): boolean {
  return apiKeyPattern.test(text);
}

export function isRefreshToken(text: string): boolean {
  return refreshTokenPattern.test(text);
}

/**
 * Whether two hashes are the same, in constant time. Records are found by their hash, so this
 * is a second look at what the index matched: it keeps a lookup that matched on something
 * else (a collation, a truncated column, a fake store in a test) from letting a wrong secret
 * through.
 */
export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
