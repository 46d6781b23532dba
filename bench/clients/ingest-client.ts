/**
 * Load generator for ingest, run as its own process (several of them share the producers):
 * each producer streams pre-generated frames through a real ingest socket and keeps at most
 * `windowSamples` unacked samples in flight, as a real producer keeping what is not acked
 * would. Offered load is producers x window; an optional per-producer rate paces it instead.
 *
 * Measured inside the window [start + warmup, start + warmup + measure]:
 * - persisted samples/s: samples whose ack arrived in the window (an ack means committed);
 * - ack latency: for each frame acked in the window, ack arrival - send time.
 * After the window, sending stops and the producer waits (bounded) for its last acks, so the
 * next step starts with the server's write queue empty.
 */
import WebSocket from 'ws';
import { BinaryFrames, type FrameSource, ingestSeqBase, JsonFrames } from '../lib/frames.ts';
import { serve } from '../lib/helper-side.ts';
import { Samples, sleep, wallMs } from '../lib/stats.ts';

export interface ProducerTarget {
  url: string;
  token?: string;
}

export interface OpenArgs {
  producers: ProducerTarget[];
  encoding: 'json' | 'binary';
  samplesPerFrame: number;
}

export interface GoArgs {
  startAtMs: number;
  warmupMs: number;
  measureMs: number;
  windowSamples: number;
  /** Samples/s per producer; 0 = as fast as the window allows. */
  ratePerProducer: number;
  drainTimeoutMs: number;
}

export interface IngestResult {
  ackedSamples: number;
  sentSamples: number;
  latencies: Float64Array;
  errors: Record<string, number>;
  firstError: string | null;
  undrainedSamples: number;
  unexpectedCloses: number[];
}

class Producer {
  nextSeq = ingestSeqBase + 1;
  inflight = 0;
  sentSamples = 0;
  closed = false;
  timer: NodeJS.Timeout | null = null;
  // Sent frames awaiting their ack, oldest first: a ring of (last seq, send time).
  ringSeq = new Float64Array(1);
  ringSentAt = new Float64Array(1);
  head = 0;
  size = 0;

  constructor(readonly socket: WebSocket) {}

  resetRing(capacity: number): void {
    this.ringSeq = new Float64Array(capacity);
    this.ringSentAt = new Float64Array(capacity);
    this.head = 0;
    this.size = 0;
  }
}

let source: FrameSource | null = null;
let producers: Producer[] = [];

async function open(args: OpenArgs): Promise<number> {
  source = args.encoding === 'binary' ? new BinaryFrames(args.samplesPerFrame) : new JsonFrames(args.samplesPerFrame);
  producers = await Promise.all(
    args.producers.map(
      (target) =>
        new Promise<Producer>((resolve, reject) => {
          const socket = new WebSocket(target.url, {
            perMessageDeflate: false,
            headers: target.token ? { authorization: `Bearer ${target.token}` } : {},
          });
          socket.once('open', () => resolve(new Producer(socket)));
          // An error is followed by 'close', which is what the run records.
          socket.on('error', (error) => reject(error));
          socket.once('close', (code) => reject(new Error(`ingest socket closed with ${code} while opening`)));
        }),
    ),
  );
  return producers.length;
}

async function go(args: GoArgs): Promise<IngestResult> {
  const frames = source!;
  const spf = frames.samplesPerFrame;
  const measureFrom = args.startAtMs + args.warmupMs;
  const measureTo = measureFrom + args.measureMs;
  const latencies = new Samples();
  const errors: Record<string, number> = {};
  const unexpectedCloses: number[] = [];
  let firstError: string | null = null;
  let ackedSamples = 0;
  let stopped = false;
  const capacity = Math.ceil(args.windowSamples / spf) + 1;

  const pump = (p: Producer) => {
    p.timer = null;
    if (stopped || p.closed) return;
    while (p.inflight + spf <= args.windowSamples) {
      if (args.ratePerProducer > 0) {
        const allowed = (args.ratePerProducer * (wallMs() - args.startAtMs)) / 1000 - p.sentSamples;
        if (allowed < spf) {
          const waitMs = Math.max(1, ((spf - allowed) / args.ratePerProducer) * 1000);
          p.timer = setTimeout(() => pump(p), waitMs);
          return;
        }
      }
      p.socket.send(frames.frame(p.nextSeq), { binary: frames.binary });
      const slot = (p.head + p.size) % capacity;
      p.ringSeq[slot] = p.nextSeq + spf - 1;
      p.ringSentAt[slot] = wallMs();
      p.size++;
      p.nextSeq += spf;
      p.inflight += spf;
      p.sentSamples += spf;
    }
  };

  const onMessage = (p: Producer, data: Buffer) => {
    const now = wallMs();
    const frame = JSON.parse(data.toString()) as { type: string; seq?: number; code?: string; message?: string };
    if (frame.type === 'ack') {
      const seq = frame.seq!;
      while (p.size > 0 && p.ringSeq[p.head] <= seq) {
        if (now >= measureFrom && now < measureTo) {
          latencies.push(now - p.ringSentAt[p.head]);
          ackedSamples += spf;
        }
        p.head = (p.head + 1) % capacity;
        p.size--;
        p.inflight -= spf;
      }
      pump(p);
    } else if (frame.type === 'error') {
      const code = frame.code ?? 'unknown';
      errors[code] = (errors[code] ?? 0) + 1;
      firstError ??= `${code}: ${frame.message}`;
    }
  };

  for (const p of producers) {
    p.resetRing(capacity);
    p.socket.removeAllListeners('message');
    p.socket.removeAllListeners('close');
    p.socket.on('message', (data: Buffer) => onMessage(p, data));
    p.socket.on('close', (code) => {
      p.closed = true;
      if (!stopped) unexpectedCloses.push(code);
    });
  }

  await sleep(Math.max(0, args.startAtMs - wallMs()));
  for (const p of producers) pump(p);
  await sleep(Math.max(0, measureTo - wallMs()));
  stopped = true;
  for (const p of producers) if (p.timer) clearTimeout(p.timer);

  // Let the last acks arrive so the next step starts with an empty write queue.
  const drainDeadline = wallMs() + args.drainTimeoutMs;
  while (producers.some((p) => p.inflight > 0 && !p.closed) && wallMs() < drainDeadline) await sleep(20);
  const undrainedSamples = producers.reduce((sum, p) => sum + (p.closed ? 0 : p.inflight), 0);
  const sentSamples = producers.reduce((sum, p) => sum + p.sentSamples, 0);
  return { ackedSamples, sentSamples, latencies: latencies.values(), errors, firstError, undrainedSamples, unexpectedCloses };
}

async function closeAll(): Promise<void> {
  await Promise.all(
    producers.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.socket.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            p.socket.terminate();
            resolve();
          }, 3_000);
          p.socket.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          p.socket.close(1000, 'bench step done');
        }),
    ),
  );
  producers = [];
}

serve({
  open: (args) => open(args as unknown as OpenArgs),
  go: (args) => go(args as unknown as GoArgs),
  closeAll,
});
