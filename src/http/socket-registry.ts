/**
 * Every open WebSocket of the process, for two jobs: liveness pings (DESIGN: the server
 * pings every 15 s and closes a peer that has not answered two pings) and closing them all
 * with 1012 on shutdown.
 */
import type { WebSocket } from 'ws';

export class SocketRegistry {
  private readonly missedPongs = new Map<WebSocket, number>();
  private readonly producers = new Set<WebSocket>();
  private readonly perIp = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pingIntervalMs: number) {}

  get size(): number {
    return this.missedPongs.size;
  }

  /** Open sockets of one client IP, for the per-IP cap. */
  countOf(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  add(socket: WebSocket, ip: string): void {
    this.perIp.set(ip, this.countOf(ip) + 1);
    socket.once('close', () => {
      const left = this.countOf(ip) - 1;
      if (left > 0) this.perIp.set(ip, left);
      else this.perIp.delete(ip);
    });
    this.missedPongs.set(socket, 0);
    socket.on('pong', () => this.missedPongs.set(socket, 0));
    socket.once('close', () => this.missedPongs.delete(socket));
    this.timer ??= setInterval(() => this.pingAll(), this.pingIntervalMs).unref();
  }

  /** Marks a socket as a producer's, so shutdown can stop reading it before the final flush. */
  addProducer(socket: WebSocket): void {
    this.producers.add(socket);
    socket.once('close', () => this.producers.delete(socket));
  }

  pauseProducers(): void {
    for (const socket of this.producers) socket.pause();
  }

  /** Closes every socket; paused producers are resumed so they can read the closing handshake. */
  closeAll(code: number, reason: string): void {
    for (const socket of this.missedPongs.keys()) socket.close(code, reason);
    for (const socket of this.producers) socket.resume();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private pingAll(): void {
    for (const [socket, missed] of this.missedPongs) {
      if (missed >= 2) {
        socket.terminate();
        continue;
      }
      this.missedPongs.set(socket, missed + 1);
      socket.ping();
    }
  }
}
