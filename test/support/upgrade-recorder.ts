/** An HTTP proxy that records the WebSocket upgrades passing through it. */
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface Upgrade {
  url: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * An HTTP proxy in front of the server at `target` that passes everything on and keeps the
 * request line and headers of every WebSocket upgrade: what a client actually sent, before
 * the server's log redacts it.
 */
export async function startUpgradeRecorder(t: Pick<TestContext, 'after'>, target: string): Promise<{ url: string; upgrades: Upgrade[] }> {
  const { hostname, port } = new URL(target);
  const upgrades: Upgrade[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const server = http.createServer((request, response) => {
    const upstream = http.request(
      { host: hostname, port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  server.on('connection', track);
  server.on('upgrade', (request: http.IncomingMessage, client: Socket, head: Buffer) => {
    upgrades.push({ url: request.url!, headers: request.headers });
    const upstream = net.connect(Number(port), hostname, () => {
      const lines = [`${request.method} ${request.url} HTTP/1.1`];
      for (let i = 0; i < request.rawHeaders.length; i += 2) lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, upgrades };
}
