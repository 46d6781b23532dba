/**
 * After this process (or a previous one) was SIGKILLed, its postgres keeps running and keeps
 * postmaster.pid, and a new postgres on the directory exits at once. Such an orphan is shut
 * down before the next start; a postmaster.pid whose process is gone, or is an unrelated
 * process under a reused pid (postgres itself would refuse to start on the latter), is dropped.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { pollUntil } from '../../deadlines.ts';
import { exists } from './data-dir.ts';
import { shutDown } from './server.ts';

const execFileAsync = promisify(execFile);
const POLL_MS = 50;

/** ownerFile holds the pid of the process that started the server running on pgDir, if any. */
export async function reclaimDataDir(pgDir: string, ownerFile: string, warn: (obj: object, msg: string) => void): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  const content = await readFile(pidFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (content === undefined) return;

  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  const info = Number.isInteger(pid) && pid > 0 ? await processInfo(pid) : undefined;
  if (info?.cmdline.includes('postgres') && (info.cwd === pgDir || info.cmdline.includes(pgDir))) {
    // While the Node process that started it lives, postgres is its child; an orphan has been
    // re-parented. A live owner means another Wavehouse is using this directory right now.
    const owner = Number.parseInt(await readFile(ownerFile, 'utf8').catch(() => ''), 10);
    if (owner === info.ppid) {
      throw new Error(`${pgDir} is in use by the PostgreSQL (pid ${pid}) of another running process (pid ${owner})`);
    }
    warn({ pid, pgDir }, 'stopping the embedded PostgreSQL left running by a previous run');
    await terminate(pid);
  }

  if (await exists(pidFile)) {
    // Backends of a postmaster that died hard can outlive it for a moment; starting a new
    // postmaster next to them would let two servers write the same files.
    await waitForNoProcessesIn(pgDir, 5_000);
    warn({ pgDir }, 'removing a stale postmaster.pid');
    await rm(pidFile, { force: true });
  }
}

async function terminate(pid: number): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw error;
    }
  };
  const gone = (ms: number) => pollUntil(async () => (await processInfo(pid)) === undefined, ms, POLL_MS);
  if (!(await shutDown(signal, gone, 10_000))) throw new Error(`the old embedded PostgreSQL (pid ${pid}) did not exit`);
}

async function waitForNoProcessesIn(dir: string, ms: number): Promise<void> {
  if (process.platform !== 'linux') return;
  let pids: number[] = [];
  const clear = await pollUntil(
    async () => {
      pids = await processesIn(dir);
      return pids.length === 0;
    },
    ms,
    POLL_MS,
  );
  if (!clear) throw new Error(`processes ${pids.join(', ')} still run in ${dir}; stop them before starting Wavehouse`);
}

async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    if (cwd !== undefined && (cwd === dir || cwd.startsWith(dir + path.sep)) && (await processInfo(pid))) found.push(pid);
  }
  return found;
}

interface ProcessInfo {
  ppid: number;
  cmdline: string;
  /** Linux only, and only for processes this user may inspect. */
  cwd?: string;
}

/** undefined when the process does not exist or is a zombie (dead but not yet reaped). */
async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  if (process.platform === 'linux') {
    const statLine = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (statLine === undefined) return undefined;
    // The command name in parentheses may itself contain spaces and parentheses.
    const [state, ppid] = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X') return undefined;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    return { ppid: Number(ppid), cmdline, cwd };
  }
  const ps = await execFileAsync('ps', ['-o', 'stat=,ppid=,command=', '-p', String(pid)]).catch(() => undefined);
  const match = ps && /^\s*(\S+)\s+(\d+)\s+(.*)$/.exec(ps.stdout.trim());
  if (!match || match[1]!.startsWith('Z')) return undefined;
  return { ppid: Number(match[2]), cmdline: match[3]! };
}
