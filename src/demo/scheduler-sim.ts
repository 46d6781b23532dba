/**
 * A single-processor scheduler simulation, as the seed project compared its policies: the same
 * seeded random task set run under first-in-first-out, shortest-job-first, round-robin and
 * earliest-deadline-first, each giving one record per finished task. No I/O and no clock: a
 * policy's log is a function of the seed, so a test can recompute anything the demo stored.
 *
 * Every metric is a whole number (milliseconds, millijoules, cost units, 0/1): their sums are
 * exact in float64 in any order, so a leaderboard the server merges from roll-ups equals one
 * summed here, to the last bit.
 */

export const policies = ['fifo', 'sjf', 'rr', 'edf'] as const;
export type Policy = (typeof policies)[number];

export const metricChannels = ['duration', 'energy', 'cost', 'win'] as const;

export interface Task {
  readonly id: number;
  readonly arrivalMs: number;
  readonly workMs: number;
  readonly deadlineMs: number;
  /** What each ms of its turnaround costs: 1, 2 or 3. */
  readonly weight: number;
}

/** One finished task, as stored: seq is the order of finishing, t the simulated finish time (ms from the start). */
export interface TaskRecord {
  readonly seq: number;
  readonly finishMs: number;
  readonly taskId: number;
  /** Turnaround: finish - arrival, ms. */
  readonly duration: number;
  /** mJ: 3 per ms of work, 20 per dispatch (a context switch's cost). */
  readonly energy: number;
  /** duration * weight. */
  readonly cost: number;
  /** 1 when finished by its deadline. */
  readonly win: 0 | 1;
}

/** Round-robin's time slice. */
export const quantumMs = 50;
/** Each dispatch of a task costs this much processor time, under every policy. */
export const switchMs = 1;

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), state | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** `count` tasks arriving about every 250 ms, 20-400 ms of work each, deadlines 1.5-4 times their work after arrival. */
export function taskSet(seed: number, count: number): Task[] {
  const next = random(seed);
  const tasks: Task[] = [];
  let arrivalMs = 0;
  for (let id = 1; id <= count; id++) {
    arrivalMs += Math.round(-Math.log(1 - next()) * 250);
    const workMs = 20 + Math.floor(next() * 381);
    const deadlineMs = arrivalMs + Math.round(workMs * (1.5 + next() * 2.5));
    tasks.push({ id, arrivalMs, workMs, deadlineMs, weight: 1 + Math.floor(next() * 3) });
  }
  return tasks;
}

interface Running {
  readonly task: Task;
  left: number;
  dispatches: number;
}

/** Which ready task runs next; the ready list is in arrival order (round-robin's queue order). */
const pick: Record<Policy, (ready: readonly Running[]) => number> = {
  fifo: () => 0,
  rr: () => 0,
  sjf: (ready) => indexOfMin(ready, (r) => r.task.workMs),
  edf: (ready) => indexOfMin(ready, (r) => r.task.deadlineMs),
};

function indexOfMin(ready: readonly Running[], key: (r: Running) => number): number {
  let best = 0;
  for (let i = 1; i < ready.length; i++) if (key(ready[i]) < key(ready[best])) best = i;
  return best;
}

/** Runs `tasks` under `policy`; round-robin alone preempts (after a quantum), the others run a task to its end. */
export function simulate(policy: Policy, tasks: readonly Task[]): TaskRecord[] {
  const pending = [...tasks].sort((a, b) => a.arrivalMs - b.arrivalMs || a.id - b.id);
  const ready: Running[] = [];
  const records: TaskRecord[] = [];
  let now = 0;
  let arrived = 0;
  const admit = () => {
    while (arrived < pending.length && pending[arrived].arrivalMs <= now) {
      const task = pending[arrived++];
      ready.push({ task, left: task.workMs, dispatches: 0 });
    }
  };
  while (records.length < pending.length) {
    admit();
    if (ready.length === 0) {
      now = pending[arrived].arrivalMs;
      continue;
    }
    const [running] = ready.splice(pick[policy](ready), 1);
    running.dispatches++;
    const slice = policy === 'rr' ? Math.min(quantumMs, running.left) : running.left;
    now += switchMs + slice;
    running.left -= slice;
    // Tasks that arrived during the slice queue before the preempted one, as in a real round-robin.
    admit();
    if (running.left > 0) {
      ready.push(running);
      continue;
    }
    const { task } = running;
    const duration = now - task.arrivalMs;
    records.push({
      seq: records.length + 1,
      finishMs: now,
      taskId: task.id,
      duration,
      energy: 3 * task.workMs + 20 * running.dispatches,
      cost: duration * task.weight,
      win: now <= task.deadlineMs ? 1 : 0,
    });
  }
  return records;
}

export interface Standing {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  readonly avg: number;
  readonly first: number;
  readonly last: number;
}

/** What the leaderboard must say of one policy's channel, from its log: computed here, not read back. */
export function standing(records: readonly TaskRecord[], channel: (typeof metricChannels)[number]): Standing {
  const values = records.map((record) => record[channel]);
  const sum = values.reduce((a, b) => a + b, 0);
  return {
    count: values.length,
    min: Math.min(...values),
    max: Math.max(...values),
    sum,
    avg: sum / values.length,
    first: values[0],
    last: values[values.length - 1],
  };
}
