/**
 * The part of a WebSocket the SDK uses: the WHATWG API, which browsers, Node 22+ and the `ws`
 * package all implement. Node 20 has no global WebSocket, so there the SDK loads `ws`.
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

let loaded: Promise<WebSocketConstructor> | null = null;

/** The given constructor, else the global one, else (Node 20) the `ws` package. */
export function resolveWebSocket(given: WebSocketConstructor | undefined): Promise<WebSocketConstructor> {
  if (given) return Promise.resolve(given);
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return Promise.resolve(global);
  loaded ??= (async () => {
    // A computed specifier keeps bundlers from pulling `ws` into browser builds. esbuild
    // folds the constant when it minifies: mark `ws` external there (as src/http/routes/pages.ts does).
    const specifier = 'ws';
    try {
      const module = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as { default: WebSocketConstructor };
      return module.default;
    } catch {
      loaded = null;
      throw new Error('no WebSocket implementation: pass the WebSocket option, or install the "ws" package (Node 20)');
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
