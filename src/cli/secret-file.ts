/**
 * Reading a secret (an ingest token, an API key) from a file, or from stdin for `-`: the first
 * line, trimmed. A secret on the command line is seen by every user of the machine (`ps`) and
 * kept in shell history; a file is not, as long as others cannot read it, so a file that they
 * can read is warned about, as ssh does for keys.
 */
import { open } from 'node:fs/promises';
import { CliError, UsageError } from './cli-error.ts';

/** The secret's text, refused when empty; `source` names where it came from in the error. */
export function nonEmpty(value: string, source: string): string {
  const trimmed = value.trim();
  if (trimmed === '') throw new UsageError(`${source} is empty`);
  return trimmed;
}

function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end === -1 ? text : text.slice(0, end);
}

/** The first line of `file` (`-`: stdin); `label` names the secret in messages ("token", "API key"). */
export async function readSecretFile(file: string, label: string, warn: (line: string) => void): Promise<string> {
  if (file === '-') return nonEmpty(firstLine(await readStdinLine()), `the ${label} read from stdin`);
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      const { mode } = await handle.stat();
      if (process.platform !== 'win32' && (mode & 0o044) !== 0) {
        warn(
          `warning: ${label} file ${file} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`,
        );
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
    throw new CliError(`cannot read ${label} file ${file}: ${why}`);
  }
  return nonEmpty(firstLine(text), `${label} file ${file}`);
}

/** Reads stdin up to its first newline, so a secret can be piped in without waiting for EOF. */
async function readStdinLine(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    text += chunk as string;
    if (text.includes('\n')) break;
  }
  return text;
}
