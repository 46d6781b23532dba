/**
 * A viewer's history: the stored samples of a range, once the range is committed. A gap a
 * viewer finds may still be in another process's write queue, so the read first waits
 * (bounded) until the session's lastSeq reaches the end of the range; past the bound it
 * fails, and the viewer is closed to reconnect with fromSeq.
 *
 * The database comes in through the two ports below, which storage's SessionRepository and
 * SampleStore fill (app.ts hands them in), so live/ imports nothing of storage.
 */
import { pollUntil } from '../deadlines.ts';
import type { SampleBatch } from '../samples/sample-batch.ts';
import type { HistorySource } from './viewer-connection.ts';

/** The stored sessions, as a viewer reads them (storage/session-repository.ts). */
export interface StoredSessions {
  find(sessionId: string): Promise<{ readonly status: string; readonly lastSeq: number | null } | null>;
}

/** The stored samples, as a viewer reads them (storage/sample-store.ts). */
export interface StoredSamples {
  readRange(sessionId: string, fromSeq: number, toSeq: number): AsyncIterable<SampleBatch>;
}

/** How long a viewer waits for missed samples to be committed before giving up (1011, reconnect). */
const historyWaitMs = 10_000;
const historyPollMs = 20;

export function committedHistory(sessions: StoredSessions, samples: StoredSamples, sessionId: string): HistorySource {
  return async function* (fromSeq: number, toSeq: number) {
    // A read to no end (a viewer joining with no recent window here) takes what is committed
    // now: what is still to be committed comes later as a gap before the next frame.
    if (toSeq !== Number.MAX_SAFE_INTEGER) {
      const isCommitted = async () => ((await sessions.find(sessionId))?.lastSeq ?? -1) >= toSeq;
      if (!(await pollUntil(isCommitted, historyWaitMs, historyPollMs))) {
        throw new Error(`samples up to ${toSeq} were not committed within ${historyWaitMs} ms`);
      }
    }
    yield* samples.readRange(sessionId, fromSeq, toSeq);
  };
}
