/**
 * What the kernel says about our processes: RSS and its peak (VmRSS, VmHWM) and CPU time,
 * so every figure can be reported with who was using the two cores while it was measured.
 * Linux only (the bench machine is); everything here reads /proc.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
} catch {
  // getconf missing: 100 is the Linux default on every common platform.
}

export interface MemoryStatus {
  rssKiB: number;
  hwmKiB: number;
}

export function memoryOf(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/**
 * Watches a process's VmRSS every 10 ms from now on; `stop()` ends the polling and gives the
 * RSS it started at and the highest seen (a last reading included).
 */
export function watchRss(pid: number): { stop(): { beforeKiB: number; peakKiB: number } } {
  const beforeKiB = memoryOf(pid).rssKiB;
  let peakKiB = beforeKiB;
  const poll = setInterval(() => {
    peakKiB = Math.max(peakKiB, memoryOf(pid).rssKiB);
  }, 10);
  return {
    stop() {
      clearInterval(poll);
      peakKiB = Math.max(peakKiB, memoryOf(pid).rssKiB);
      return { beforeKiB, peakKiB };
    },
  };
}

/** User + system CPU seconds a process has used so far (NaN once it is gone). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/**
 * PostgreSQL processes that work for a database: its backends (their command line names the
 * database) plus the shared WAL writer, checkpointer and background writer. Other tenants'
 * backends are left out; their load shows up as "other" CPU. Read from /proc, so it is cheap
 * enough to call at both ends of a measurement and catch backends opened in between.
 */
export function postgresPidsOf(databaseName: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
    } catch {
      continue;
    }
    if (!cmdline.startsWith('postgres: ')) continue;
    if (cmdline.includes(` ${databaseName} `) || /: (walwriter|checkpointer|background writer)/.test(cmdline)) pids.push(Number(entry));
  }
  return pids;
}

/** Busy, I/O-wait and total CPU seconds of the whole box, summed over cores. */
function boxCpuSeconds(): { busy: number; iowait: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / clockTicks, iowait: iowait / clockTicks, total: (busy + idle + iowait) / clockTicks };
}

/** Each role: fixed pids, or a function that finds them (called at both ends). */
export type Roles = Record<string, readonly number[] | (() => readonly number[])>;

/** Cores used by each role over an interval, plus the rest of the box. */
export interface CpuUse {
  seconds: number;
  cores: Record<string, number>;
  /** Busy cores of the whole box that none of the roles account for (other tenants, the kernel). */
  otherCores: number;
  boxBusyCores: number;
  /** Idle cores with I/O outstanding (a disk-bound step shows it here, not as busy). */
  iowaitCores: number;
  /**
   * The watched process's main thread, in cores: running, and runnable but waiting for a core.
   * The two add up to 1 when that thread always had work: it was the bottleneck, and
   * `waiting` is what the other threads on the box took from it.
   */
  mainThread?: { running: number; waiting: number };
}

/** Seconds the main thread of `pid` has run and has waited runnable for a core (/proc schedstat, in ns). */
function mainThreadScheduleOf(pid: number): { running: number; waiting: number } {
  try {
    const [running, waiting] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { running: running / 1e9, waiting: waiting / 1e9 };
  } catch {
    return { running: Number.NaN, waiting: Number.NaN };
  }
}

export class CpuMeter {
  private startedAt = 0;
  private readonly start = new Map<number, number>();
  private boxStart = { busy: 0, iowait: 0, total: 0 };
  private mainThreadStart = { running: 0, waiting: 0 };

  /** `mainThreadPid`: a process whose main thread's running and waiting time is also measured. */
  constructor(
    private readonly roles: Roles,
    private readonly mainThreadPid: number | null = null,
  ) {}

  private pidsOf(role: string): readonly number[] {
    const pids = this.roles[role];
    return typeof pids === 'function' ? pids() : pids;
  }

  begin(): this {
    this.startedAt = performance.now();
    this.boxStart = boxCpuSeconds();
    if (this.mainThreadPid !== null) this.mainThreadStart = mainThreadScheduleOf(this.mainThreadPid);
    for (const role of Object.keys(this.roles)) for (const pid of this.pidsOf(role)) this.start.set(pid, cpuSecondsOf(pid));
    return this;
  }

  end(): CpuUse {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const box = boxCpuSeconds();
    const cores: Record<string, number> = {};
    let accounted = 0;
    for (const role of Object.keys(this.roles)) {
      const pids = new Set([...this.pidsOf(role)]);
      let used = 0;
      for (const pid of pids) {
        // A process born during the interval used all its CPU time in it; one that died is lost.
        const now = cpuSecondsOf(pid);
        const before = this.start.get(pid) ?? 0;
        if (Number.isFinite(now) && Number.isFinite(before)) used += now - before;
      }
      cores[role] = round(used / seconds, 2);
      accounted += used;
    }
    const boxBusy = box.busy - this.boxStart.busy;
    const use: CpuUse = {
      seconds: round(seconds, 2),
      cores,
      otherCores: round(Math.max(0, boxBusy - accounted) / seconds, 2),
      boxBusyCores: round(boxBusy / seconds, 2),
      iowaitCores: round((box.iowait - this.boxStart.iowait) / seconds, 2),
    };
    if (this.mainThreadPid !== null) {
      const now = mainThreadScheduleOf(this.mainThreadPid);
      const running = (now.running - this.mainThreadStart.running) / seconds;
      const waiting = (now.waiting - this.mainThreadStart.waiting) / seconds;
      if (Number.isFinite(running) && Number.isFinite(waiting)) use.mainThread = { running: round(running, 2), waiting: round(waiting, 2) };
    }
    return use;
  }
}

/** How busy the box is right now, in cores, over `ms` (for the "was the box quiet" note). */
export async function boxBusyCores(ms: number): Promise<number> {
  const before = boxCpuSeconds();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = boxCpuSeconds();
  return round((after.busy - before.busy) / (ms / 1000), 2);
}

/** The soft limit on open files of this process (children inherit it). */
export function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function formatCpu(use: CpuUse | undefined): string {
  if (!use) return '';
  const parts = Object.entries(use.cores).map(([role, cores]) => `${role} ${cores.toFixed(2)}`);
  const iowait = use.iowaitCores >= 0.05 ? `, iowait ${use.iowaitCores.toFixed(2)}` : '';
  const mainThread = use.mainThread
    ? `; main thread ${use.mainThread.running.toFixed(2)} running + ${use.mainThread.waiting.toFixed(2)} waiting for a core`
    : '';
  const box = `box ${use.boxBusyCores.toFixed(2)} of ${os.availableParallelism()}${iowait}`;
  return `${parts.join(', ')}, other ${use.otherCores.toFixed(2)} (${box})${mainThread}`;
}

/** CPU use of `roles` over the wall-clock window [fromMs, toMs) (timestamps as stats.wallMs). */
export function meterWindow(roles: Roles, fromMs: number, toMs: number, mainThreadPid: number | null = null): Promise<CpuUse> {
  const wall = () => performance.timeOrigin + performance.now();
  const meter = new CpuMeter(roles, mainThreadPid);
  return new Promise((resolve) => {
    setTimeout(
      () => {
        meter.begin();
        setTimeout(() => resolve(meter.end()), Math.max(0, toMs - wall()));
      },
      Math.max(0, fromMs - wall()),
    );
  });
}
