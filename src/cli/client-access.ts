/**
 * The credential of the client commands (tail, simulate, export) for a private server: an API
 * key, from `--api-key-file <path>` (the first line; `-` reads stdin), else from
 * $WAVEHOUSE_API_KEY. There is deliberately no `--api-key <key>`: a command line is seen by
 * every user of the machine (`ps`, /proc) and kept in shell history, and an API key reaches
 * every session within its prefix for as long as it lives, far more than `--token`'s one
 * session. `--api-key` is refused with a message saying where the key goes instead.
 *
 * The key is exchanged for access tokens (the SDK's accessCredential), refreshed before they
 * expire, so a tail or a simulate that runs for hours outlives its first token, and the key
 * itself is sent only to /auth/token. A server that issues no tokens (open mode on a
 * DATABASE_URL without ACCESS_TOKEN_SIGNING_KEY answers 501 access_tokens_off) still takes
 * the key itself as a bearer, and the calls that need a key there (connectors, keyed streams)
 * are sent with it.
 */
import { accessCredential } from '../sdk/access-credentials.ts';
import { WavehouseHttpError } from '../sdk/rest.ts';
import type { AccessCredential } from '../sdk/types.ts';
import { CliError } from './cli-error.ts';
import { readSecretFile } from './secret-file.ts';

export const apiKeyEnvVar = 'WAVEHOUSE_API_KEY';

/** Where a client command sends its requests, and with what. */
export interface ClientAccess {
  baseUrl: string;
  /** Undefined without an API key: open mode's capabilities (or an ingest token) only. */
  credential: AccessCredential | undefined;
}

export interface KeySources {
  apiKeyFile: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Where warnings go (a key file others can read). */
  warn: (line: string) => void;
}

/** The key from --api-key-file, else $WAVEHOUSE_API_KEY; null when neither gives one. */
export async function readApiKey({ apiKeyFile, env, warn }: KeySources): Promise<string | null> {
  if (apiKeyFile !== undefined) return checked(await readSecretFile(apiKeyFile, 'API key', warn), `API key file ${apiKeyFile}`);
  const fromEnv = env[apiKeyEnvVar]?.trim();
  return fromEnv === undefined || fromEnv === '' ? null : checked(fromEnv, `$${apiKeyEnvVar}`);
}

/** Said before anything is sent: an ingest token or an access token pasted where the key goes. */
function checked(key: string, source: string): string {
  if (!key.startsWith('wh_')) throw new CliError(`${source} does not hold an API key (wh_...)`);
  return key;
}

/** Tokens from the key; the key itself once the server says it issues none. */
function tokensElseKey(tokens: AccessCredential, apiKey: string): AccessCredential {
  let direct = false;
  return {
    async token() {
      if (direct) return apiKey;
      try {
        return await tokens.token();
      } catch (error) {
        if (!(error instanceof WavehouseHttpError && error.code === 'access_tokens_off')) throw error;
        direct = true;
        return apiKey;
      }
    },
    renew: (refused) => (direct ? Promise.resolve(null) : tokens.renew(refused)),
    close: () => tokens.close(),
  };
}

export async function clientAccess(baseUrl: string, sources: KeySources): Promise<ClientAccess> {
  const apiKey = await readApiKey(sources);
  return { baseUrl, credential: apiKey === null ? undefined : tokensElseKey(accessCredential({ baseUrl, apiKey }), apiKey) };
}
