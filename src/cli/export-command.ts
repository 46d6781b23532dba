/**
 * `wavehouse export <sessionId> --format csv|ndjson|json|parquet -o <file>`: a session's samples
 * to a file, as the server encodes them (bytes passed through, never re-encoded).
 *
 * A partial file never looks complete: the body goes to `<file>.partial`, which is renamed to
 * `<file>` only once the body has ended properly and holds exactly the session's committed
 * samples as they were when the export started (`toSeq` = the session's lastSeq then, so the
 * count to expect is its sampleCount). A body that breaks off (the server died, the
 * connection dropped) or comes up short fails the export; the `.partial` is removed, or kept
 * with --keep-partial.
 */
import { open, rename, rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { dataUrl, fetchWithCredential, getSession, problemFrom } from '../sdk/rest.ts';
import { CliError, describeError, requireSessionId, sessionNotFound, UsageError } from './cli-error.ts';
import type { ClientAccess } from './client-access.ts';
import { ParquetCounter } from './parquet-counter.ts';
import { formatBytes, ProgressBar } from './progress-bar.ts';

export const exportUsage = `wavehouse export <sessionId> [-o <file>] [--format csv|ndjson|json|parquet] [--url <server>] [--keep-partial]
                 [--quiet] [--api-key-file <path>]
  Writes every stored sample of a session to <file> (stdout without -o). The format defaults
  to the file's extension (.csv, .ndjson/.jsonl, .json, .parquet). The file appears only when
  complete. Parquet has the CSV header as columns (seq INT64, t and each channel DOUBLE).
  A private server needs a key with sessions:read ($WAVEHOUSE_API_KEY or --api-key-file).`;

type TextFormat = 'csv' | 'ndjson' | 'json';
type Format = TextFormat | 'parquet';
const formats: readonly string[] = ['csv', 'ndjson', 'json', 'parquet'] satisfies Format[];

/** What the command needs of a body as it passes: how many samples it held, and whether it ended whole. */
interface BodyCounter {
  readonly samples: number;
  readonly endsWell: boolean;
  feed(chunk: Uint8Array): void;
}

const newline = 0x0a;
const seqKey = Buffer.from('"seq":');

/**
 * Counts samples in a body as it passes, without parsing it: a line each in NDJSON and CSV
 * (after CSV's header), and one `"seq":` key each in JSON (channel names cannot be "seq",
 * and no other key ends in it right after a quote).
 */
export class SampleCounter implements BodyCounter {
  private newlines = 0;
  private keys = 0;
  private carry = Buffer.alloc(0);
  private lastByte = -1;

  constructor(private readonly format: TextFormat) {}

  get samples(): number {
    if (this.format === 'json') return this.keys;
    if (this.format === 'csv') return Math.max(0, this.newlines - 1);
    return this.newlines;
  }

  feed(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.lastByte = chunk[chunk.length - 1];
    if (this.format !== 'json') {
      for (let i = chunk.indexOf(newline); i !== -1; i = chunk.indexOf(newline, i + 1)) this.newlines++;
      return;
    }
    const text = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let from = 0;
    for (let i = text.indexOf(seqKey); i !== -1; i = text.indexOf(seqKey, from)) {
      this.keys++;
      from = i + seqKey.length;
    }
    // A key split across chunks is found once the next chunk arrives.
    this.carry = Buffer.from(text.subarray(Math.max(from, text.length - (seqKey.length - 1))));
  }

  /** Whether the body ends the way a complete one of this format does. */
  get endsWell(): boolean {
    return this.format === 'json' ? this.lastByte === 0x7d /* } */ : this.lastByte === newline;
  }
}

function formatOf(explicit: string | undefined, file: string | undefined): Format {
  if (explicit !== undefined) {
    if (formats.includes(explicit)) return explicit as Format;
    throw new UsageError(`unknown format "${explicit}": expected csv, ndjson, json or parquet`);
  }
  const extension = file?.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  if (extension !== undefined && formats.includes(extension)) return extension as Format;
  if (extension === 'jsonl') return 'ndjson';
  throw new UsageError('say which format with --format csv|ndjson|json|parquet (or name the file .csv, .ndjson, .json or .parquet)');
}

interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the output final: the rename, for a file. */
  commit(): Promise<void>;
  /** Gives up; returns what became of the partial output, for the error message. */
  abandon(): Promise<string>;
}

