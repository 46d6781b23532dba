/**
 * The keys access tokens are signed and verified with. The signing key comes from
 * configuration (a private JWK or PEM); without one, the embedded default generates a P-256
 * key once and keeps it under the data directory, readable by its owner only.
 *
 * Each key has a `kid` (the JWK's own, else its RFC 7638 thumbprint), written in every token's
 * header, so a verifier holding the current key and the previous ones picks the right one.
 * Only asymmetric keys: a verifier never holds anything that could sign.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject, randomUUID } from 'node:crypto';
import { chmod, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';

/**
 * A fresh private key, as a PEM and as a KeyObject made from it. Never the KeyObject that
 * `generateKeyPairSync` returns: in Node 20 exporting that one can deadlock the process for
 * good, when a garbage collection during the export finalizes the key generation job, whose
 * destructor takes the key's mutex that the export holds (seen as a test hung in
 * `KeyGenJob::~KeyGenJob` under `ExportJWK`; a loop of generate + export hangs within a few
 * hundred keys). The PEM is written inside the job, and the key parsed from it shares nothing with it.
 */
export function generatePrivateKey(kind: { ec: string } | { rsa: number } | 'ed25519'): { pem: string; key: KeyObject } {
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  const { privateKey } =
    kind === 'ed25519'
      ? generateKeyPairSync('ed25519', { publicKeyEncoding, privateKeyEncoding })
      : 'ec' in kind
        ? generateKeyPairSync('ec', { namedCurve: kind.ec, publicKeyEncoding, privateKeyEncoding })
        : generateKeyPairSync('rsa', { modulusLength: kind.rsa, publicKeyEncoding, privateKeyEncoding });
  return { pem: privateKey, key: createPrivateKey(privateKey) };
}

/** The signature algorithms of our tokens and of an identity provider's: asymmetric only. */
export const asymmetricAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

export type AsymmetricAlgorithm = (typeof asymmetricAlgorithms)[number];

export function isAsymmetricAlgorithm(alg: string): alg is AsymmetricAlgorithm {
  return (asymmetricAlgorithms as readonly string[]).includes(alg);
}

export interface SigningKey {
  readonly kid: string;
  readonly alg: AsymmetricAlgorithm;
  readonly privateKey: KeyObject;
  /** Its public half, as a verifier (another instance, after a rotation) is given it. */
  readonly publicJwk: JWK;
}

export interface VerificationKey {
  readonly kid: string;
  readonly alg: AsymmetricAlgorithm;
  readonly publicKey: KeyObject;
}

/** The file the embedded default keeps its key in, under the data directory. */
export const defaultKeyFile = 'access-token-key.json';

const curveAlgorithms: Record<string, AsymmetricAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/** The algorithms each key type signs with; the first is the one used when a key names none. */
function algorithmsOf(key: KeyObject): readonly AsymmetricAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    case 'ec': {
      const alg = curveAlgorithms[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (alg !== undefined) return [alg];
      break;
    }
  }
  throw new Error(`access-token keys must be RSA, P-256, P-384, P-521 or Ed25519, not ${key.asymmetricKeyType ?? 'a symmetric key'}`);
}

/** The key's algorithm: the one it names if it may sign with it, else the usual one for its type. */
function algorithmOf(key: KeyObject, named: unknown): AsymmetricAlgorithm {
  const usable = algorithmsOf(key);
  if (named === undefined) return usable[0];
  if (typeof named === 'string' && (usable as readonly string[]).includes(named)) return named as AsymmetricAlgorithm;
  throw new Error(`a ${key.asymmetricKeyType} key cannot sign with ${String(named)}`);
}

/** A JWK (JSON text starting with `{`) or a PEM; the key and what its JWK says of itself. */
function parseKey(
  text: string,
  create: (key: string | { key: JsonWebKey; format: 'jwk' }) => KeyObject,
): { key: KeyObject; jwk: Partial<JWK> } {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return { key: create(trimmed), jwk: {} };
  const jwk = JSON.parse(trimmed) as JWK;
  return { key: create({ key: jwk as JsonWebKey, format: 'jwk' }), jwk };
}

function publicJwkOf(key: KeyObject): JWK {
  return createPublicKey(key).export({ format: 'jwk' }) as JWK;
}

/** The signing key a private JWK or PEM holds. */
export async function signingKeyFrom(text: string): Promise<SigningKey> {
  const withoutPrivatePart = text.trim().startsWith('{') && !('d' in (JSON.parse(text) as object));
  if (withoutPrivatePart) throw new Error('the access-token signing key must be a private key (a JWK with "d")');
  const { key, jwk } = parseKey(text, createPrivateKey);
  const alg = algorithmOf(key, jwk.alg);
  const bare = publicJwkOf(key);
  const kid = jwk.kid ?? (await calculateJwkThumbprint(bare));
  return { kid, alg, privateKey: key, publicJwk: { ...bare, kid, alg, use: 'sig' } };
}

/**
 * A key a verifier accepts besides the current one (a previous key, during a rotation): a
 * public JWK or PEM. A private one is taken for its public half.
 */
export async function verificationKeyFrom(text: string): Promise<VerificationKey> {
  const { key: publicKey, jwk } = parseKey(text, createPublicKey);
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwkOf(publicKey)));
  return { kid, alg: algorithmOf(publicKey, jwk.alg), publicKey };
}

/** The verifier's view of a signing key. */
export function verificationKeyOf(key: SigningKey): VerificationKey {
  return { kid: key.kid, alg: key.alg, publicKey: createPublicKey(key.privateKey) };
}

/**
 * The embedded default's key: read from `dir`, or generated there on first use. The file is
 * written whole under a temporary name and linked into place, so two processes starting at
 * once both end with the one key that won. A key file others may read is refused rather than
 * used: whoever reads it can sign tokens of any scope.
 */
export async function loadOrCreateSigningKey(dir: string): Promise<SigningKey> {
  const file = path.join(dir, defaultKeyFile);
  await mkdir(dir, { recursive: true });
  try {
    return await readKeyFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const fresh = await signingKeyFrom(generatePrivateKey({ ec: 'P-256' }).pem);
  const jwk = { ...(fresh.privateKey.export({ format: 'jwk' }) as JWK), kid: fresh.kid, alg: fresh.alg };
  const temporary = `${file}.${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: 'wx' });
    // The umask may have narrowed the mode, never widened it; this makes it exactly 0600.
    await chmod(temporary, 0o600);
    await link(temporary, file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  } finally {
    await rm(temporary, { force: true });
  }
  return readKeyFile(file);
}

async function readKeyFile(file: string): Promise<SigningKey> {
  const text = await readFile(file, 'utf8');
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `${file} may be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or replace the key if it may have leaked`,
    );
  }
  return signingKeyFrom(text);
}
