/** A bare TCP connection to the app, for requests no HTTP client would send: slow, partial, or none. */
import net from 'node:net';

export class RawConnection {
  readonly socket: net.Socket;
  /** Everything the server sent, as text. */
  received = '';
  /** When the server closed it (performance.now()), or null while it is open. */
  closedAtMs: number | null = null;
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;

  constructor(baseUrl: string) {
    const { hostname, port } = new URL(baseUrl);
    this.socket = net.connect({ host: hostname, port: Number(port) });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (text: string) => (this.received += text));
    // A write racing the server's close fails with EPIPE or ECONNRESET: the close is what is tested.
    this.socket.on('error', () => undefined);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    // Awaited only by tests that need the connect; a refused connection's reset is not an unhandled rejection.
    this.connected.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.socket.once('close', () => {
        this.closedAtMs = performance.now();
        resolve();
      });
    });
  }

  get isOpen(): boolean {
    return this.closedAtMs === null;
  }

  write(text: string): void {
    if (this.isOpen) this.socket.write(text);
  }

  /** Sends `text` one byte every `intervalMs` until it is all sent or the connection closes. */
  trickle(text: string, intervalMs: number): void {
    let next = 0;
    const timer = setInterval(() => {
      if (!this.isOpen || next >= text.length) return clearInterval(timer);
      this.write(text[next++]);
    }, intervalMs);
    void this.closed.then(() => clearInterval(timer));
  }

  /** Waits at most `timeoutMs` for the server to close the connection; returns how long it took from `sinceMs`. */
  async closedWithin(timeoutMs: number, sinceMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms; received ${JSON.stringify(this.received.slice(0, 200))}`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.closed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    return this.closedAtMs! - sinceMs;
  }

  /** Waits for one whole response (headers and a Content-Length body) beyond the `responses` already read. */
  async response(responses: number, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = splitResponses(this.received);
      if (all.length > responses) return all[responses];
      if (!this.isOpen) throw new Error(`closed after ${all.length} responses; received ${JSON.stringify(this.received.slice(0, 200))}`);
      if (Date.now() > deadline) throw new Error(`no response ${responses + 1} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The complete responses in `text`, each as its head and body; only Content-Length bodies. */
function splitResponses(text: string): string[] {
  const responses: string[] = [];
  let rest = text;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) return responses;
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(rest.slice(0, headEnd))?.[1] ?? 0);
    const end = headEnd + 4 + length;
    if (rest.length < end) return responses;
    responses.push(rest.slice(0, end));
    rest = rest.slice(end);
  }
}
