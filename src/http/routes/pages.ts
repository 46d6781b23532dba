/**
 * The web pages: the landing page, the recorder (a phone streams its accelerometer) and the
 * viewer (a live plot of one session). Static files from public/, uPlot from node_modules,
 * and the client SDK (src/sdk) as one ES module, /assets/js/wavehouse-sdk.js, bundled in
 * memory when this plugin registers: the pages talk to the API through the same Producer,
 * Viewer and REST helpers as any other client, with no build step and no committed bundle.
 * They address this page's own origin, so they work unchanged behind an HTTPS proxy.
 *
 * These routes are not API: they are hidden from the OpenAPI document (schema.hide), and
 * docs/API_CONTRACT.yml must not change when they are added or edited.
 *
 * Pages carry a Content-Security-Policy that allows only this origin's own script and style
 * files: a page that ever needed an inline script would break here first, not in a
 * deployment that adds its own CSP. It is the pages' only one: it replaces the helmet CSP
 * that server.ts's onRequest hook set on the reply, so it alone names their socket origins.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { build, type Plugin } from 'esbuild';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthMode } from '../../access/policy.ts';

const publicDir = fileURLToPath(new URL('../../../public/', import.meta.url));
const uplotDir = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js'));
const sdkEntry = fileURLToPath(new URL('../../sdk/index.ts', import.meta.url));

/**
 * The SDK imports nothing but its own files. esbuild already refuses Node built-ins for the
 * browser platform, but a package could slip through quietly: `ws`, for one, maps itself to
 * a stub that throws only once a page runs it. Refused here, the server does not start.
 *
 * One exception: websocket.ts loads `import('ws')` when it runs in Node, where `ws` can send
 * the ingest token as a header. In a browser that branch is never taken, so the import stays
 * as it is, never bundled and never evaluated.
 */
const onlyOwnFiles: Plugin = {
  name: 'wavehouse-sdk-own-files-only',
  setup(bundle) {
    bundle.onResolve({ filter: /^[^./]/ }, ({ path: specifier, importer, kind }) => {
      if (specifier === 'ws' && kind === 'dynamic-import') return { path: specifier, external: true };
      return { errors: [{ text: `the browser SDK must import only its own files, not "${specifier}" (imported by ${importer})` }] };
    });
  },
};

interface SdkBundle {
  /** The ES module's source. */
  text: string;
  /** A strong validator of `text`: a page load that revalidates it costs a 304. */
  etag: string;
  warnings: string[];
}

/** Rejects with esbuild's errors, so the server does not start, when the SDK does not bundle for browsers. */
async function bundleSdk(): Promise<SdkBundle> {
  const result = await build({
    entryPoints: [sdkEntry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    plugins: [onlyOwnFiles],
    logLevel: 'silent',
  }).catch((error: unknown) => {
    throw new Error(
      `the browser bundle of the SDK (${sdkEntry}) does not build: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  });
  const text = result.outputFiles[0].text;
  return {
    text,
    etag: `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`,
    warnings: result.warnings.map((warning) => `${warning.location?.file ?? sdkEntry}: ${warning.text}`),
  };
}

/** A Host header is echoed into the CSP only when it cannot smuggle in another directive. */
const plainHost = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

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

export interface PageRoutesOptions {
  authMode: AuthMode;
}

/**
 * What the pages must know of this server before their first call, as a module they import:
 * in private mode they ask for a sign-in up front instead of meeting a 401 (an inline script
 * would break the CSP, and an API field would make the mode part of the contract).
 */
function pageConfigModule({ authMode }: PageRoutesOptions): string {
  return `export const authMode = ${JSON.stringify(authMode)};\n`;
}

export const pageRoutes: FastifyPluginAsync<PageRoutesOptions> = async (server, options) => {
  const sdk = await bundleSdk();
  const pageConfig = pageConfigModule(options);
  for (const warning of sdk.warnings) server.log.warn({ warning }, 'the browser bundle of the SDK built with a warning');

  // More specific than the static /assets/* route below, so it wins whatever the order.
  server.get('/assets/js/wavehouse-sdk.js', hidden, (request, reply) => {
    // A deploy changes the bundle together with the pages: always revalidate, cheaply.
    reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').header('etag', sdk.etag);
    if (request.headers['if-none-match'] === sdk.etag) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(sdk.text);
  });
  server.get('/assets/js/page-config.js', hidden, (_request, reply) =>
    reply
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .type('text/javascript; charset=utf-8')
      .send(pageConfig),
  );
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
