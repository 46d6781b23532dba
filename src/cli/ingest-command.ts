/**
 * `wavehouse ingest <sessionId> [<file>|-]`: samples from a CSV or NDJSON file, or stdin, sent
 * over HTTP ingest (docs/protocol.md) in batches, each answered once committed. Lines are sent
 * as they are, never re-encoded: the server applies its rules and names what it refuses.
 *
 * Resumable: every sample must carry a seq. Before the first batch an empty one asks what the
 * session has committed (its ack is the highest committed seq, and an ingest token may ask it
 * in every auth mode, unlike GET /sessions/{id}), and lines up to that seq are skipped, so a
 * rerun after a failure sends only the rest. A batch refused for the moment (429, 503, the
 * network) is sent again a few times; resending is safe, as the seqs make what was stored
 * duplicates.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { postSamples, postSampleText, WavehouseHttpError } from '../sdk/rest.ts';
import type { IngestReceipt } from '../sdk/types.ts';
import { CliError, describeError, isNetworkError, requireSessionId, sessionNotFound, UsageError } from './cli-error.ts';
import { readIngestToken, tokenEnvVar } from './ingest-token.ts';
import { formatBytes, ProgressBar } from './progress-bar.ts';

export const ingestUsage = `wavehouse ingest <sessionId> [<file>|-] [--format csv|ndjson] [--batch 1000] [--url <server>]
                 [--token-file <path>] [--quiet]
  Sends samples from a CSV file (header seq,t,<channels>) or an NDJSON file (a sample a line),
  or from stdin (- or no file), in batches that are each answered once stored. Every sample
  needs a seq: a rerun resumes, skipping the samples the session has stored already.
  The format defaults to the file's extension, else to what the first line looks like.
  The ingest token comes from --token-file <path>, $${tokenEnvVar} or --token.
  Prints {"ack":...,"accepted":...,"duplicates":...,"skipped":...} on stdout when done.`;

type Format = 'csv' | 'ndjson';

const contentTypes = { csv: 'text/csv', ndjson: 'application/x-ndjson' } as const;
/** A batch goes at this many bytes even short of --batch samples: half the server's default body limit (1 MiB). */
const maxBatchBytes = 512 * 1024;
const maxBatchSamples = 10_000;
/** Tries of one batch before giving up (a rerun resumes), and the wait before each retry by what refused it. */
const maxAttempts = 5;
const retryDelayMs = { rate_limited: 1_000, other: 3_000 };

function formatOf(explicit: string | undefined, source: string): Format | null {
  if (explicit !== undefined) {
    if (explicit === 'csv' || explicit === 'ndjson') return explicit;
    throw new UsageError(`unknown format "${explicit}": expected csv or ndjson`);
  }
  const extension = source.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  if (extension === 'csv') return 'csv';
  return extension === 'ndjson' || extension === 'jsonl' ? 'ndjson' : null;
}

function batchSizeOf(text: string | undefined): number {
  if (text === undefined) return 1_000;
  const size = Number(text);
  if (!Number.isInteger(size) || size < 1 || size > maxBatchSamples)
    throw new UsageError(`--batch: an integer from 1 to ${maxBatchSamples}`);
  return size;
}

/** Lines that end with `\n` in a file, a quick count for the progress bar (blank lines included, so it is an upper bound). */
async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
  }
  return lines;
}

/** Reads the seq of each line; for CSV, from the column the header names `seq`. */
class SeqReader {
  private seqColumn = -1;

  constructor(readonly format: Format) {}

  header(line: string): void {
    this.seqColumn = line.split(',').indexOf('seq');
    if (this.seqColumn === -1) throw new CliError('the CSV header has no seq column: every sample needs a seq, so that a rerun resumes');
  }

  seqOf(line: string, number: number): number {
    let seq: unknown;
    if (this.format === 'csv') {
      const field = line.split(',')[this.seqColumn];
      seq = field === undefined || field === '' ? undefined : Number(field);
    } else {
      try {
        seq = (JSON.parse(line) as { seq?: unknown }).seq;
      } catch {
        throw new CliError(`line ${number} is not JSON`);
      }
    }
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
      throw new CliError(`line ${number} has no seq (an integer from 0): every sample needs one, so that a rerun resumes`);
    }
    return seq;
  }
}

