/**
 * `wavehouse simulate`: streams a synthetic seismocardiogram (scg-waveform.ts) into a session
 * through the SDK Producer, in real time at the chosen rate. Sample times follow the sample
 * clock (start + i / rate), not the wall clock, as a real sensor's would; when the producer
 * pushes back (too much unacked) generation waits, then catches up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ingestTokenCredential } from '../sdk/access-credentials.ts';
import { Producer } from '../sdk/producer.ts';
import { createSession, getSession, WavehouseHttpError } from '../sdk/rest.ts';
import type { SampleInput } from '../sdk/types.ts';
import { socketUrl } from '../sdk/websocket.ts';
import { CliError, requireSessionId, sessionNotFound, UsageError } from './cli-error.ts';
import type { ClientAccess } from './client-access.ts';
import { readIngestToken, tokenEnvVar } from './ingest-token.ts';
import { channelNames, ScgWaveform } from './scg-waveform.ts';

export const simulateUsage = `wavehouse simulate [--url <server>] [--rate 100] [--channels 3] [--duration <seconds>]
                   [--session <id> [--token-file <path>]] [--keep-open] [--seed N] [--api-key-file <path>]
  Streams a synthetic SCG (heartbeat-shaped chest vibrations) at <rate> Hz. Creates a session
  unless given one. Runs for <seconds>, or until Ctrl-C; then ends the session (unless
  --keep-open) once every sample is stored.
  The ingest token of a --session comes from one of (an option beats the environment):
    --token-file <path>   the file's first line, "-" for stdin; warns if others can read the file
    --token=<ingestToken> visible to other users (ps) and kept in shell history: prefer the others
                          (with "=": a token may start with "-")
    $${tokenEnvVar}
  A new session's token is printed with its id. On a private server a new session needs a key
  with sessions:write ($WAVEHOUSE_API_KEY or --api-key-file); a --session needs only its token.`;

const tickMs = 10;

function number(value: string | undefined, name: string, fallback: number, check: (n: number) => boolean, expected: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || !check(parsed)) {
    throw new UsageError(`--${name} must be ${expected}, got "${value}"`);
  }
  return parsed;
}

export async function simulateCommand(args: string[], { baseUrl, credential }: ClientAccess): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      rate: { type: 'string' },
      channels: { type: 'string' },
      duration: { type: 'string' },
      session: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      'keep-open': { type: 'boolean', default: false },
      seed: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`simulate takes no positional arguments, got "${positionals[0]}"`);
  const rateHz = number(values.rate, 'rate', 100, (n) => n > 0 && n <= 100_000, 'a rate in Hz from above 0 to 100000');
  const durationS =
    values.duration === undefined ? null : number(values.duration, 'duration', 0, (n) => n > 0, 'a positive number of seconds');
  // Random unless given, so two runs differ; printed and stored, so any run can be repeated.
  const seed = number(values.seed, 'seed', Math.floor(Math.random() * 2 ** 31), Number.isInteger, 'an integer');
  const channelCount =
    values.channels === undefined
      ? null
      : number(values.channels, 'channels', 3, (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer from 1 to 64');

  let sessionId: string;
  let token: string;
  let channels: string[];
  let viewerPath: string;
  if (values.session !== undefined) {
    sessionId = requireSessionId(values.session);
    const given = await readIngestToken({
      token: values.token,
      tokenFile: values['token-file'],
      env: process.env,
      warn: (line) => process.stderr.write(`wavehouse: ${line}\n`),
    });
    if (given === null) {
      throw new UsageError(
        `--session needs its ingest token (returned when the session was created): --token-file <path>, $${tokenEnvVar} or --token`,
      );
    }
    token = given;
    // Without a key, its own ingest token reads the session, in either mode.
    const reader = credential ?? ingestTokenCredential(token);
    const session = await getSession(baseUrl, sessionId, { credential: reader }).catch((error: unknown) => {
      // A private server refuses another session's token as insufficient: say which credential is wrong.
      if (credential === undefined && error instanceof WavehouseHttpError && error.status === 403) {
        throw new CliError(`the ingest token given is not session ${sessionId}'s`);
      }
      return sessionNotFound(error, sessionId, baseUrl);
    });
    if (session.status === 'ended') throw new CliError(`session ${sessionId} has ended; nothing more can be sent to it`);
    if (channelCount !== null && channelCount !== session.channels.length) {
      throw new UsageError(
        `session ${sessionId} has ${session.channels.length} channels (${session.channels.join(', ')}), not ${channelCount}`,
      );
    }
    channels = session.channels;
    viewerPath = session.viewerUrl;
  } else {
    // $WAVEHOUSE_TOKEN is not refused here: it may be set for another session.
    if (values.token !== undefined || values['token-file'] !== undefined) {
      throw new UsageError('--token and --token-file go with --session');
    }
    channels = channelNames(channelCount ?? 3);
    const created = await createSession(
      baseUrl,
      { channels, sampleRateHz: rateHz, metadata: { source: 'wavehouse simulate', signal: 'synthetic seismocardiogram', seed } },
      { credential },
    );
    sessionId = created.sessionId;
    token = created.ingestToken;
    viewerPath = created.viewerUrl;
  }

  const lines = [
    `session  ${sessionId}`,
    // Shown once, as the server does, when it is new; a token that was given is not echoed.
    ...(values.session === undefined ? [`token    ${token}`] : []),
    `viewer   ${new URL(viewerPath, baseUrl).toString()}`,
    `live     ${socketUrl(baseUrl, `/sessions/${sessionId}/live?fromSeq=0`)}`,
    `rate     ${rateHz} Hz x ${channels.length} channels (${channels.join(', ')})` +
      (durationS === null ? ', until Ctrl-C' : `, for ${durationS} s`),
    `seed     ${seed}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  const producer = new Producer({
    baseUrl,
    sessionId,
    token,
    credential,
    channels,
    // About 20 frames a second: live viewers see the signal move smoothly.
    maxBatchSamples: Math.max(1, Math.min(1_000, Math.round(rateHz / 20))),
    maxBatchDelayMs: 50,
  });
  producer.on('disconnected', ({ code, reason, willReconnect, retryInMs }) => {
    if (willReconnect) process.stderr.write(`connection lost (${code}${reason ? ` ${reason}` : ''}); reconnecting in ${retryInMs} ms\n`);
  });
  producer.on('connected', ({ resentSamples }) => {
    if (resentSamples > 0) process.stderr.write(`reconnected; resent ${resentSamples} unacked samples\n`);
  });

  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('stopping: storing what was sent (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const waveform = new ScgWaveform({ rateHz, channels: channels.length, seed });
  const total = durationS === null ? Infinity : Math.round(rateHz * durationS);
  const startEpochMs = Date.now();
  const startedAt = performance.now();
  let generated = 0;
  try {
    while (!stopping && generated < total) {
      const due = Math.min(total, Math.floor(((performance.now() - startedAt) * rateHz) / 1000) + 1);
      const batch: SampleInput[] = [];
      for (; generated < due; generated++) {
        const values = waveform.next();
        const sample: SampleInput = { t: startEpochMs + (generated * 1000) / rateHz };
        channels.forEach((name, c) => {
          sample[name] = values[c];
        });
        batch.push(sample);
      }
      if (batch.length > 0 && !producer.push(batch)) await producer.ready();
      else await sleep(tickMs);
    }
    if (values['keep-open']) {
      await producer.flush();
      producer.close();
      process.stdout.write(`sent ${generated} samples (seqs up to ${producer.lastAckedSeq}); the session stays open\n`);
    } else {
      const ended = await producer.end();
      process.stdout.write(`sent ${generated} samples; session ended with ${ended.sampleCount} stored\n`);
    }
  } catch (error) {
    producer.close();
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
