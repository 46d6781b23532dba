/**
 * The commit thread's body, the code that runs on it (commit-thread.ts starts it, through
 * commit-thread-entry.mjs): a pool of its own and a SampleStore that runs the writer's
 * transactions. Each request is answered once, in any order: a commit with `ok`, `fenced`
 * (the sessions another process has taken) or `error`; an isCommitted with its answer; a ping
 * once the pool has a working connection (commit-thread.ts waits for it at start). `close`
 * ends the pool's connections, and with them the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../observability/logger.ts';
import { FencedError } from './commit-refusal.ts';
import type { CommitRequest, CommitResponse, CommitThreadData } from './commit-thread.ts';
import { createPool } from './database.ts';
import { SampleStore } from './sample-store.ts';

const { databaseUrl, connections, logLevel, rollups } = workerData as CommitThreadData;
const log = createLogger(logLevel).child({ part: 'commit-thread' });
// The writer's COPYs write most of the table's pages from its own backend (a bulk write goes
// through a small ring of shared buffers), and the kernel keeps them dirty until a checkpoint's
// fsync or its own writeback burst, which then writes hundreds of MB at once and holds up every
// commit's WAL flush behind it. Asking for writeback every 256 kB, as PostgreSQL's own
// checkpointer does (checkpoint_flush_after), spreads that out: JSON ack p99 at half load
// 120-162 ms with it, 484-674 ms without, for no measurable loss of throughput
// (docs/performance.md).
const pool = createPool(databaseUrl, connections, log, { applicationName: 'wavehouse-writer', backendFlushAfterKb: 256 });
const store = new SampleStore(pool, { rollups });
const port = parentPort!;

async function answer(request: CommitRequest): Promise<CommitResponse> {
  try {
    if (request.type === 'ping') {
      await pool.query('SELECT 1');
      return { id: request.id, ok: true };
    }
    if (request.type === 'isCommitted') return { id: request.id, ok: true, committed: await store.isCommitted(request.marker) };
    const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    await store.commitCopy(body, request.advances, request.marker);
    return { id: request.id, ok: true };
  } catch (error) {
    if (error instanceof FencedError) return { id: request.id, ok: false, fenced: error.sessionIds };
    const { message, code } = error instanceof Error ? (error as Error & { code?: string }) : { message: String(error), code: undefined };
    return { id: request.id, ok: false, error: { message, code } };
  }
}

/**
 * The answer, with a commit body's memory moved back to the main thread, which writes its next
 * body into it. Safe only because commitCopy settles after the socket has sent the body, or
 * before it began to: a commit's answer comes after the server read CopyDone, which follows
 * the body; a refused COPY is answered after the ROLLBACK, queued behind the body's bytes; a
 * fenced commit ends before its COPY; a lost connection's socket is destroyed. Bounding a
 * commit by a client-side timeout (pg's query_timeout) would break that: the socket could
 * still be sending from memory the main thread reuses.
 */
function reply(request: CommitRequest, response: CommitResponse): void {
  if (request.type !== 'commit') return port.postMessage(response);
  const memory = request.body.buffer as ArrayBuffer;
  port.postMessage({ ...response, memory }, [memory]);
}

port.on('message', (request: CommitRequest | { type: 'close' }) => {
  // Closing the port once the pool has ended lets the thread end by itself.
  if (request.type === 'close') void pool.end().finally(() => port.close());
  else void answer(request).then((response) => reply(request, response));
});