async function fileSink(file: string, keepPartial: boolean): Promise<Sink> {
  const partial = `${file}.partial`;
  const handle = await open(partial, 'w');
  let closed = false;
  const close = async () => {
    if (!closed) await handle.close();
    closed = true;
  };
  return {
    async write(chunk) {
      await handle.write(chunk);
    },
    async commit() {
      await handle.sync();
      await close();
      await rename(partial, file);
    },
    async abandon() {
      await close().catch(() => undefined);
      if (keepPartial) return `the incomplete output is in ${partial}`;
      await rm(partial, { force: true });
      return `${partial} was removed`;
    },
  };
}

function stdoutSink(): Sink {
  return {
    write: (chunk) =>
      new Promise((resolve, reject) => {
        process.stdout.write(chunk, (error) => (error ? reject(error) : resolve()));
      }),
    async commit() {},
    async abandon() {
      return 'what was written to stdout is incomplete';
    },
  };
}

export async function exportCommand(args: string[], { baseUrl, credential }: ClientAccess): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      format: { type: 'string', short: 'f' },
      'keep-partial': { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
    },
  });
  if (positionals.length > 1) throw new UsageError(`export takes one session id, got ${positionals.length}`);
  const sessionId = requireSessionId(positionals[0]);
  const file = values.output === '-' ? undefined : values.output;
  const format = formatOf(values.format, file);

  const session = await getSession(baseUrl, sessionId, { credential }).catch((error: unknown) =>
    sessionNotFound(error, sessionId, baseUrl),
  );
  // The samples committed when the export starts, and no later ones: a count to check against.
  const expected = session.sampleCount;
  // With nothing committed yet, an empty range (fromSeq above toSeq): later samples are not ours.
  const range = session.lastSeq === null ? { fromSeq: 1, toSeq: 0 } : { toSeq: session.lastSeq };
  const abort = new AbortController();
  const onSignal = () => abort.abort(new CliError('export interrupted (SIGINT)', 130));
  process.once('SIGINT', onSignal);

  const sink = file === undefined ? stdoutSink() : await fileSink(file, values['keep-partial']);
  const counter: BodyCounter = format === 'parquet' ? new ParquetCounter(session.channels.length) : new SampleCounter(format);
  const progress = new ProgressBar(process.stderr, expected, !values.quiet && process.stderr.isTTY === true);
  let bytes = 0;
  try {
    const url = dataUrl(baseUrl, sessionId, format, range);
    const response = await fetchWithCredential(url, { signal: abort.signal }, { credential });
    if (response.status === 404) throw new CliError(`no session ${sessionId} at ${baseUrl}`);
    if (response.status !== 200) throw await problemFrom(response);
    if (response.body !== null) {
      for await (const chunk of response.body) {
        counter.feed(chunk);
        bytes += chunk.length;
        await sink.write(chunk);
        progress.update(counter.samples, bytes);
      }
    }
    if (!counter.endsWell) throw new CliError(`the body ended mid-record after ${counter.samples} of ${expected} samples`);
    if (counter.samples !== expected) throw new CliError(`the body ended after ${counter.samples} of ${expected} samples`);
    await sink.commit();
  } catch (error) {
    progress.clear();
    const outcome = await sink.abandon();
    if (abort.signal.aborted && abort.signal.reason instanceof CliError) {
      throw new CliError(`${abort.signal.reason.message}; ${outcome}`, 130);
    }
    throw new CliError(`export failed after ${counter.samples} of ${expected} samples: ${describeError(error, baseUrl)}; ${outcome}`);
  } finally {
    process.off('SIGINT', onSignal);
  }
  progress.clear();
  if (!values.quiet && file !== undefined) {
    process.stderr.write(
      `exported ${counter.samples} samples (${formatBytes(bytes)}) to ${file} in ${(progress.elapsedMs / 1000).toFixed(1)} s\n`,
    );
  }
  return 0;
}
