/**
 * The shapes a client sees. Session records come from the contract's schemas (type-only
 * imports, erased at build time, so the SDK still bundles for browsers on its own).
 */
import type { Session as SessionSchema } from '../contract/schemas.ts';

export type Session = SessionSchema;

export type CreatedSession = Session & { ingestToken: string };

/** A deleted session: until `purgeAfter` an admin may restore it (restoreSession). */
export type DeletedSession = Session & { deletedAt: string; purgeAfter: string };

/** A restored session: no longer deleted. */
export type RestoredSession = Session & { deletedAt: null };

export interface CreateSessionBody {
  /** A stream name, unique; needs a credential with sessions:write, in either mode. */
  key?: string;
  nullable?: boolean;
  channels?: string[];
  sampleRateHz?: number;
  /** Days its samples are kept after their commit (never past the server's RETENTION_DAYS). */
  retentionDays?: number;
  metadata?: Record<string, unknown>;
}

/** A stored or live sample: `seq`, `t` (ms), then one number per channel, or null in a nullable session. */
export interface Sample {
  seq: number;
  t: number;
  [channel: string]: number | null;
}

/**
 * What a producer pushes: `seq` is optional (the SDK assigns it, continuing the session's
 * stored seqs), and so is `t` (the producer's clock at push time).
 */
/** The answer to postSamples: `ack` is the session's highest committed seq (-1: none). */
export interface IngestReceipt {
  ack: number;
  /** Samples of this request now stored. */
  accepted: number;
  /** Samples at or below the highest accepted seq: dropped, already stored. */
  duplicates: number;
}

export interface SampleInput {
  seq?: number;
  t?: number;
  /** null only for a nullable session's producer (ProducerOptions.nullable). */
  [channel: string]: number | null | undefined;
}

export { defaultChannels } from '../contract/channels.ts';

/**
 * An access token for private mode, current when asked (access-credentials.ts makes them):
 * one credential can be shared by every request, producer and viewer of a process.
 */
export interface AccessCredential {
  /** A token to send now, fetched or refreshed first when it is due. */
  token(): Promise<string>;
  /**
   * The server called `refused` expired: a newer token, shared by every caller that saw the
   * same refusal; null when there is none to be had (a fixed token, a getter that gives it again).
   */
  renew(refused: string): Promise<string | null>;
  /** Stops refreshing ahead of time; asked after, it still answers, fetching then. */
  close(): void;
}
