/**
 * The background jobs every instance runs over the stored data, each a Part started on the
 * app's stack: the roll-up compactor, the purge of deleted sessions past their grace, the chunk
 * compressor and the retention job (docs/architecture.md). Each is safe to run on every instance
 * at once; an interval of 0 leaves a job off on this instance.
 */
import type { Logger } from 'pino';
import type { AuditTrail } from '../access/audit-trail.ts';
import type { Config } from '../config.ts';
import type { Part } from '../lifecycle.ts';
import { compressorCounters, type Metrics, retentionCounters } from '../observability/metrics.ts';
import { ChunkCompressor } from '../storage/chunk-compressor.ts';
import type { Pool } from '../storage/database.ts';
import { RollupCompactor } from '../storage/rollup-compactor.ts';
import type { SessionDeletes } from '../storage/session-deletes.ts';
import { RetentionJob } from './retention-job.ts';
import { SessionPurger } from './session-purger.ts';

export interface MaintenanceOptions {
  config: Config;
  pool: Pool;
  deletes: SessionDeletes;
  audit: Pick<AuditTrail, 'record'>;
  metrics: Metrics;
  log: Logger;
}

/** The jobs this instance runs, in the order they are to be started. */
export function maintenanceJobs({ config, pool, deletes, audit, metrics, log }: MaintenanceOptions): Part[] {
  const jobs: Part[] = [];
  const { rollupCompactIntervalMs, compressIntervalMs, compressAfterMs } = config.writer;
  if (rollupCompactIntervalMs > 0) {
    jobs.push(new RollupCompactor({ pool, intervalMs: rollupCompactIntervalMs, log: log.child({ part: 'compactor' }) }));
  }
  const graceMs = config.sessions.deleteGraceDays * 86_400_000;
  jobs.push(new SessionPurger({ deletes, audit, graceMs, log: log.child({ part: 'purge' }) }));
  if (compressIntervalMs > 0) {
    const counters = compressorCounters(metrics);
    const compressorLog = log.child({ part: 'compressor' });
    jobs.push(new ChunkCompressor({ pool, intervalMs: compressIntervalMs, afterMs: compressAfterMs, log: compressorLog, ...counters }));
  }
  if (config.retention.intervalMs > 0) {
    const counters = retentionCounters(metrics);
    jobs.push(new RetentionJob({ pool, settings: config.retention, counters, log: log.child({ part: 'retention' }) }));
  }
  return jobs;
}
