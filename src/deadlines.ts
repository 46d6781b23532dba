/**
 * Waiting with a bound: the two shapes every part that talks to something outside the process
 * needs (a database, a worker thread, a child process, an exporter), written once so that no
 * part forgets to clear its timer or to handle the answer that comes too late.
 */

/**
 * Whether `work` settled within `ms`: its value if so, else whatever `late()` returns (or
 * throws, to reject). The timer is cleared as soon as either comes, and a rejection of `work`
 * after `ms` is handled by the race (nobody waits for it any more): it never goes unhandled.
 */
export async function within<T, L>(work: Promise<T>, ms: number, late: () => L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), Math.max(0, ms));
  });
  const settled = work.then((value) => ({ value }));
  try {
    const outcome = await Promise.race([settled, timeout]);
    if (outcome !== 'late') return outcome.value;
    return late();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks `check` every `intervalMs` until it says yes (true) or `ms` have passed (false). It is
 * asked at least once, and once more at the deadline, so a condition met during the last
 * interval is not missed.
 */
export async function pollUntil(check: () => boolean | Promise<boolean>, ms: number, intervalMs: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
