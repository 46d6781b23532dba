/**
 * A receive-only WebSocket client (RFC 6455) for the fan-out viewers, as small as it can be.
 *
 * Why not `ws`: on this 2-core box the viewers share the CPU with the server they measure.
 * With `ws` the 4 viewer processes used more CPU than the server itself (0.9 vs 0.64 cores at
 * 2,000 viewers), so the figure was as much the load generator's as the server's. This client
 * does per message only what a viewer needs: find the frame's bounds and hand them over, no
 * per-message Buffer, event or UTF-8 check. It answers pings (the server closes peers that
 * miss two) and reports the close code. The same client measures Wavehouse and the relay.
 *
 * Server frames are never masked (RFC 6455 5.1); the ones this client sends (pong, close) are.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface RawViewerHandlers {
  /** A complete data frame's payload is buffer[start, end); valid only during the call. */
  onMessage(buffer: Buffer, start: number, end: number): void;
  onClose(code: number): void;
}

export class RawViewerSocket {
  open = false;
  private closed = false;
  private pending: Buffer | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly handlers: RawViewerHandlers,
  ) {}

  /** Connects and completes the upgrade; rejects on any other answer or after `timeoutMs`. */
  static connect(url: string, handlers: RawViewerHandlers, timeoutMs: number): Promise<RawViewerSocket> {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: target.hostname, port: Number(target.port) });
      socket.setNoDelay(true);
      const viewer = new RawViewerSocket(socket, handlers);
      let head: Buffer = Buffer.alloc(0);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timeout'));
      }, timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.write(
          `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      const onHandshake = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHandshake);
        socket.off('error', fail);
        clearTimeout(timer);
        if (!head.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${head.subarray(0, head.indexOf('\r\n')).toString('latin1')}`));
          return;
        }
        viewer.open = true;
        socket.on('error', () => undefined); // followed by 'close'
        socket.on('close', () => viewer.finish(1006));
        socket.on('data', (data: Buffer) => viewer.receive(data));
        resolve(viewer);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) viewer.receive(rest);
      };
      socket.on('data', onHandshake);
    });
  }

  /** Sends a close frame (1000) and ends the connection. */
  close(): void {
    if (!this.open) return;
    this.send(0x8, Buffer.from([0x03, 0xe8]));
    this.socket.end();
    this.finish(1000);
  }

  terminate(): void {
    this.socket.destroy();
    this.finish(1006);
  }

  private finish(code: number): void {
    this.open = false;
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose(code);
  }

  private receive(chunk: Buffer): void {
    const buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (buffer.length - at < 2) break;
      const opcode = buffer[at] & 0x0f;
      let length = buffer[at + 1] & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buffer.length - at < 4) break;
        length = buffer.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (buffer.length - at < 10) break;
        length = Number(buffer.readBigUInt64BE(at + 2));
        header = 10;
      }
      if (buffer.length - at < header + length) break;
      const start = at + header;
      const end = start + length;
      if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) this.handlers.onMessage(buffer, start, end);
      else if (opcode === 0x9) this.send(0xa, buffer.subarray(start, end));
      else if (opcode === 0x8) {
        const code = length >= 2 ? buffer.readUInt16BE(start) : 1005;
        this.open = false;
        this.socket.end();
        this.finish(code);
        return;
      }
      at = end;
    }
    // Keep a partial frame for the next chunk (copied: the chunk's memory is not ours to keep).
    this.pending = at < buffer.length ? Buffer.from(buffer.subarray(at)) : null;
  }

  /** A masked control frame (payload < 126 bytes). */
  private send(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed) return;
    const mask = randomBytes(4);
    const frame = Buffer.alloc(6 + payload.length);
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | payload.length;
    mask.copy(frame, 2);
    for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ mask[i & 3];
    this.socket.write(frame);
  }
}
