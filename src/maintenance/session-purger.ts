/**
 * Purges soft-deleted sessions once their grace (DELETE_GRACE_DAYS) is over: their chunks,
 * roll-ups and row, a batch at a time, and a `session.purge` audit row for each.
 *
 * Batches, not one cascading DELETE of the row: a session of 100 M samples has ~100,000
 * chunk rows and their TOAST, and one statement deleting them all would hold their locks
 * and write their WAL in one transaction of seconds, during which the roll-up compactor's
 * deletes of the same session's parts would wait, and replicas lag. A batch is one short
 * transaction of at most `batchSize` rows (storage/session-deletes.ts), chunks first, then
 * roll-up parts, then the row, whose cascade then finds nothing left.
 *
 * Every instance purges, with no leader to elect, as the access sweep does: a batch takes the
 * session's row lock with SKIP LOCKED, so a session another instance is purging is skipped,
 * and a restore waits for the batch, then finds the session past its grace (and answers 404):
 * restore and purge both decide on the database's clock. A failed round is logged, and the next
 * starts over where the rows say.
 */
import type { Logger } from 'pino';
import type { AuditTrail } from '../access/audit-trail.ts';
import { Rounds } from '../rounds.ts';
import type { SessionDeletes } from '../storage/session-deletes.ts';

export interface SessionPurgerOptions {
  readonly deletes: Pick<SessionDeletes, 'purgeable' | 'purgeStep'>;
  readonly audit: Pick<AuditTrail, 'record'>;
  /** How long a deleted session may still be restored; purged after. */
  readonly graceMs: number;
  /** Between two rounds. Default an hour. */
  readonly intervalMs?: number;
  /**
   * Rows per batch. Default 100: 100 chunks of 2,000 samples (48 KB each, with their TOAST)
   * took 56 ms a batch at the median and 384 ms at worst on a busy 2-core box; 500 took 284 ms
   * and 1.2 s, for the same total (20,000 chunks, about 1 GB, in 13.5 s either way).
   */
  readonly batchSize?: number;
  readonly log?: Logger;
}

/** The sessions one round looks at; the rest wait for the next (a purge is never urgent). */
const sessionsPerRound = 1_000;

export class SessionPurger {
  readonly name = 'session purge';
  private readonly batchSize: number;
  private readonly rounds: Rounds<string[]>;

  constructor(private readonly options: SessionPurgerOptions) {
    this.batchSize = options.batchSize ?? 100;
    this.rounds = new Rounds(() => this.purgeAll(), options.intervalMs ?? 60 * 60 * 1000);
  }

  /** The first round comes at a random point of the first interval (rounds.ts). */
  async start(): Promise<void> {
    this.rounds.start();
  }

  /** Purges now, or joins the round under way; the ids of the sessions this round purged. */
  purge(): Promise<string[]> {
    return this.rounds.run();
  }

  private async purgeAll(): Promise<string[]> {
    const { deletes, graceMs, log } = this.options;
    const purged: string[] = [];
    try {
      for (const id of await deletes.purgeable(graceMs, sessionsPerRound)) {
        if (this.rounds.stopped) break;
        if (await this.purgeOne(id)) purged.push(id);
      }
      if (purged.length > 0) log?.info({ sessions: purged.length }, 'purged sessions deleted more than a grace ago');
      return purged;
    } catch (error) {
      log?.warn({ err: error }, 'purging deleted sessions failed; the next round tries again');
      throw error;
    }
  }

  /** Batch after batch until the row goes, or nothing is done (restored, or another instance's). */
  private async purgeOne(id: string): Promise<boolean> {
    const { deletes, graceMs, audit } = this.options;
    while (!this.rounds.stopped) {
      const step = await deletes.purgeStep(id, graceMs, this.batchSize);
      if (step.purged) {
        audit.record({ actor: 'purge', ip: null, requestId: null }, { action: 'session.purge', target: id, outcome: 'success' });
        return true;
      }
      if (step.rows === 0) return false;
    }
    return false;
  }

  /** Stops purging; a round under way ends after its current batch. */
  async close(_deadline: number): Promise<void> {
    await this.rounds.stop();
  }
}
