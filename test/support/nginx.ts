/**
 * Debian's nginx running the checked-in recipe (deploy/nginx/wavehouse.conf) in front of
 * instances the test started: the recipe's own text, with only what a deployment changes
 * replaced (the upstream servers, the TLS listener, the log directory), under a prefix of
 * its own in a temporary directory, on a loopback port. Run as root (CI), nginx is started
 * as `nobody`, so it is never privileged.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.ts';

export const nginxBinary = '/usr/sbin/nginx';
export const recipePath = fileURLToPath(new URL('../../deploy/nginx/wavehouse.conf', import.meta.url));

/** nobody:nogroup on Debian. */
const unprivileged = { uid: 65534, gid: 65534 };

export interface Nginx {
  /** http://127.0.0.1:port */
  readonly baseUrl: string;
  readonly wsUrl: string;
  /** Stops nginx gracefully (it finishes and logs what is open) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** Every log file nginx wrote, by name: the recipe's access and error logs, and the startup log. */
  logs(): Promise<Map<string, string>>;
  readonly accessLogName: string;
}

/**
 * The recipe for a test: `upstreams` (ports on 127.0.0.1) in place of the example servers, a
 * plain listener on `port` in place of the TLS one, logs under `logDir`. Throws when the
 * recipe no longer has the shape this relies on, so that it and the test cannot drift apart.
 */
export function recipeForTest(recipe: string, { upstreams, port, logDir }: { upstreams: number[]; port: number; logDir: string }): string {
  const servers = [...recipe.matchAll(/^( *)server 127\.0\.0\.1:\d+;\n/gm)];
  if (servers.length === 0) throw new Error(`${recipePath}: no 'server 127.0.0.1:PORT;' lines in the upstream block`);
  const indent = servers[0][1];
  let text = recipe.replace(/^ *server 127\.0\.0\.1:\d+;\n/gm, (line) =>
    line === servers[0][0] ? upstreams.map((upstream) => `${indent}server 127.0.0.1:${upstream};\n`).join('') : '',
  );
  text = replaceOnce(text, /^( *)listen 443 ssl;$/m, `$1listen 127.0.0.1:${port};`);
  text = replaceOnce(text, /^ *ssl_certificate .*\n/m, '');
  text = replaceOnce(text, /^ *ssl_certificate_key .*\n/m, '');
  const logs = text.match(/\/var\/log\/nginx\//g)?.length ?? 0;
  if (logs !== 2) throw new Error(`${recipePath}: expected an access_log and an error_log under /var/log/nginx/, found ${logs}`);
  return text.replaceAll('/var/log/nginx/', `${logDir}/`);
}

function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  if (!pattern.test(text)) throw new Error(`${recipePath}: no line matches ${pattern}`);
  return text.replace(pattern, replacement);
}

export async function startNginx(t: Pick<TestContext, 'after'>, upstreams: number[]): Promise<Nginx> {
  if (!existsSync(nginxBinary)) {
    throw new Error(`${nginxBinary} is missing: this test runs Debian's nginx (apt-get install -y nginx; .ci/run installs it)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'wavehouse-nginx-'));
  const port = await freePort();
  const recipe = recipeForTest(await readFile(recipePath, 'utf8'), { upstreams, port, logDir: dir });
  await writeFile(join(dir, 'wavehouse.conf'), recipe);
  await writeFile(join(dir, 'nginx.conf'), mainConfig(dir));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await chown(dir, unprivileged.uid, unprivileged.gid);

  const child = spawn(nginxBinary, ['-p', `${dir}/`, '-e', join(dir, 'startup.log'), '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(asRoot ? unprivileged : {}),
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // SIGQUIT: graceful, so every open connection is finished and logged before nginx exits.
    child.kill('SIGQUIT');
    await bounded(exited, 10_000, () => child.kill('SIGKILL'));
  };
  t.after(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  await eventually(() => listening(child, port, () => stderr), { timeoutMs: 10_000, intervalMs: 50 });

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    stop,
    accessLogName: 'wavehouse-access.log',
    async logs() {
      const names = (await readdir(dir)).filter((name) => name.endsWith('.log'));
      return new Map(await Promise.all(names.map(async (name) => [name, await readFile(join(dir, name), 'utf8')] as const)));
    },
  };
}

/**
 * The main context the recipe is included in: everything nginx writes stays under `dir`. Its
 * error log is at Debian's default level, so that a line the recipe's own logs do not take
 * would show (and be checked) there.
 */
function mainConfig(dir: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${dir}/${kind}-temp;`).join('\n');
  return `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/main-error.log error;
worker_processes 1;
events { worker_connections 4096; }
http {
${temp}
    access_log off;
    include ${dir}/wavehouse.conf;
}
`;
}

async function listening(child: ChildProcess, port: number, stderr: () => string): Promise<void> {
  if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr()}`);
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

async function bounded(done: Promise<void>, timeoutMs: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onTimeout();
      resolve();
    }, timeoutMs);
  });
  await Promise.race([done, late]);
  clearTimeout(timer);
}

/** A port free at this moment (nginx cannot report one it picked itself). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
