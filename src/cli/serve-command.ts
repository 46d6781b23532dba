/**
 * `wavehouse serve`: the service, exactly as `npm start` runs it (src/main.ts reads the
 * environment, listens, and handles SIGTERM/SIGINT). --host and --port are shorthands for
 * HOST and PORT.
 */
import { parseArgs } from 'node:util';

export const serveUsage = `wavehouse serve [--host <address>] [--port <port>]
  Runs the service. Settings come from environment variables (README); --host and --port
  override HOST and PORT.`;

export async function serveCommand(args: string[]): Promise<'running'> {
  const { values } = parseArgs({ args, options: { host: { type: 'string' }, port: { type: 'string' } } });
  if (values.host !== undefined) process.env.HOST = values.host;
  if (values.port !== undefined) process.env.PORT = values.port;
  await import('../main.ts');
  return 'running';
}
