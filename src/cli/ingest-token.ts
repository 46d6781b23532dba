/**
 * Where a client command finds an ingest token. A token on the command line is seen by every
 * user of the machine (`ps`) and kept in shell history, so it can also come from a file or
 * from the environment. An option beats the environment, as usual; `--token` and
 * `--token-file` together are refused rather than ranked, since one of them would be ignored.
 */
import { UsageError } from './cli-error.ts';
import { nonEmpty, readSecretFile } from './secret-file.ts';

export const tokenEnvVar = 'WAVEHOUSE_TOKEN';

export interface TokenSources {
  token: string | undefined;
  tokenFile: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Where warnings go (a token file others can read). */
  warn: (line: string) => void;
}

/** The token from --token-file, --token or $WAVEHOUSE_TOKEN, in that order; null when none is given. */
export async function readIngestToken({ token, tokenFile, env, warn }: TokenSources): Promise<string | null> {
  if (token !== undefined && tokenFile !== undefined) throw new UsageError('give --token or --token-file, not both');
  // A warning only, for a readable file: the token only lets one stream into one session.
  if (tokenFile !== undefined) return readSecretFile(tokenFile, 'token', warn);
  if (token !== undefined) return nonEmpty(token, '--token');
  const fromEnv = env[tokenEnvVar];
  return fromEnv === undefined || fromEnv.trim() === '' ? null : fromEnv.trim();
}
