/**
 * Keeps the access tables from growing forever: refresh tokens some days past their expiry,
 * the families they leave empty, and audit rows past AUDIT_RETENTION_DAYS are deleted, once an
 * hour, a batch at a time.
 *
 * Each batch is one short statement (the audit's, one short transaction) that locks only the
 * rows it deletes, so no sweep holds a long lock or blocks a refresh or an audit append. Every
 * instance sweeps, with no leader to elect: a batch skips the rows another instance's batch
 * holds, and a delete of rows already gone deletes nothing, so two sweeps at once only share
 * the work. A failed sweep is logged and the next one, an hour later, starts over.
 */
import type { Logger } from 'pino';
import { Rounds } from '../rounds.ts';
import type { AuditRepository } from '../storage/audit-repository.ts';
import type { RefreshTokenRepository } from '../storage/refresh-token-repository.ts';

const dayMs = 24 * 60 * 60 * 1000;

export interface AccessSweeperOptions {
  readonly refreshTokens: Pick<RefreshTokenRepository, 'deleteExpired' | 'deleteEmptyFamilies'>;
  readonly audit: Pick<AuditRepository, 'deleteOlderThan'>;
  /** Audit rows older than this many days are deleted; 0 keeps them forever. */
  readonly auditRetentionDays: number;
  /**
   * How long an expired refresh token is kept. Default 7 days: for that long its replay is
   * still told apart (expired, or reused, which revokes its family) from a made-up token.
   */
  readonly refreshGraceMs?: number;
  /** Between two sweeps. Default an hour. */
  readonly intervalMs?: number;
  /** Rows per delete. Default 1,000: a few milliseconds of work, however large the backlog. */
  readonly batchSize?: number;
  readonly clock?: () => number;
  readonly log?: Logger;
}

/** Rows deleted by one sweep. */
export interface Swept {
  readonly refreshTokens: number;
  readonly refreshFamilies: number;
  readonly auditRows: number;
}

export class AccessSweeper {
  readonly name = 'access sweep';
  private readonly refreshGraceMs: number;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly clock: () => number;
  private readonly rounds: Rounds<Swept>;

  constructor(private readonly options: AccessSweeperOptions) {
    this.refreshGraceMs = options.refreshGraceMs ?? 7 * dayMs;
    this.intervalMs = options.intervalMs ?? 60 * 60 * 1000;
    this.batchSize = options.batchSize ?? 1_000;
    this.clock = options.clock ?? Date.now;
    this.rounds = new Rounds(() => this.sweepAll(), this.intervalMs);
  }

  /** The first sweep comes at a random point of the first interval (rounds.ts). */
  async start(): Promise<void> {
    this.rounds.start();
  }

  /** Sweeps now, or joins the sweep under way. Rejects with a failed delete's error, once logged. */
  sweep(): Promise<Swept> {
    return this.rounds.run();
  }

  private async sweepAll(): Promise<Swept> {
    const now = this.clock();
    const retentionDays = this.options.auditRetentionDays;
    try {
      const refreshTokens = await this.inBatches((limit) =>
        this.options.refreshTokens.deleteExpired(new Date(now - this.refreshGraceMs), limit),
      );
      const refreshFamilies = await this.inBatches((limit) => this.options.refreshTokens.deleteEmptyFamilies(limit));
      const auditRows =
        retentionDays === 0
          ? 0
          : await this.inBatches((limit) => this.options.audit.deleteOlderThan(new Date(now - retentionDays * dayMs), limit));
      const swept = { refreshTokens, refreshFamilies, auditRows };
      if (refreshTokens + refreshFamilies + auditRows > 0) this.options.log?.info(swept, 'swept expired refresh tokens and old audit rows');
      return swept;
    } catch (error) {
      this.options.log?.warn({ err: error }, 'sweeping the access tables failed; the next sweep tries again');
      throw error;
    }
  }

  /** Deletes batch after batch until one comes back short, or the sweeper is closed. */
  private async inBatches(deleteBatch: (limit: number) => Promise<number>): Promise<number> {
    let total = 0;
    while (!this.rounds.stopped) {
      const deleted = await deleteBatch(this.batchSize);
      total += deleted;
      if (deleted < this.batchSize) break;
    }
    return total;
  }

  /** Stops sweeping; a sweep under way ends after its current batch. */
  async close(_deadline: number): Promise<void> {
    await this.rounds.stop();
  }
}
