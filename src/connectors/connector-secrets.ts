/**
 * Upstream secrets at rest: a connector's secret config members (a read API key) are sealed
 * with AES-256-GCM under CONNECTOR_SECRET_KEY, or, with the embedded database, under a key file
 * generated beside the database's password. The connector's id is the associated data, so a
 * sealed blob copied onto another connector's row does not open.
 *
 * Layout: version (1 byte, 1) | IV (12 bytes, random per seal) | tag (16 bytes) | ciphertext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

const version = 1;
const ivBytes = 12;
const tagBytes = 16;
export const secretKeyBytes = 32;

export type Secrets = Record<string, string>;

export function sealSecrets(key: Buffer, connectorId: string, secrets: Secrets): Buffer {
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(connectorId));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(version), iv, cipher.getAuthTag(), ciphertext]);
}

/** The secrets, or null when the blob does not open under `key` (another key, another connector, altered). */
export function openSecrets(key: Buffer, connectorId: string, sealed: Buffer): Secrets | null {
  if (sealed.length < 1 + ivBytes + tagBytes || sealed[0] !== version) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + ivBytes));
    decipher.setAAD(Buffer.from(connectorId));
    decipher.setAuthTag(sealed.subarray(1 + ivBytes, 1 + ivBytes + tagBytes));
    const text = Buffer.concat([decipher.update(sealed.subarray(1 + ivBytes + tagBytes)), decipher.final()]).toString('utf8');
    const secrets: unknown = JSON.parse(text);
    return typeof secrets === 'object' && secrets !== null ? (secrets as Secrets) : null;
  } catch {
    return null;
  }
}

/** The key in `<dataDir>/connector-secret-key`, or a new one written there (0600) when there is none. */
export async function loadOrCreateSecretKey(dataDir: string): Promise<Buffer> {
  const file = path.join(dataDir, 'connector-secret-key');
  const stored = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    },
  );
  if (stored !== '') {
    const key = Buffer.from(stored, 'base64');
    if (key.length !== secretKeyBytes) throw new Error(`${file} does not hold a ${secretKeyBytes}-byte base64 key`);
    return key;
  }
  const key = randomBytes(secretKeyBytes);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${key.toString('base64')}\n`, { mode: 0o600 });
  await rename(temporary, file);
  return key;
}
