/**
 * A cap on the open TCP connections of one client address, WebSockets included.
 *
 * Counted on the server's 'connection' event, before a byte of any request is read, and
 * released on the socket's 'close', whatever became of it (a REST exchange, an upgrade, a
 * timeout): so it bounds what no per-request limit sees, connections that never finish a
 * request (slowloris) and sockets held open for hours. A connection over the cap is
 * destroyed at once, unanswered: an answer (a 429) needs a request read first, which is what
 * such a client may never send, and it would spend on the client the work the cap saves.
 *
 * The address is the TCP peer's, never X-Forwarded-For: behind a proxy it is the proxy's,
 * so there the proxy must do this job (config.ts turns the cap off with TRUST_PROXY unless it
 * is set). An IPv6 client is counted by its /64, the block one subscriber line gets, since a
 * single host can take any number of addresses in it.
 */
import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';

/** The address a connection counts against: an IPv4 address, or an IPv6 address's /64. */
export function connectionKeyOf(address: string): string {
  if (!address.includes(':') || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address)) return address;
  const [head, tail] = address.split('%', 1)[0].split('::');
  const leading = head === '' ? [] : head.split(':');
  const trailing = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - leading.length - trailing.length).fill('0');
  const prefix = [...leading, ...zeros, ...trailing].slice(0, 4).map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
  return `${prefix.join(':')}::/64`;
}

export function capConnectionsPerAddress(server: Server, maxPerAddress: number, log: Logger): void {
  if (maxPerAddress === 0) return;
  const open = new Map<string, number>();
  // Addresses refused since they last went under the cap: one log line per episode, not one
  // per connection of a client that keeps trying.
  const refusing = new Set<string>();
  server.on('connection', (socket: Socket) => {
    // Undefined once the peer has already gone: nothing to count.
    if (socket.remoteAddress === undefined) return;
    const key = connectionKeyOf(socket.remoteAddress);
    const count = open.get(key) ?? 0;
    if (count >= maxPerAddress) {
      if (!refusing.has(key)) {
        refusing.add(key);
        log.warn({ client: key, maxConnectionsPerIp: maxPerAddress }, 'client at its connection cap; closing its new connections');
      }
      socket.destroy();
      return;
    }
    open.set(key, count + 1);
    socket.once('close', () => {
      const left = open.get(key)! - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
      refusing.delete(key);
    });
  });
}
