/**
 * A viewer's `ws` socket, as its ViewerConnection uses it. Messages the connection writes are
 * already WebSocket frames (samples/live-frames.ts): a live frame is framed once and the same
 * bytes go to every viewer, written straight to the TCP socket (docs/performance.md: ws framed each send
 * again and wrote header and payload as two buffers, about 1-1.5 us of the 11-15 us of server CPU per
 * delivered frame, measured at 1,000 and 2,000 viewers; the rest is the kernel's send).
 *
 * Writing beside ws is safe because ws writes each of its own frames (pings, close) to the
 * same TCP socket synchronously: it queues only while compressing or reading a Blob, and
 * these sockets have permessage-deflate off and are never sent a Blob. So whole messages
 * never interleave, and ws's bufferedAmount counts these writes too.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { ViewerSocket } from './viewer-connection.ts';

export class FramedViewerSocket implements ViewerSocket {
  constructor(
    private readonly socket: WebSocket,
    private readonly tcp: Duplex,
  ) {}

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  get readyState(): number {
    return this.socket.readyState;
  }

  write(message: Buffer): void {
    this.tcp.write(message);
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }
}
