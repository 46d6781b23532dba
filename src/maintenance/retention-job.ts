/**
 * Keeps sample storage's time partitions and applies retention (issue #20), a round every
 * `intervalMs`: creates the day partitions `aheadDays` ahead (storage/chunk-partitions.ts),
 * drops those wholly past RETENTION_DAYS, deletes in small batches what a partition cannot
 * (sessions with a retention of their own, roll-ups past ROLLUP_RETENTION_DAYS:
 * storage/retention-deletes.ts).
 *
 * Every instance runs one; a round is done by whichever instance gets a session-level advisory
 * lock, tried without waiting, and the others skip it: two creating the same day would fail on
 * the name, and two deleting the same rows would only wait on each other's row locks. A failed
 * round is logged and tried again at the next interval; each of its steps commits on its own,
 * so what it did stays done.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { Rounds } from '../rounds.ts';
import { dropExpired, ensurePartitions, listPartitions } from '../storage/chunk-partitions.ts';
import { withPooledClient } from '../storage/database.ts';
import { type DeleteBudget, deleteExpiredRollups, deleteSessionExpired } from '../storage/retention-deletes.ts';

/** Arbitrary but fixed: the advisory lock key every instance's job agrees on. */
const leaderLockKey = 0x52455445;

export interface RetentionSettings {
  /** Days a chunk is kept after its commit; 0 keeps every chunk. */
  days: number;
  /** Days a roll-up part is kept after its block's end (by t); 0 keeps every part. */
  rollupDays: number;
  /** Day partitions created ahead of today. */
  aheadDays: number;
  intervalMs: number;
}

export interface RetentionRound {
  /** False when another instance held the lock: this one did nothing. */
  leader: boolean;
  partitionsCreated: number;
  partitionsDropped: number;
  /** Days to create and expired partitions to drop whose locks were not had in time, left for the next round. */
  createsDeferred: number;
  dropsDeferred: number;
  partitionChunks: number;
  /** Spent detaching and dropping expired partitions. */
  dropMs: number;
  sessionChunks: number;
  rollups: number;
}

export interface RetentionCounters {
  round(partitions: number, deleted: { partitionChunks: number; sessionChunks: number; rollups: number }): void;
  failed(): void;
}

export interface RetentionJobOptions {
  pool: pg.Pool;
  settings: RetentionSettings;
  counters?: RetentionCounters;
  log?: Logger;
  /** Rows a DELETE takes and DELETEs a step may run per round. Default 1,000 rows, 100 statements. */
  budget?: DeleteBudget;
  /** The clock, for tests. */
  now?: () => number;
}

/** One round on `client`, if this instance gets the lock. */
async function roundOn(client: pg.ClientBase, options: RetentionJobOptions, budget: DeleteBudget): Promise<RetentionRound> {
  const { settings, now = Date.now } = options;
  const round = {
    leader: false,
    partitionsCreated: 0,
    partitionsDropped: 0,
    createsDeferred: 0,
    dropsDeferred: 0,
    partitionChunks: 0,
    dropMs: 0,
    sessionChunks: 0,
    rollups: 0,
  };
  const { rows } = await client.query<{ taken: boolean }>('SELECT pg_try_advisory_lock($1) AS taken', [leaderLockKey]);
  if (!rows[0].taken) return round;
  try {
    round.leader = true;
    const created = await ensurePartitions(client, now(), settings.aheadDays);
    round.partitionsCreated = created.created;
    round.createsDeferred = created.deferred;
    if (settings.days > 0) {
      const dropped = await dropExpired(client, now(), settings.days);
      round.partitionsDropped = dropped.partitions;
      round.dropsDeferred = dropped.deferred;
      round.partitionChunks = dropped.chunks;
      round.dropMs = Math.round(dropped.detachMs + dropped.dropMs);
    }
    round.sessionChunks = await deleteSessionExpired(client, budget);
    if (settings.rollupDays > 0) round.rollups = await deleteExpiredRollups(client, now(), settings.rollupDays, budget);
    options.counters?.round((await listPartitions(client)).length, round);
    return round;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [leaderLockKey]).catch(() => undefined);
  }
}

/** The job as a Part (lifecycle.ts) of the app. */
export class RetentionJob {
  readonly name = 'retention job';
  private readonly budget: DeleteBudget;
  private readonly rounds: Rounds<RetentionRound>;

  constructor(private readonly options: RetentionJobOptions) {
    this.budget = options.budget ?? { batchRows: 1_000, maxBatches: 100 };
    this.rounds = new Rounds(() => this.round(), options.settings.intervalMs, 'at once');
  }

  /** A first round at once, so that a fresh install has its partitions ahead before the first day ends; then every interval. */
  async start(): Promise<void> {
    this.rounds.start();
  }

  /** Runs a round, or joins the one under way. Rejects with its error, once logged. */
  run(): Promise<RetentionRound> {
    return this.rounds.run();
  }

  private async round(): Promise<RetentionRound> {
    try {
      const round = await withPooledClient(this.options.pool, (client) => roundOn(client, this.options, this.budget));
      if (round.leader) this.options.log?.info(round, 'retention round');
      return round;
    } catch (error) {
      this.options.counters?.failed();
      this.options.log?.warn({ err: error }, 'a retention round failed; the next one tries again');
      throw error;
    }
  }

  /** Stops the rounds; one under way ends first. */
  async close(_deadline: number): Promise<void> {
    await this.rounds.stop();
  }
}
