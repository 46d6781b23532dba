/**
 * `wavehouse connectors ...`: the connectors REST API (docs/connectors.md) from a terminal.
 * Reading needs a key with sessions:read, changing one connectors:write, in either mode. An
 * upstream's key (a ThingSpeak read key, a Twelve Data API key) is secret: it comes from a file
 * or an environment variable, never from the command line (ps, shell history), and the server
 * never answers it, so nothing printed holds it.
 */
import { parseArgs } from 'node:util';
import { twelveDataIntervals } from '../contract/connector-schemas.ts';
import {
  type Connector,
  type CreateConnectorBody,
  changeConnector,
  createConnector,
  getConnector,
  listConnectors,
} from '../sdk/connectors.ts';
import { UsageError } from './cli-error.ts';
import type { ClientAccess } from './client-access.ts';
import { nonEmpty, readSecretFile } from './secret-file.ts';

export const readKeyEnvVar = 'WAVEHOUSE_READ_API_KEY';
export const twelveDataKeyEnvVar = 'WAVEHOUSE_TWELVEDATA_API_KEY';

export const connectorsUsage = `wavehouse connectors list [--json]
wavehouse connectors get|pause|resume|delete <id>
wavehouse connectors create [--kind thingspeak] --name <name> --channel-id <id> [--base-url <url>]
                            [--poll <seconds>] [--page-size <n>] [--read-api-key-file <path>]
wavehouse connectors create --kind twelvedata --name <name> --symbols <s1,s2,...> [--interval <i>]
                            [--base-url <url>] [--poll <seconds>] [--credits-per-minute <n>]
                            [--credits-per-day <n>] [--twelvedata-key-file <path>]
  list prints a line per connector (id, state, last success, breaker, next poll, last error);
  the others print the connector as JSON. create makes a thingspeak connector (--base-url
  default https://api.thingspeak.com); a private channel's read key comes from
  --read-api-key-file (its first line; "-" reads stdin), else $${readKeyEnvVar}.
  --kind twelvedata makes a twelvedata connector: a stream of bars per symbol, --interval one
  of ${twelveDataIntervals.join(', ')} (1min), --base-url default https://api.twelvedata.com,
  credits as the plan allows (8 a minute, 800 a day unless set); the API key comes from
  --twelvedata-key-file (its first line; "-" reads stdin), else $${twelveDataKeyEnvVar}.`;

const actions = ['list', 'get', 'create', 'pause', 'resume', 'delete'] as const;

const cell = (value: string | null, width: number) => {
  const text = value ?? '-';
  return (text.length > width ? `${text.slice(0, width - 1)}~` : text).padEnd(width);
};

export function connectorLines(connectors: readonly Connector[]): string {
  const header = [
    cell('id', 36),
    cell('state', 8),
    cell('last success', 24),
    cell('breaker', 9),
    cell('next poll', 24),
    'name / last error',
  ];
  return [
    header.join(' '),
    ...connectors.map((c) =>
      [
        cell(c.id, 36),
        cell(c.state, 8),
        cell(c.lastSuccessAt, 24),
        cell(c.breaker, 9),
        cell(c.nextPollAt, 24),
        c.lastError === null ? c.name : `${c.name}: ${c.lastError}`,
      ].join(' '),
    ),
  ].join('\n');
}

