/**
 * `wavehouse tail <sessionId> [--from-seq N]`: live samples as NDJSON on stdout, one per line,
 * until the session ends (exit 0). Reconnects on its own (no hole, no duplicate: the SDK
 * Viewer resumes from the last printed seq + 1), telling stderr when it does.
 */
import { parseArgs } from 'node:util';
import { getSession } from '../sdk/rest.ts';
import { sampleToJson } from '../sdk/sample-json.ts';
import { Viewer } from '../sdk/viewer.ts';
import { CliError, describeError, requireSessionId, sessionNotFound, UsageError } from './cli-error.ts';
import type { ClientAccess } from './client-access.ts';

export const tailUsage = `wavehouse tail <sessionId> [--from-seq N] [--url <server>] [--api-key-file <path>]
  Prints the session's samples as NDJSON as they arrive: from seq N (stored ones first) with
  --from-seq, else from now on. Exits when the session ends. A private server needs a key
  with sessions:read ($WAVEHOUSE_API_KEY or --api-key-file); its tokens are renewed as it runs.`;

/** Resolves when the stream can take more, or has failed (EPIPE) and never will. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('error', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('error', done);
  });
}

export async function tailCommand(args: string[], { baseUrl, credential }: ClientAccess): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'from-seq': { type: 'string' } },
  });
  if (positionals.length > 1) throw new UsageError(`tail takes one session id, got ${positionals.length}`);
  const sessionId = requireSessionId(positionals[0]);
  let fromSeq: number | undefined;
  if (values['from-seq'] !== undefined) {
    fromSeq = Number(values['from-seq']);
    if (!/^\d+$/.test(values['from-seq']) || !Number.isSafeInteger(fromSeq)) {
      throw new UsageError('--from-seq must be an integer from 0 to 2^53-1');
    }
  }
  // Asked here rather than left to the Viewer, which retries an unreachable server forever:
  // at start, an unreachable server or an unknown session is the user's mistake to hear about.
  const session = await getSession(baseUrl, sessionId, { credential }).catch((error: unknown) =>
    sessionNotFound(error, sessionId, baseUrl),
  );
  const from = fromSeq ?? (session.lastSeq ?? -1) + 1;
  const viewer = new Viewer({ baseUrl, sessionId, fromSeq: from, credential, backoff: { maxDelayMs: 5_000 } });
  let announced = false;
  viewer.on('connected', ({ fromSeq: from }) => {
    if (!announced) process.stderr.write(`tailing session ${sessionId} from seq ${from}\n`);
    announced = true;
  });
  viewer.on('disconnected', ({ code, reason, willReconnect, retryInMs }) => {
    if (willReconnect && retryInMs !== null) {
      process.stderr.write(`connection lost (${code}${reason ? ` ${reason}` : ''}); reconnecting in ${retryInMs} ms\n`);
    }
  });

  let stdoutClosed = false;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    // `wavehouse tail ... | head` closing the pipe is a normal way to stop.
    if (error.code === 'EPIPE') {
      stdoutClosed = true;
      viewer.close();
    }
  });
  const stop = () => viewer.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for await (const sample of viewer) {
      if (stdoutClosed) break;
      if (!process.stdout.write(`${sampleToJson(sample)}\n`)) await drained(process.stdout);
    }
  } catch (error) {
    throw new CliError(describeError(error, baseUrl));
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}
