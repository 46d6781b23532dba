/**
 * `wavehouse keys create`: an API key made straight in the database, the way the first admin
 * key comes to be (every later one can be made over REST with it). Against DATABASE_URL, or
 * the embedded PostgreSQL under WAVEHOUSE_DATA_DIR, the same as `npm start` uses; the
 * migrations run first, so it works on a database the service has not started on yet. The
 * key is printed alone on the last line of stdout, for a script to take; it is shown once.
 * The server's modules are loaded only here, so the client commands never load them.
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import type { AuditRow } from '../storage/audit-repository.ts';
import type { Pool } from '../storage/database.ts';
import { CliError, UsageError } from './cli-error.ts';

export const keysUsage = `wavehouse keys create --name <name> (--role reader|writer|admin | --scope <scope> ...)
                     [--key-prefix <prefix>] [--expires-at <ISO 8601 time>]
  Creates an API key in the database the service uses (DATABASE_URL, else the embedded one
  under WAVEHOUSE_DATA_DIR), after running its migrations, and prints the key alone on the
  last line. Scopes: sessions:read, sessions:write, connectors:write, admin.`;

async function configOf(): Promise<Config> {
  const { ConfigError, loadConfig } = await import('../config.ts');
  try {
    return loadConfig({ ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

export async function keysCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'create') throw new UsageError(`keys: expected "create", got ${action === undefined ? 'nothing' : `"${action}"`}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      scope: { type: 'string', multiple: true },
      'key-prefix': { type: 'string' },
      'expires-at': { type: 'string' },
    },
  });
  if (values.name === undefined) throw new UsageError('keys create: --name is required');
  const expiresAt = values['expires-at'] === undefined ? null : new Date(values['expires-at']);
  if (expiresAt !== null && Number.isNaN(expiresAt.getTime())) throw new UsageError('--expires-at: not a time, e.g. 2027-01-31T00:00:00Z');
  const config = await configOf();
  const [{ pino }, { createPool }, { startEmbeddedPostgres }, { migrate }] = await Promise.all([
    import('pino'),
    import('../storage/database.ts'),
    import('../storage/embedded-postgres.ts'),
    import('../storage/migrations.ts'),
  ]);
  // Logs go to stderr, so that stdout holds what a script reads.
  const log = pino({ level: config.logLevel }, pino.destination(2));
  const embedded = config.database.url === null ? await startEmbeddedPostgres({ dataDir: config.database.dataDir, log }) : null;
  const pool = createPool(config.database.url ?? embedded!.url, 2, log);
  try {
    await migrate(pool);
    const created = await createKeyIn(pool, {
      name: values.name,
      role: values.role,
      scopes: values.scope,
      keyPrefix: values['key-prefix'] ?? null,
      expiresAt,
    });
    process.stdout.write(
      `created key ${created.id} "${created.name}" with ${created.scopes.join(' ')}; it is shown once:\n${created.key}\n`,
    );
    return 0;
  } finally {
    await pool.end();
    await embedded?.stop();
  }
}

export interface KeySpec {
  name: string;
  role?: string;
  scopes?: string[];
  keyPrefix: string | null;
  expiresAt: Date | null;
}

/** Creates a key in a migrated database, through the same ApiKeys as POST /keys, and audits it as the CLI's. */
export async function createKeyIn(pool: Pool, spec: KeySpec): Promise<{ id: string; name: string; scopes: string[]; key: string }> {
  const [{ ApiKeys }, { ApiKeyRepository }, { AuditRepository }] = await Promise.all([
    import('../access/api-keys.ts'),
    import('../storage/api-key-repository.ts'),
    import('../storage/audit-repository.ts'),
  ]);
  const audited: AuditRow[] = [];
  const keys = new ApiKeys({
    store: new ApiKeyRepository({ pool }),
    // A new key is in no cache, and this process serves nothing: nothing to tell.
    authenticator: { revoked: () => undefined },
    audit: { record: (context, event) => audited.push({ at: new Date(), ...context, ...event, count: 1 }) },
  });
  const created = await keys.create(spec, { actor: 'cli', ip: null, requestId: null });
  if (!created.ok) throw new UsageError(`keys create: ${created.problem}`);
  await new AuditRepository({ pool }).append(audited);
  return { id: created.view.id, name: created.view.name, scopes: [...created.view.scopes], key: created.key };
}
