/**
 * One poll of one stream, as a producer: records enter the way an HTTP ingest request's
 * samples do (ingest/http-ingest.ts). The stream's producer lock is taken by attaching to the
 * session through the coordinator, the cursor read after it (only then is the stored lastSeq
 * final), the upstream asked from there, the records handed to commitFrame (sequence rules,
 * viewers, the write queue, the wait for the commit), and the lock let go only once they are committed.
 *
 * So nothing is stored twice or skipped, whatever happened before: a record at or below the
 * stored lastSeq (an overlapping window, a retry whose first answer was lost, the poll of a
 * process killed before its commit) is dropped as a duplicate, and the next poll asks from
 * what was committed. A stream missing is created by the poll that first reads it, with the
 * channels its upstream names; a session already holding its key (a create whose answer was
 * lost in a crash) is taken over if its channels are the same. A stream whose session was
 * deleted is missing too: the next poll creates a fresh session under the key (freed by the
 * delete) and reads the upstream from its start, as for a new stream; the deleted one keeps
 * what it had until it is restored or purged.
 */
import { SampleBatch } from '../samples/sample-batch.ts';
import { newIngestToken } from '../sessions/ingest-token.ts';
import type { SessionCoordinator } from '../sessions/session-coordinator.ts';
import type { ProducerHandle, SessionState } from '../sessions/session-state.ts';
import type { ConnectorStreamRecord } from '../storage/connector-repository.ts';
import { isDatabaseUnavailable } from '../storage/database.ts';
import { KeyTakenError, type NewSession, type SessionRecord } from '../storage/session-repository.ts';
import type { PollOutcome, StreamCursor, StreamSpec, UpstreamRecord } from './connector-kind.ts';
import { UpstreamError } from './upstream-error.ts';

export interface StreamSessions {
  find(id: string): Promise<SessionRecord | null>;
  create(session: NewSession): Promise<SessionRecord>;
}

export interface StreamIntakeOptions {
  coordinator: SessionCoordinator;
  sessions: StreamSessions;
  /** How long a poll waits for its records to commit (and for a full write queue to drain). */
  commitTimeoutMs: number;
}

/** What one poll of a stream stored. */
export interface Intake {
  readonly outcome: PollOutcome;
  readonly stored: number;
}

/** A connector as its stream's producer: acks are awaited, not sent. */
class ConnectorProducer implements ProducerHandle {
  // A poll waits on its commit before it moves its cursor on: its batch is committed at once.
  readonly awaitsCommit = true;
  sendAck(): void {}
  closeForEnd(): void {}
  closeForConflict(): void {}
  closeForDelete(): void {}
}

/**
 * The database did not take a poll's records in time (out of reach, or too slow to drain the
 * write queue): nothing is wrong with the upstream, and the records are read again next poll.
 */
export class StoreStalledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreStalledError';
  }
}

/** Whether a poll failed for the database rather than for its upstream: one stalled, or a query that could not reach it. */
export function isDatabaseFailure(error: unknown): boolean {
  return error instanceof StoreStalledError || isDatabaseUnavailable(error);
}

/** The stream's session is gone (deleted, or purged): the poll starts a fresh one. */
class StreamGoneError extends UpstreamError {}

const sameChannels = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((name, i) => name === b[i]);

function batchOf(records: readonly UpstreamRecord[], channelCount: number): SampleBatch {
  const batch = SampleBatch.allocate(records.length, channelCount);
  const n = records.length;
  records.forEach((record, i) => {
    batch.columns[i] = record.seq;
    batch.columns[n + i] = record.t;
    // A missing value is held as NaN, as nullable sessions hold null (docs/protocol.md).
    for (let c = 0; c < channelCount; c++) batch.columns[(c + 2) * n + i] = record.values[c] ?? Number.NaN;
  });
  return batch;
}

/**
 * The records of `outcome` in the channels of the stream's kept mapping: a field renamed
 * upstream still goes to the channel it was created with, a field no longer named is null, and
 * a field named since is not stored (the stream's channels are fixed when it is created).
 */
function remapped(outcome: PollOutcome, mapping: ConnectorStreamRecord['mapping']): PollOutcome {
  const from = mapping.map((kept) => outcome.spec.mapping.findIndex((now) => now.field === kept.field));
  if (
    sameChannels(
      outcome.spec.channels,
      mapping.map((kept) => kept.channel),
    ) &&
    from.every((j, i) => j === i)
  )
    return outcome;
  return {
    ...outcome,
    spec: { ...outcome.spec, channels: mapping.map((kept) => kept.channel), mapping },
    records: outcome.records.map((record) => ({ ...record, values: from.map((j) => (j < 0 ? null : record.values[j])) })),
  };
}

export class StreamIntake {
  constructor(private readonly options: StreamIntakeOptions) {}