const number = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name}: not a number: "${text}"`);
  return value;
};

const createOptions = {
  kind: { type: 'string' },
  name: { type: 'string' },
  'base-url': { type: 'string' },
  poll: { type: 'string' },
  'channel-id': { type: 'string' },
  'page-size': { type: 'string' },
  'read-api-key-file': { type: 'string' },
  symbols: { type: 'string' },
  interval: { type: 'string' },
  'credits-per-minute': { type: 'string' },
  'credits-per-day': { type: 'string' },
  'twelvedata-key-file': { type: 'string' },
} as const;

const kindOptions = {
  thingspeak: ['channel-id', 'page-size', 'read-api-key-file'],
  twelvedata: ['symbols', 'interval', 'credits-per-minute', 'credits-per-day', 'twelvedata-key-file'],
} as const;

type CreateValues = ReturnType<typeof parseArgs<{ args: string[]; options: typeof createOptions }>>['values'];

/** A secret from its file flag, else from its environment variable; undefined when neither is set. */
async function upstreamSecret(file: string | undefined, envVar: string, label: string, warn: (line: string) => void) {
  if (file !== undefined) return readSecretFile(file, label, warn);
  const fromEnv = process.env[envVar];
  return fromEnv === undefined ? undefined : nonEmpty(fromEnv, `$${envVar}`);
}

const present = <T>(name: string, value: T | undefined) => (value === undefined ? {} : { [name]: value });

async function thingSpeakConfig(values: CreateValues, warn: (line: string) => void) {
  const channelId = number('channel-id', values['channel-id']);
  if (channelId === undefined) throw new UsageError('connectors create: --channel-id is required');
  const readApiKey = await upstreamSecret(values['read-api-key-file'], readKeyEnvVar, 'read API key', warn);
  return {
    baseUrl: values['base-url'] ?? 'https://api.thingspeak.com',
    channelId,
    ...present('readApiKey', readApiKey),
    ...present('pageSize', number('page-size', values['page-size'])),
  };
}

async function twelveDataConfig(values: CreateValues, warn: (line: string) => void) {
  if (values.symbols === undefined) throw new UsageError('connectors create: --symbols is required for --kind twelvedata');
  const symbols = values.symbols.split(',').map((symbol) => symbol.trim());
  const interval = values.interval ?? '1min';
  if (!(twelveDataIntervals as readonly string[]).includes(interval)) {
    throw new UsageError(`--interval: expected one of ${twelveDataIntervals.join(', ')}, got "${interval}"`);
  }
  const apiKey = await upstreamSecret(values['twelvedata-key-file'], twelveDataKeyEnvVar, 'Twelve Data API key', warn);
  if (apiKey === undefined) {
    throw new UsageError(`connectors create: --kind twelvedata needs --twelvedata-key-file or $${twelveDataKeyEnvVar}`);
  }
  return {
    baseUrl: values['base-url'] ?? 'https://api.twelvedata.com',
    apiKey,
    symbols,
    interval: interval as (typeof twelveDataIntervals)[number],
    ...present('creditsPerMinute', number('credits-per-minute', values['credits-per-minute'])),
    ...present('creditsPerDay', number('credits-per-day', values['credits-per-day'])),
  };
}

async function createBody(args: string[], warn: (line: string) => void): Promise<CreateConnectorBody> {
  const { values } = parseArgs({ args, options: createOptions });
  const kind = values.kind ?? 'thingspeak';
  if (kind !== 'thingspeak' && kind !== 'twelvedata') {
    throw new UsageError(`--kind: expected thingspeak or twelvedata, got "${kind}"`);
  }
  // An option of the other kind is a mistake the server would only answer with a vaguer 400.
  const other = kindOptions[kind === 'thingspeak' ? 'twelvedata' : 'thingspeak'].find((option) => values[option] !== undefined);
  if (other !== undefined) throw new UsageError(`connectors create: --${other} does not apply to --kind ${kind}`);
  if (values.name === undefined) throw new UsageError('connectors create: --name is required');
  const common = { name: values.name, ...present('pollIntervalS', number('poll', values.poll)) };
  return kind === 'thingspeak'
    ? { kind, ...common, config: await thingSpeakConfig(values, warn) }
    : { kind, ...common, config: await twelveDataConfig(values, warn) };
}

export async function connectorsCommand(args: string[], client: ClientAccess, warn: (line: string) => void): Promise<number> {
  const [action, ...rest] = args;
  if (!actions.includes(action as (typeof actions)[number])) {
    throw new UsageError(`connectors: expected one of ${actions.join(', ')}, got ${action === undefined ? 'nothing' : `"${action}"`}`);
  }
  const request = { credential: client.credential };
  const print = (text: string) => process.stdout.write(`${text}\n`);
  if (action === 'list') {
    const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } } });
    const connectors = await listConnectors(client.baseUrl, request);
    print(values.json ? JSON.stringify({ connectors }, null, 2) : connectorLines(connectors));
    return 0;
  }
  if (action === 'create') {
    print(JSON.stringify(await createConnector(client.baseUrl, await createBody(rest, warn), request), null, 2));
    return 0;
  }
  const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError(`connectors ${action}: expected one connector id`);
  const [id] = positionals;
  const connector =
    action === 'get'
      ? await getConnector(client.baseUrl, id, request)
      : await changeConnector(client.baseUrl, id, action as 'pause' | 'resume' | 'delete', request);
  print(JSON.stringify(connector, null, 2));
  return 0;
}
