/**
 * The client's address, which the per-IP rate limits and socket caps key on, read alike for
 * REST requests (Fastify's trustProxy) and socket upgrades, with the library Fastify uses.
 *
 * X-Forwarded-For is read from the right: each proxy appends the address it saw, so only the
 * entries added by trusted proxies can be believed, and the client is the first address to
 * the left of them. The leftmost entry is whatever the client sent (nginx's
 * `$proxy_add_x_forwarded_for` keeps it), so it is never taken for the client.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import type { TrustProxy } from '../config.ts';

/** Whether the hop'th address from the right (0: the peer of the TCP connection) is a proxy to believe. */
export type ProxyTrust = (address: string, hop: number) => boolean;

export function proxyTrust(setting: TrustProxy): ProxyTrust {
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return proxyAddr.compile([...setting]);
}

export function clientAddress(request: IncomingMessage, trust: ProxyTrust): string {
  return proxyAddr(request, trust) ?? '';
}
