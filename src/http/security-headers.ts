/**
 * The security headers of every response, as helmet computes them, computed once at startup.
 *
 * @fastify/helmet 13 calls helmet(options) inside its onRequest hook, so every request parsed
 * the CSP directives again and ran a dozen middlewares: 27 us of the ~250 us of server CPU a
 * REST request cost (cpu-prof at 2,000 requests/s). With no nonces and no directive
 * computed per request, the set is the same for every response: helmet runs once here against
 * a recorder, and server.ts sets the result in its onRequest hook.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

/** Header names in lower case, as Fastify keeps them. Options must not hold CSP functions (they would see no request). */
export function securityHeaders(options: Readonly<HelmetOptions>): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string) {
      headers[name.toLowerCase()] = value;
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let finished = false;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error;
    finished = true;
  });
  // Helmet's middlewares run synchronously today; one that did not would leave the set short.
  if (!finished) throw new Error('helmet did not finish synchronously; its header set cannot be computed once');
  return headers;
}
