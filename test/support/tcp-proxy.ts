/**
 * A TCP proxy in front of PostgreSQL that the test controls, to stage database outages:
 * `cut()` destroys every open connection and every new one until `restore()`. Destroying
 * (rather than leaving connections hanging) is what a dead server or a reset link looks like
 * to the app, and it fails fast instead of waiting on connect timeouts. `blackhole()` stages
 * the other kind of failure: a link that goes silent without a word.
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string;
  cut(): void;
  restore(): void;
  /**
   * Arms a one-shot cut for the moment the server sends `needle` (say, the reply to a COMMIT):
   * that chunk is not forwarded and everything is cut, so the client never learns the outcome.
   * Resolves when it fired.
   */
  cutWhenServerSends(needle: Buffer): Promise<void>;
  /**
   * Every open connection goes silent, as behind a dropped NAT entry or a dead host: nothing
   * more is forwarded either way, and neither end learns that the other closed (no FIN, no
   * RST). Connections opened afterwards work. `cut()` and `close()` still end them.
   */
  blackhole(): void;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Given each connection's client-to-server bytes as they pass (say, to count a database's statements). */
  readClient?: () => (chunk: Buffer) => void;
}

export async function startTcpProxy(
  target: { host: string; port: number } = { host: '127.0.0.1', port: 5432 },
  options: TcpProxyOptions = {},
): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  let isCut = false;
  let trap: { needle: Buffer; fired: () => void } | null = null;
  const silencers = new Set<() => void>();

  const cutAll = () => {
    isCut = true;
    for (const socket of open) socket.destroy();
    open.clear();
  };

  const server = net.createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    let silent = false;
    const silence = () => {
      silent = true;
    };
    silencers.add(silence);
    const read = options.readClient?.();
    const drop = () => {
      // A silenced link passes no close either; the other end stays open until cut or close.
      if (silent) return;
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
      silencers.delete(silence);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (silent) return;
      read?.(chunk);
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (silent) return;
      if (trap !== null && chunk.includes(trap.needle)) {
        const { fired } = trap;
        trap = null;
        cutAll();
        fired();
        return;
      }
      // Backpressure towards the server: a test proxy must not buffer without bound either.
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    urlFor(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    cut: cutAll,
    restore() {
      isCut = false;
    },
    blackhole() {
      for (const silence of silencers) silence();
      silencers.clear();
    },
    cutWhenServerSends(needle) {
      return new Promise((resolve) => {
        trap = { needle, fired: resolve };
      });
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