  /**
   * Polls `stream` (null: not created yet) with `poll`, and stores what it answers. A stream it
   * creates is told to `onCreated` before its records are stored, so that it is kept even if
   * storing them fails.
   */
  async run(
    connectorId: string,
    stream: ConnectorStreamRecord | null,
    poll: (cursor: StreamCursor) => Promise<PollOutcome>,
    onCreated: (stream: ConnectorStreamRecord) => Promise<void>,
  ): Promise<Intake> {
    if (stream !== null) {
      try {
        return await this.withProducer(stream.sessionId, async (record) => {
          const outcome = remapped(await poll({ lastSeq: record.lastSeq, lastT: record.lastT }), stream.mapping);
          if (!sameChannels(outcome.spec.channels, record.channels)) {
            throw new UpstreamError(`session ${record.id} has channels ${record.channels.join(', ')}, not the stream's`, false);
          }
          return outcome;
        });
      } catch (error) {
        if (!(error instanceof StreamGoneError)) throw error;
      }
    }
    // No session yet: nobody else writes to the stream, and the connector's lock keeps other instances off it.
    const outcome = await poll({ lastSeq: null, lastT: null });
    const created = await this.createStream(connectorId, outcome.spec);
    await onCreated(created);
    const { stored } = await this.withProducer(created.sessionId, async () => outcome);
    return { outcome, stored };
  }

  /**
   * Attaches to the session as its producer, hands `fetch` its record (read under the lock),
   * accepts what it answers, waits for the commit, and detaches whatever happened.
   */
  private async withProducer(
    sessionId: string,
    fetch: (record: SessionRecord) => Promise<PollOutcome>,
  ): Promise<{ outcome: PollOutcome; stored: number }> {
    const { coordinator, sessions } = this.options;
    const producer = new ConnectorProducer();
    const attached = await coordinator.attachProducer(sessionId, producer);
    if (!attached.ok) {
      if (attached.refusal === 'session_not_found') throw new StreamGoneError(`the stream's session ${sessionId} is gone`, false);
      const why = { producer_conflict: 'another producer is attached to it', session_ended: 'it has ended' };
      throw new UpstreamError(`the stream's session ${sessionId} takes no records: ${why[attached.refusal]}`, false);
    }
    const { state } = attached;
    let committed = false;
    try {
      // Claimed under the lock by this attach, the record is final as it is (and a query per poll cheaper); else read now.
      const record = attached.claimed ?? (await sessions.find(sessionId));
      if (record === null) throw new UpstreamError(`the stream's session ${sessionId} is gone`, false);
      const outcome = await fetch(record);
      const stored = await this.accept(state, outcome);
      committed = true;
      return { outcome, stored };
    } finally {
      const detached = coordinator.detachProducer(state, producer);
      // Not committed in time: the lock goes once it is, without the poll waiting for it.
      if (committed) await detached;
      else void detached.catch(() => undefined);
    }
  }

  private async accept(state: SessionState, outcome: PollOutcome): Promise<number> {
    const { coordinator, commitTimeoutMs } = this.options;
    if (outcome.records.length === 0) return 0;
    const batch = batchOf(outcome.records, outcome.spec.channels.length);
    const frame = await coordinator.commitFrame(state, { batch, hasSeq: true, samplesText: null }, Date.now(), commitTimeoutMs);
    switch (frame.kind) {
      case 'queue_full':
        throw new StoreStalledError('the write queue is full (the database is slow or out of reach); the records are read again next poll');
      case 'ended':
        throw new UpstreamError("the stream's session has ended", false);
      case 'fenced':
        throw new UpstreamError('another instance took the stream meanwhile', true);
      case 'not_committed':
        throw new StoreStalledError(`the records were not committed within ${commitTimeoutMs} ms; they are read again next poll`);
      case 'committed':
        return frame.stored;
    }
  }

  private async createStream(connectorId: string, spec: StreamSpec): Promise<ConnectorStreamRecord> {
    const { sessions } = this.options;
    const mapping = spec.mapping.map((m) => ({ ...m }));
    const session: NewSession = {
      id: crypto.randomUUID(),
      // Nobody holds this token: the connector writes through the coordinator, and a client with sessions:write may end it.
      tokenHash: newIngestToken().hash,
      key: spec.key,
      nullable: true,
      channels: spec.channels,
      sampleRateHz: null,
      metadata: { connector: connectorId, mapping },
    };
    try {
      const created = await sessions.create(session);
      return { key: spec.key, sessionId: created.id, mapping };
    } catch (error) {
      if (!(error instanceof KeyTakenError) || error.sessionId === null) throw error;
      const holder = await sessions.find(error.sessionId);
      if (holder === null || !sameChannels(holder.channels, spec.channels) || !holder.nullable) {
        throw new UpstreamError(`the key ${spec.key} is held by session ${error.sessionId}, whose channels are not the upstream's`, false);
      }
      return { key: spec.key, sessionId: holder.id, mapping };
    }
  }
}
