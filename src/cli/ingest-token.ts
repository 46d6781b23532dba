/**
 * Where a client command finds an ingest token. A token on the command line is seen by every
 * user of the machine (`ps`) and kept in shell history, so it can also come from a file or
 * from the environment. An option beats the environment, as usual; `--token` and
 * `--token-file` together are refused rather than ranked, since one of them would be ignored.
 */
import { open } from 'node:fs/promises';
import { CliError, UsageError } from './cli-error.ts';

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
  if (tokenFile !== undefined) return fromFile(tokenFile, warn);
  if (token !== undefined) return nonEmpty(token, '--token');
  const fromEnv = env[tokenEnvVar];
  return fromEnv === undefined || fromEnv.trim() === '' ? null : fromEnv.trim();
}

function nonEmpty(value: string, source: string): string {
  const trimmed = value.trim();
  if (trimmed === '') throw new UsageError(`${source} is empty`);
  return trimmed;
}

function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end === -1 ? text : text.slice(0, end);
}

async function fromFile(file: string, warn: (line: string) => void): Promise<string> {
  if (file === '-') return nonEmpty(firstLine(await readStdinLine()), 'the token read from stdin');
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      const { mode } = await handle.stat();
      // As ssh does for keys, but a warning: the token only lets one stream into one session.
      if (process.platform !== 'win32' && (mode & 0o044) !== 0) {
        warn(`warning: token file ${file} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`);
      }
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (error as Error).message;
    throw new CliError(`cannot read token file ${file}: ${why}`);
  }
  return nonEmpty(firstLine(text), `token file ${file}`);
}

/** Reads stdin up to its first newline, so a token can be piped in without waiting for EOF. */
async function readStdinLine(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    text += chunk as string;
    if (text.includes('\n')) break;
  }
  return text;
}
