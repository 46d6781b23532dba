/**
 * One origin in front of two apps, as a balancer in front of instances that disagree (a
 * signing key rotated on one of them only): plain HTTP goes to one, socket upgrades to the
 * other, byte for byte, Host and Origin untouched.
 */
import { createServer, request as httpRequest } from 'node:http';
import net from 'node:net';
import type { TestContext } from 'node:test';

/** Starts the proxy on 127.0.0.1 and returns its base URL; it stops when the test ends. */
export async function startSplitProxy(t: Pick<TestContext, 'after'>, httpBaseUrl: string, upgradeBaseUrl: string): Promise<string> {
  const http = new URL(httpBaseUrl);
  const upgrades = new URL(upgradeBaseUrl);
  const server = createServer((request, response) => {
    const { method, url: path, headers } = request;
    const forwarded = httpRequest({ host: http.hostname, port: http.port, method, path, headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  server.on('upgrade', (request, socket, head) => {
    const upstream = net.connect(Number(upgrades.port), upgrades.hostname, () => {
      const headerLines: string[] = [];
      for (let i = 0; i < request.rawHeaders.length; i += 2) headerLines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
      upstream.write([`${request.method} ${request.url} HTTP/1.1`, ...headerLines, '', ''].join('\r\n'));
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as net.AddressInfo;
  return `http://127.0.0.1:${port}`;
}
