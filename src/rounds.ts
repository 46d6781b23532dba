/**
 * Upkeep run in rounds every `intervalMs` by a part (the access sweep, the purge of deleted
 * sessions, retention, chunk compression, roll-up compaction), written once so that each
 * part starts, overlaps and stops its rounds the same way. Plain timers, nothing of ours: a
 * part of any folder may use it (storage cannot import lifecycle.ts, the app's stack).
 *
 * The first round comes at a random point of the first interval, so that instances started
 * together (a deploy) do not run together, and a start is not slowed by a backlog; a part
 * whose first round cannot wait asks for it at once. One round at a time: a call while one
 * runs joins it. A failed round is the round's to log; the next starts over. `stop` clears
 * the timer and waits for the round under way, which checks `stopped` between its batches.
 */
export class Rounds<T> {
  stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<T> | null = null;

  constructor(
    private readonly round: () => Promise<T>,
    private readonly intervalMs: number,
    private readonly firstRound: 'jittered' | 'at once' = 'jittered',
  ) {}

  start(): void {
    const runQuietly = () => void this.run().catch(() => undefined);
    const repeat = () => {
      runQuietly();
      this.timer = setInterval(runQuietly, this.intervalMs).unref();
    };
    if (this.firstRound === 'at once') repeat();
    else this.timer = setTimeout(repeat, Math.random() * this.intervalMs).unref();
  }

  /** Runs a round now, or joins the one under way. */
  run(): Promise<T> {
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}
