/**
 * `wavehouse`: the command line. Every failure ends as one line on stderr and a non-zero exit
 * code (2 for a usage mistake); the commands themselves live in one file each.
 */
import { CliError, describeError, UsageError } from './cli-error.ts';
import { apiKeyEnvVar, clientAccess } from './client-access.ts';
import { connectorsCommand, connectorsUsage } from './connectors-command.ts';
import { demoCommand, demoUsage } from './demo-command.ts';
import { exportCommand, exportUsage } from './export-command.ts';
import { ingestCommand, ingestUsage } from './ingest-command.ts';
import { keysCommand, keysUsage } from './keys-command.ts';
import { serveCommand, serveUsage } from './serve-command.ts';
import { simulateCommand, simulateUsage } from './simulate-command.ts';
import { tailCommand, tailUsage } from './tail-command.ts';

const defaultUrl = process.env.WAVEHOUSE_URL ?? 'http://127.0.0.1:8080';

const usages: Record<string, string> = {
  serve: serveUsage,
  keys: keysUsage,
  simulate: simulateUsage,
  export: exportUsage,
  ingest: ingestUsage,
  tail: tailUsage,
  connectors: connectorsUsage,
  demo: demoUsage,
};

const overview = `usage: wavehouse <command> [options]

commands:
  serve      run the service
  keys       create an API key in the service's database (keys create --role admin --name NAME)
  simulate   stream a synthetic SCG into a session
  export     write a session's samples to a file (csv, ndjson, json, parquet)
  ingest     send samples from a CSV or NDJSON file (or stdin) over HTTP, resumable
  tail       print a session's live samples as NDJSON
  connectors list, get, create, pause, resume or delete pull connectors
  demo       run the service with a demo feeding it (demo iot, demo prices, demo scheduler)

Client commands talk to --url <server>, default $WAVEHOUSE_URL or http://127.0.0.1:8080.
A private server needs an API key: $${apiKeyEnvVar}, or --api-key-file <path> (its first
line; "-" reads stdin). No option takes the key itself: ps and shell history would show it.
Run "wavehouse help <command>" for a command's options.`;

/** Whether the command's own options read stdin too (simulate's `--token-file -`, connectors' upstream key files). */
function readsStdin(args: string[]): boolean {
  const stdinOptions = ['--token-file', '--read-api-key-file', '--twelvedata-key-file'];
  return args.some((arg, i) => stdinOptions.some((option) => arg === `${option}=-` || (arg === option && args[i + 1] === '-')));
}

/** Takes the common `--url` and `--api-key-file` out of the arguments, so each command parses only its own. */
function takeClientOptions(args: string[]): { url: string; apiKeyFile: string | undefined; rest: string[] } {
  let url = defaultUrl;
  let apiKeyFile: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      rest.push(...args.slice(i));
      break;
    }
    if (arg === '--url') {
      if (i + 1 >= args.length) throw new UsageError('--url needs a value');
      url = args[++i];
    } else if (arg.startsWith('--url=')) {
      url = arg.slice('--url='.length);
    } else if (arg === '--api-key-file') {
      if (i + 1 >= args.length) throw new UsageError('--api-key-file needs a path');
      apiKeyFile = args[++i];
    } else if (arg.startsWith('--api-key-file=')) {
      apiKeyFile = arg.slice('--api-key-file='.length);
    } else if (arg === '--api-key' || arg.startsWith('--api-key=')) {
      throw new UsageError(
        `there is no --api-key: a key on the command line is seen by other users (ps) and kept in shell history; ` +
          `set $${apiKeyEnvVar} or use --api-key-file <path>`,
      );
    } else {
      rest.push(arg);
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url: not a URL: "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`--url: expected http:// or https://, got "${url}"`);
  }
  if (apiKeyFile === '-' && readsStdin(rest)) throw new UsageError('--api-key-file - and another secret from - cannot both read stdin');
  return { url: url.replace(/\/+$/, ''), apiKeyFile, rest };
}

async function run(argv: string[], context: { url: string }): Promise<number | 'running'> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? args[0] : undefined;
    process.stdout.write(`${topic !== undefined && usages[topic] ? usages[topic] : overview}\n`);
    return 0;
  }
  if (!(command in usages)) throw new UsageError(`unknown command "${command}"; run "wavehouse help"`);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usages[command]}\n`);
    return 0;
  }
  if (command === 'serve') return serveCommand(args);
  if (command === 'keys') return keysCommand(args);
  if (command === 'demo') return demoCommand(args);
  const { url, apiKeyFile, rest } = takeClientOptions(args);
  context.url = url;
  const warn = (line: string) => process.stderr.write(`wavehouse: ${line}\n`);
  const client = await clientAccess(url, { apiKeyFile, env: process.env, warn });
  try {
    if (command === 'simulate') return await simulateCommand(rest, client);
    if (command === 'export') return await exportCommand(rest, client);
    if (command === 'ingest') return await ingestCommand(rest, client.baseUrl);
    if (command === 'connectors') return await connectorsCommand(rest, client, warn);
    return await tailCommand(rest, client);
  } finally {
    client.credential?.close();
  }
}

function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  // node:util parseArgs: an unknown option, a missing value...
  if (typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('ERR_PARSE_ARGS')) return 2;
  return 1;
}

const context = { url: defaultUrl };
let exitCode: number;
try {
  const outcome = await run(process.argv.slice(2), context);
  if (outcome === 'running') exitCode = -1;
  else exitCode = outcome;
} catch (error) {
  process.stderr.write(`wavehouse: ${describeError(error, context.url)}\n`);
  exitCode = exitCodeOf(error);
}
if (exitCode >= 0) {
  process.exitCode = exitCode;
  // A keep-alive socket or a closing WebSocket must not hold a finished command open.
  setTimeout(() => process.exit(exitCode), 2_000).unref();
}
