/**
 * `wavehouse serve`: the service, exactly as `npm start` runs it (src/serve.ts listens and
 * handles SIGTERM/SIGINT). Settings come from the environment; --host and --port are
 * shorthands for HOST and PORT. The server is loaded only here, so the client commands never
 * load it.
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { CliError } from './cli-error.ts';

export const serveUsage = `wavehouse serve [--host <address>] [--port <port>]
  Runs the service. Settings come from environment variables (README); --host and --port
  override HOST and PORT.`;

export async function serveCommand(args: string[]): Promise<'running'> {
  const { values } = parseArgs({ args, options: { host: { type: 'string' }, port: { type: 'string' } } });
  const env = { ...process.env };
  if (values.host !== undefined) env.HOST = values.host;
  if (values.port !== undefined) env.PORT = values.port;
  const [{ ConfigError, loadConfig }, { serve }] = await Promise.all([import('../config.ts'), import('../serve.ts')]);
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    // Every problem is listed, one a line: the CLI prints only the first line of other errors.
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
  await serve(config);
  return 'running';
}
