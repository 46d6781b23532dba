/**
 * Every open WebSocket of the process, for three jobs: the socket caps, liveness pings
 * (docs/protocol.md, liveness: the server pings every 15 s and closes a peer that has not
 * answered two pings) and closing them all with 1012 on shutdown.
 *
 * Pings are spread over the interval: each socket is dealt into one of `slices` groups, and
 * one group is pinged every pingIntervalMs / slices (about 250 ms), so every socket is still
 * pinged once an interval. Pinging all at once held the event loop for the sweep's writes
 * and then for every pong, and the live frames caught behind it were late for every viewer
 * (at 2,000 viewers, about 25 ms of writes, then 2,000 pongs to read; docs/performance.md).
 *
 * Memory: an idle viewer is little more than its socket (docs/performance.md), so a socket
 * costs this registry a small entry and a place in its slice, and no closure of its own: the
 * listeners are shared, and ws calls them with the socket as `this`.
 *
 * Each socket counts against one holder, as routes/sockets.ts names it: the key or subject its
 * credential stands for, or its client IP. The counts are this process's own: with several
 * instances, a holder may keep up to its cap on each.
 *
 * A Part (lifecycle.ts): start() starts the ping clock, close() closes every socket with 1012
 * and stops it.
 */
import type { WebSocket } from 'ws';
import { closeCodes } from '../contract/errors.ts';

interface Entry {
  readonly holder: string;
  readonly slice: Map<WebSocket, Entry>;
  missedPongs: number;
}

const pingSliceMs = 250;

export class SocketRegistry {
  readonly name = 'sockets';
  private readonly entries = new Map<WebSocket, Entry>();
  private readonly producers = new Set<WebSocket>();
  private readonly perHolder = new Map<string, number>();
  private readonly slices: Array<Map<WebSocket, Entry>>;
  private readonly sliceMs: number;
  /** The slice the next socket joins: it goes round. */
  private nextJoin = 0;
  /** The ping clock: when it started, and how many slices it has pinged since. */
  private clockStart = 0;
  private slicesPinged = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly answered: (this: WebSocket) => void;
  private readonly removed: (this: WebSocket) => void;

  constructor(pingIntervalMs: number) {
    this.slices = Array.from({ length: Math.max(1, Math.round(pingIntervalMs / pingSliceMs)) }, () => new Map());
    this.sliceMs = pingIntervalMs / this.slices.length;
    const registry = this;
    this.answered = function () {
      const entry = registry.entries.get(this);
      if (entry) entry.missedPongs = 0;
    };
    this.removed = function () {
      registry.remove(this);
    };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Open sockets of one holder, for its cap. */
  countOf(holder: string): number {
    return this.perHolder.get(holder) ?? 0;
  }

  add(socket: WebSocket, holder: string): void {
    this.perHolder.set(holder, this.countOf(holder) + 1);
    const slice = this.slices[this.nextJoin];
    this.nextJoin = (this.nextJoin + 1) % this.slices.length;
    const entry = { holder, slice, missedPongs: 0 };
    slice.set(socket, entry);
    this.entries.set(socket, entry);
    socket.on('pong', this.answered);
    // ws emits 'close' once, so `on` does what `once` would without a wrapper per socket.
    socket.on('close', this.removed);
  }

  /** Marks a socket, added already, as a producer's, so shutdown can stop reading it before the final flush. */
  addProducer(socket: WebSocket): void {
    this.producers.add(socket);
  }

  pauseProducers(): void {
    for (const socket of this.producers) socket.pause();
  }

  async start(): Promise<void> {
    this.clockStart = performance.now();
    this.slicesPinged = 0;
    this.timer = setInterval(() => this.pingDue(), this.sliceMs).unref();
  }

  /**
   * Closes every socket with 1012, for its peer to reconnect elsewhere; paused producers are
   * resumed so they can read the closing handshake.
   */
  async close(): Promise<void> {
    for (const socket of this.entries.keys()) socket.close(closeCodes.service_restart.code, 'server restarting; reconnect');
    for (const socket of this.producers) socket.resume();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private remove(socket: WebSocket): void {
    const entry = this.entries.get(socket);
    this.producers.delete(socket);
    if (!entry) return;
    this.entries.delete(socket);
    entry.slice.delete(socket);
    const left = this.countOf(entry.holder) - 1;
    if (left > 0) this.perHolder.set(entry.holder, left);
    else this.perHolder.delete(entry.holder);
  }

  /**
   * Pings the slices that have come due by the clock. Node reschedules an interval from when
   * its callback ran, so with many ticks an interval a busy event loop's delays would add up
   * and stretch every socket's ping gap; counting from the start, a late tick catches up.
   * After a stall of more than a whole interval, each slice is pinged once, not once per
   * round missed: pings sent back to back, with no chance to answer between them, would
   * count a live peer as silent and cut it.
   */
  private pingDue(): void {
    const due = Math.round((performance.now() - this.clockStart) / this.sliceMs);
    this.slicesPinged = Math.max(this.slicesPinged, due - this.slices.length);
    for (; this.slicesPinged < due; this.slicesPinged++) this.pingSlice(this.slices[this.slicesPinged % this.slices.length]);
  }

  private pingSlice(slice: Map<WebSocket, Entry>): void {
    for (const [socket, entry] of slice) {
      if (entry.missedPongs >= 2) {
        socket.terminate();
        continue;
      }
      entry.missedPongs++;
      socket.ping();
    }
  }
}
