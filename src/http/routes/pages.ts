/**
 * The web pages: the landing page, the recorder (a phone streams its accelerometer) and the
 * viewer (a live plot of one session). Static files with no build step, from public/, and
 * uPlot from node_modules. The pages use the public API like any other client, through
 * same-origin relative URLs, so they work unchanged behind an HTTPS proxy.
 *
 * These routes are not API: they are hidden from the OpenAPI document (schema.hide), and
 * docs/API_CONTRACT.yml must not change when they are added or edited.
 *
 * Pages carry a Content-Security-Policy that allows only this origin's own script and style
 * files: a page that ever needed an inline script would break here first, not in a
 * deployment that adds its own CSP.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

const publicDir = fileURLToPath(new URL('../../../public/', import.meta.url));
const uplotDir = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js'));

/** A Host header is echoed into the CSP only when it cannot smuggle in another directive. */
const plainHost = /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

function contentSecurityPolicy(request: FastifyRequest): string {
  // CSP 3 lets 'self' match ws:/wss: on the same host, but Safari before 15.4 did not, and
  // the recorder's main audience is phones: name this host's socket origins explicitly.
  const host = request.host;
  const sockets = plainHost.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

function sendPage(request: FastifyRequest, reply: FastifyReply, file: string): FastifyReply {
  reply
    .header('content-security-policy', contentSecurityPolicy(request))
    .header('x-content-type-options', 'nosniff')
    // Viewer ids are read capabilities; a page never hands them to another origin.
    .header('referrer-policy', 'same-origin')
    // A deploy changes the pages and their scripts together: always revalidate.
    .header('cache-control', 'no-cache');
  return reply.sendFile(file, publicDir, { cacheControl: false });
}

const hidden = { schema: { hide: true } };

export const pageRoutes: FastifyPluginAsync = async (server) => {
  await server.register(fastifyStatic, {
    root: path.join(publicDir, 'assets'),
    prefix: '/assets/',
    cacheControl: false,
    setHeaders: (reply) => {
      reply.header('cache-control', 'no-cache');
      reply.header('x-content-type-options', 'nosniff');
    },
  });
  await server.register(fastifyStatic, {
    root: uplotDir,
    prefix: '/assets/vendor/uplot/',
    decorateReply: false,
    allowedPath: (pathname) => pathname === '/uPlot.esm.js' || pathname === '/uPlot.min.css',
    setHeaders: (reply) => reply.header('x-content-type-options', 'nosniff'),
  });

  server.get('/', hidden, (request, reply) => sendPage(request, reply, 'index.html'));
  server.get('/record', hidden, (request, reply) => sendPage(request, reply, 'record.html'));
  // Any id gets the page: the page asks the API and says plainly when there is no such session.
  server.get('/view/:id', hidden, (request, reply) => sendPage(request, reply, 'view.html'));
};
