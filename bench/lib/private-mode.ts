/**
 * The server in private mode (AUTH_MODE=private), for the sections that measure what access
 * control costs: its settings, and the credentials a client of it holds. The key is made as
 * the first one always is, by `wavehouse keys create` against the server's database, and
 * exchanged over REST for an access token, as the SDK and the pages do.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generatePrivateKey } from '../../src/access/signing-keys.ts';
import { projectRoot, type ServerHandle, startWavehouse } from './children.ts';
import type { Context } from './report.ts';

/**
 * AUTH_MODE=private with a fresh P-256 signing key (with DATABASE_URL, private mode needs one),
 * and access tokens valid for an hour, so that none expires during a run (the default 15
 * minutes would, on a long one; a token is checked once per request or upgrade either way).
 * The fan-out's thousands of viewers all read with one key, so the per-key socket cap
 * (MAX_SOCKETS_PER_KEY, 256 by default) is lifted as a deployment serving them would lift it.
 */
export function privateModeEnv(): Record<string, string> {
  const signingKey = generatePrivateKey({ ec: 'P-256' }).key.export({ format: 'jwk' });
  return {
    AUTH_MODE: 'private',
    ACCESS_TOKEN_SIGNING_KEY: JSON.stringify(signingKey),
    ACCESS_TOKEN_TTL_S: '3600',
    MAX_SOCKETS_PER_KEY: '100000',
  };
}

export interface Credentials {
  /** An API key with the writer role (sessions:read, sessions:write). */
  key: string;
  /** A JWT signed by the server, carrying the key's scopes. */
  accessToken: string;
}

/** A writer key made by the CLI in `databaseUrl`, and an access token for it from the server at `baseUrl`. */
export async function writerCredentials(databaseUrl: string, baseUrl: string): Promise<Credentials> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['bin/wavehouse.mjs', 'keys', 'create', '--role', 'writer', '--name', 'bench'],
    { cwd: projectRoot, env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' } },
  );
  const key = stdout.trim().split('\n').at(-1) ?? '';
  const response = await fetch(`${baseUrl}/api/v1/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  if (response.status !== 200) throw new Error(`exchanging the bench key: ${response.status} ${await response.text()}`);
  const { accessToken } = (await response.json()) as { accessToken: string };
  return { key, accessToken };
}

export const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

/** A section's server, in the run's mode, and what its clients present in it. */
export interface SectionServer extends ServerHandle {
  /** Headers a session is created with: a writer key in private mode, none in open mode. */
  readonly createHeaders: Record<string, string>;
  /** What a live URL ends with to carry a viewer's credential: `?access_token=` in private mode, nothing in open mode. */
  readonly viewerQuery: string;
}

/**
 * Starts the server for a section in the run's mode (`--private`: AUTH_MODE=private). Producers
 * need nothing more in private mode (an ingest token still writes its own session); creating a
 * session takes a key, and a viewer an access token in its URL, as a browser sends it.
 * `extraEnv` sets more of the server's settings (WRITE_ROLLUPS=false, say).
 */
export async function startSectionServer(ctx: Context, extraEnv: Record<string, string> = {}): Promise<SectionServer> {
  if (ctx.authMode === 'open') return { ...(await startWavehouse(ctx.databaseUrl, extraEnv)), createHeaders: {}, viewerQuery: '' };
  const server = await startWavehouse(ctx.databaseUrl, { ...privateModeEnv(), ...extraEnv });
  try {
    const { key, accessToken } = await writerCredentials(ctx.databaseUrl, server.baseUrl);
    return { ...server, createHeaders: bearer(key), viewerQuery: `?access_token=${accessToken}` };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
