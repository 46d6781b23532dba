/**
 * The part of a WebSocket the SDK uses: the WHATWG API, which browsers, Node 22+ and the `ws`
 * package all implement.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drops the connection without a closing handshake (a peer presumed dead). */
  terminate?(): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export const OPEN = 1;

/**
 * Opens sockets. Only some implementations can send request headers: a credential goes in a
 * header where one can (URLs end up in proxy and server logs, headers are redacted), and in
 * the URL where one cannot.
 */
export interface SocketOpener {
  readonly sendsHeaders: boolean;
  /** `headers` are sent only when `sendsHeaders`. */
  open(url: string, headers?: Record<string, string>): WebSocketLike;
}

/** Opens `url` presenting `credential`, if any: as Authorization: Bearer where the opener can, else as the query's `parameter`. */
export function openSocket(opener: SocketOpener, url: string, credential: string | undefined, parameter: string): WebSocketLike {
  if (credential === undefined) return opener.open(url);
  if (opener.sendsHeaders) return opener.open(url, { authorization: `Bearer ${credential}` });
  return opener.open(`${url}${url.includes('?') ? '&' : '?'}${parameter}=${encodeURIComponent(credential)}`);
}

type WsConstructor = new (url: string, options: { headers?: Record<string, string> }) => WebSocketLike;

/** A constructor called as the WHATWG API defines it: with a URL and nothing else. */
function urlOnly(WebSocketImpl: WebSocketConstructor): SocketOpener {
  return { sendsHeaders: false, open: (url) => new WebSocketImpl(url) };
}

function isNode(): boolean {
  return typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';
}

let loaded: Promise<SocketOpener> | null = null;

/**
 * The given constructor, called with a URL only as the WHATWG API defines it; else, in Node,
 * the `ws` package, which sends headers on every Node version (Node 22's global WebSocket
 * takes them only through a non-standard undici option); else the global WebSocket, which
 * in a browser cannot.
 */
export function resolveWebSocket(given: WebSocketConstructor | undefined): Promise<SocketOpener> {
  if (given) return Promise.resolve(urlOnly(given));
  if (!isNode()) {
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (global) return Promise.resolve(urlOnly(global));
    return Promise.reject(new Error('no WebSocket implementation: pass the WebSocket option'));
  }
  loaded ??= (async () => {
    // A computed specifier keeps bundlers from pulling `ws` into browser builds. esbuild
    // folds the constant when it minifies: mark `ws` external there (as src/http/routes/pages.ts does).
    const specifier = 'ws';
    try {
      const module = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as { default: WsConstructor };
      const Ws = module.default;
      return { sendsHeaders: true, open: (url: string, headers?: Record<string, string>) => new Ws(url, { headers }) };
    } catch {
      loaded = null;
      throw new Error('no WebSocket implementation: install the "ws" package, or pass the WebSocket option');
    }
  })();
  return loaded;
}

/** http(s)://host/base -> ws(s)://host/base/api/v1/<path> */
export function socketUrl(baseUrl: string, path: string): string {
  const url = new URL(baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${url.toString().replace(/\/+$/, '')}/api/v1${path}`;
}

/** Text of a message event; binary frames are not part of what the server sends to clients. */
function messageText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  return null;
}

export interface SocketHandlers {
  open(): void;
  message(text: string): void;
  close(code: number, reason: string): void;
}

/**
 * Wires a client's socket to its handlers, which run only while `isCurrent()` holds: after a
 * reconnect the events of an older socket are stale. Errors are left to the close event that
 * follows them, which carries what there is to act on.
 */
export function listen(socket: WebSocketLike, isCurrent: () => boolean, handlers: SocketHandlers): void {
  socket.addEventListener('open', () => {
    if (isCurrent()) handlers.open();
  });
  socket.addEventListener('message', (event) => {
    const text = messageText(event.data);
    if (isCurrent() && text !== null) handlers.message(text);
  });
  socket.addEventListener('close', (event) => {
    if (isCurrent()) handlers.close(event.code, event.reason);
  });
  socket.addEventListener('error', () => undefined);
}