/** Whether a failed batch may be sent again as it is, and after how long. */
function retryDelayOf(error: unknown): number | null {
  if (error instanceof WavehouseHttpError) {
    if (error.status === 429) return retryDelayMs.rate_limited;
    return error.status === 503 ? retryDelayMs.other : null;
  }
  return isNetworkError(error) ? retryDelayMs.other : null;
}

async function withRetries(send: () => Promise<IngestReceipt>): Promise<IngestReceipt> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      const delayMs = retryDelayOf(error);
      if (delayMs === null || attempt === maxAttempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

export async function ingestCommand(args: string[], baseUrl: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', short: 'f' },
      batch: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      quiet: { type: 'boolean', short: 'q', default: false },
    },
  });
  if (positionals.length > 2) throw new UsageError(`ingest takes a session id and a file, got ${positionals.length} arguments`);
  const sessionId = requireSessionId(positionals[0]);
  const source = positionals[1] ?? '-';
  if (source === '-' && values['token-file'] === '-') throw new UsageError('stdin cannot hold both the samples and the token');
  let format = formatOf(values.format, source);
  const batchSize = batchSizeOf(values.batch);
  const token = await readIngestToken({
    token: values.token,
    tokenFile: values['token-file'],
    env: process.env,
    warn: (line) => process.stderr.write(`wavehouse: ${line}\n`),
  });
  if (token === null) throw new UsageError(`ingest needs the session's ingest token: --token-file <path>, $${tokenEnvVar} or --token`);

  // An empty batch is answered with the highest committed seq: what a rerun skips.
  const stored = await postSamples(baseUrl, sessionId, [], { token }).catch((error: unknown) => sessionNotFound(error, sessionId, baseUrl));
  let input: Readable = process.stdin;
  let total = 0;
  if (source !== '-') {
    await stat(source).catch(() => {
      throw new CliError(`cannot read ${source}`);
    });
    total = await countLines(source);
    input = createReadStream(source);
  }
  const progress = new ProgressBar(process.stderr, total, !values.quiet && source !== '-' && process.stderr.isTTY === true);
  const totals = { ack: stored.ack, accepted: 0, duplicates: 0, skipped: 0 };
  let reader: SeqReader | null = null;
  let header = '';
  let batch: string[] = [];
  let batchBytes = 0;
  let sentBytes = 0;
  let lineNumber = 0;

  const flush = async () => {
    if (batch.length === 0 || reader === null) return;
    const lines = reader.format === 'csv' ? [header, ...batch] : batch;
    const body = `${lines.join('\n')}\n`;
    const receipt = await withRetries(() => postSampleText(baseUrl, sessionId, body, contentTypes[reader!.format], { token }));
    totals.ack = receipt.ack;
    totals.accepted += receipt.accepted;
    totals.duplicates += receipt.duplicates;
    sentBytes += body.length;
    batch = [];
    batchBytes = 0;
    progress.update(totals.skipped + totals.accepted + totals.duplicates, sentBytes);
  };

  try {
    for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
      lineNumber++;
      if (line.trim() === '') continue;
      if (reader === null) {
        format ??= line.trimStart().startsWith('{') ? 'ndjson' : 'csv';
        reader = new SeqReader(format);
        if (format === 'csv') {
          reader.header(line);
          header = line;
          continue;
        }
      }
      if (reader.seqOf(line, lineNumber) <= stored.ack) {
        totals.skipped++;
        continue;
      }
      batch.push(line);
      batchBytes += line.length + 1;
      if (batch.length >= batchSize || batchBytes >= maxBatchBytes) await flush();
    }
    await flush();
  } catch (error) {
    progress.clear();
    const sent = `${totals.accepted} samples stored, up to seq ${totals.ack}`;
    throw new CliError(`ingest stopped (${sent}): ${describeError(error, baseUrl)}; run it again to resume`);
  }
  progress.clear();
  process.stdout.write(`${JSON.stringify(totals)}\n`);
  if (!values.quiet) {
    process.stderr.write(
      `stored ${totals.accepted} samples (${formatBytes(sentBytes)} sent; ${totals.skipped} skipped as stored before, ` +
        `${totals.duplicates} duplicates) in ${(progress.elapsedMs / 1000).toFixed(1)} s\n`,
    );
  }
  return 0;
}
