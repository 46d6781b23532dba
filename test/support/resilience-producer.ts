/**
 * A producer that behaves like a real one across crashes, deploys and outages
 * (docs/architecture.md, principle 1): it numbers its samples, keeps every frame not yet acked,
 * and after a reconnect resends all of them before anything new. A connection counts as
 * accepted once an ack arrives on it; until then the connect is retried with a capped backoff,
 * within an overall bound.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { type Closed, makeSamples, type Sample } from './clients.ts';
import { eventually } from './eventually.ts';

export interface AckSeen {
  seq: number;
  atMs: number;
}

export class ResendingProducer {
  /** Frames sent (or waiting to be) and not yet covered by an ack, oldest first. */
  private unacked: Sample[][] = [];
  private socket: WebSocket | null = null;
  private nextSeq = 1;
  private highestAck = -Infinity;
  private readonly streams = new Set<{ stop(): Promise<void> }>();
  /** Every ack received, on any connection, with its arrival time. */
  readonly acks: AckSeen[] = [];
  /** Error frames received; a test that expects none asserts this is empty. */
  readonly errors: Array<Record<string, unknown>> = [];
  /** How every connection of this producer closed, in order, failed attempts included. */
  readonly closes: Array<Closed & { atMs: number }> = [];

  constructor(private readonly channels: string[] = ['ax', 'ay', 'az']) {}

  get lastSentSeq(): number {
    return this.nextSeq - 1;
  }

  get lastAck(): number | null {
    return this.acks.length === 0 ? null : this.highestAck;
  }

  get unackedSamples(): number {
    return this.unacked.reduce((sum, frame) => sum + frame.length, 0);
  }

  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Makes the next `count` samples and sends them now if connected; they are kept until acked either way. */
  sendNext(count: number): void {
    const frame = makeSamples(this.nextSeq, count, this.channels);
    this.nextSeq += count;
    this.unacked.push(frame);
    if (this.isOpen) this.socket!.send(JSON.stringify({ samples: frame }));
  }

  /**
   * Connects to `url()` (asked afresh at every attempt: a restarted server may listen
   * elsewhere), resends everything unacked, and returns once the server acks on the new
   * connection. Refusals (4409 while the old lock lingers, a server not up yet) are retried.
   */
  async connect(url: () => string, { timeoutMs = 20_000 } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delayMs = 25;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(url(), Math.max(100, Math.min(5_000, deadline - Date.now())));
      if (outcome === 'accepted') return;
      if (Date.now() + delayMs > deadline) throw new Error(`not accepted after ${attempt} attempts in ${timeoutMs} ms: ${outcome}`);
      await sleep(delayMs);
      delayMs = Math.min(1_000, delayMs * 2);
    }
  }

  private attempt(url: string, timeoutMs: number): Promise<'accepted' | string> {
    return new Promise((resolve) => {
      const socket = new WebSocket(url);
      this.socket = socket;
      let accepted = false;
      const timer = setTimeout(() => {
        socket.terminate();
        resolve(`no ack within ${timeoutMs} ms`);
      }, timeoutMs);
      socket.on('error', () => undefined);
      socket.on('open', () => {
        // An empty batch is answered with an ack of the highest committed seq: the probe for
        // "accepted" when there is nothing to resend.
        if (this.unacked.length === 0) socket.send('{"samples":[]}');
        for (const frame of this.unacked) socket.send(JSON.stringify({ samples: frame }));
      });
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        const message = JSON.parse(data.toString()) as Record<string, unknown>;
        if (message.type === 'ack') {
          this.onAck(message.seq as number);
          if (!accepted) {
            accepted = true;
            clearTimeout(timer);
            resolve('accepted');
          }
        } else if (message.type === 'error') {
          this.errors.push(message);
        }
      });
      socket.on('close', (code, reason) => {
        this.closes.push({ code, reason: reason.toString(), atMs: Date.now() });
        if (this.socket === socket) this.socket = null;
        if (!accepted) {
          clearTimeout(timer);
          resolve(`closed with ${code} ${reason.toString()}`);
        }
      });
    });
  }

  private onAck(seq: number): void {
    this.acks.push({ seq, atMs: Date.now() });
    if (seq > this.highestAck) this.highestAck = seq;
    while (this.unacked.length > 0 && this.unacked[0][this.unacked[0].length - 1].seq <= seq) this.unacked.shift();
  }

  async waitForAck(seq: number, timeoutMs = 10_000): Promise<void> {
    await eventually(
      () => {
        if ((this.lastAck ?? -Infinity) < seq) {
          throw new Error(`ack ${seq} not seen; last ${this.lastAck}, ${this.unackedSamples} samples unacked`);
        }
      },
      { timeoutMs },
    );
  }

  async waitForClose(timeoutMs = 10_000): Promise<Closed & { atMs: number }> {
    return eventually(
      () => {
        if (this.socket !== null || this.closes.length === 0) throw new Error('producer socket still open');
        return this.closes[this.closes.length - 1];
      },
      { timeoutMs },
    );
  }

  /**
   * Sends a `frameSamples` frame every `intervalMs` until stopped. The pacing is the workload,
   * not a wait for anything. `stop()` takes effect at once, so the caller knows exactly what
   * was sent before it (say) kills the server.
   */
  stream(frameSamples: number, intervalMs: number): { stop(): Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      // A bound of its own, in case a failing test never stops it.
      const deadline = Date.now() + 60_000;
      while (!stopped && Date.now() < deadline) {
        this.sendNext(frameSamples);
        await sleep(intervalMs);
      }
    })();
    const stream = {
      stop: async () => {
        stopped = true;
        this.streams.delete(stream);
        await loop;
      },
    };
    this.streams.add(stream);
    return stream;
  }

  /** Stops streaming and closes the connection: also the cleanup after a failed test. */
  async close(): Promise<void> {
    await Promise.all([...this.streams].map((stream) => stream.stop()));
    this.socket?.close();
  }
}
