/**
 * `wavehouse connectors ...`: the connectors REST API (docs/connectors.md) from a terminal.
 * Reading needs a key with sessions:read, changing one connectors:write, in either mode. A
 * ThingSpeak read key is secret: it comes from a file or $WAVEHOUSE_READ_API_KEY, never from
 * the command line (ps, shell history), and the server never answers it, so nothing printed
 * holds it.
 */
import { parseArgs } from 'node:util';
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

export const connectorsUsage = `wavehouse connectors list [--json]
wavehouse connectors get|pause|resume|delete <id>
wavehouse connectors create --name <name> --channel-id <id> [--base-url <url>] [--poll <seconds>]
                            [--page-size <n>] [--read-api-key-file <path>]
  list prints a line per connector (id, state, last success, breaker, next poll, last error);
  the others print the connector as JSON. create makes a thingspeak connector (--base-url
  default https://api.thingspeak.com); a private channel's read key comes from
  --read-api-key-file (its first line; "-" reads stdin), else $${readKeyEnvVar}.`;

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

async function createBody(args: string[], warn: (line: string) => void): Promise<CreateConnectorBody> {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      'channel-id': { type: 'string' },
      'base-url': { type: 'string' },
      poll: { type: 'string' },
      'page-size': { type: 'string' },
      'read-api-key-file': { type: 'string' },
    },
  });
  if (values.name === undefined) throw new UsageError('connectors create: --name is required');
  const channelId = number('channel-id', values['channel-id']);
  if (channelId === undefined) throw new UsageError('connectors create: --channel-id is required');
  const keyFile = values['read-api-key-file'];
  const fromEnv = process.env[readKeyEnvVar];
  const readApiKey =
    keyFile !== undefined
      ? await readSecretFile(keyFile, 'read API key', warn)
      : fromEnv === undefined
        ? undefined
        : nonEmpty(fromEnv, `$${readKeyEnvVar}`);
  const pageSize = number('page-size', values['page-size']);
  const pollIntervalS = number('poll', values.poll);
  return {
    kind: 'thingspeak',
    name: values.name,
    config: {
      baseUrl: values['base-url'] ?? 'https://api.thingspeak.com',
      channelId,
      ...(readApiKey === undefined ? {} : { readApiKey }),
      ...(pageSize === undefined ? {} : { pageSize }),
    },
    ...(pollIntervalS === undefined ? {} : { pollIntervalS }),
  };
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
