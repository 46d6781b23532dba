/**
 * The socket a Producer or a Viewer keeps open across failures: one attempt at a time (each a
 * generation, so that events of a socket already let go are ignored), the session read first
 * when the client asks for it, retries after a capped, jittered backoff, and one table of what
 * a close code means.
 *
 * The client decides what to do with a close (its own events and errors); this module decides
 * only what a code means, so that the producer and the viewer cannot drift apart on it.
 *
 * Credentials: a producer's socket presents the session's ingest token alone (the server
 * judges a socket by its access token when it has one, and refuses a header and a query
 * parameter that differ), a viewer's the access credential, if any: in a header where the
 * socket can send one, else as `?access_token=`. Every attempt asks the credential for a
 * current token; a 4401 `credential_expired` renews it and reconnects at once, but a renewed
 * token that is refused as expired again is fatal (the clocks disagree; retrying cannot help).
 */
import { type CloseName, closeCodes, type ProblemCode, problems } from '../contract/errors.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { getSession, WavehouseHttpError } from './rest.ts';
import type { AccessCredential, Session } from './types.ts';
import { listen, OPEN, openSocket, resolveWebSocket, socketUrl, type WebSocketConstructor, type WebSocketLike } from './websocket.ts';

/**
 * fatal: stop and report; ended: the session is over; retry: reconnect after the backoff;
 * renew: the access token expired, reconnect with a renewed one (a client sees it as retry or fatal).
 */
export type CloseOutcome = 'fatal' | 'ended' | 'retry' | 'renew';

/**
 * Every close code of the contract, decided here: a code added to contract/errors.ts does not
 * compile until it has a meaning. Refusals that the same request would meet again are fatal;
 * restarts, outages, a lingering producer lock and full servers pass.
 */
const outcomes = {
  normal: 'ended',
  policy_violation: 'fatal',
  message_too_big: 'fatal',
  internal_error: 'retry',
  service_restart: 'retry',
  try_again_later: 'retry',
  invalid_token: 'fatal',
  forbidden: 'fatal',
  session_not_found: 'fatal',
  producer_conflict: 'retry',
  too_many_connections: 'retry',
} as const satisfies Record<CloseName, CloseOutcome>;

/** With the contract's name of the code (a fatal close's error code); null for a code outside the contract. */
export type CloseMeaning = { outcome: CloseOutcome; name: CloseName } | { outcome: 'retry'; name: null };

const meanings = new Map<number, CloseMeaning>(
  (Object.keys(outcomes) as CloseName[]).map((name): [number, CloseMeaning] => [closeCodes[name].code, { outcome: outcomes[name], name }]),
);

/** A 4401's reason starts with the REST code of the refusal (src/http/socket-access.ts). */
const expiredReason = 'credential_expired';

/**
 * Codes outside the contract (1006 for a dropped connection, 4000 for one we let go) are
 * network trouble: retry. A 4401 for an expired token is the one code whose reason matters.
 */
export function closeMeaning(code: number, reason = ''): CloseMeaning {
  if (code === closeCodes.invalid_token.code && reason.startsWith(expiredReason)) return { outcome: 'renew', name: 'invalid_token' };
  return meanings.get(code) ?? { outcome: 'retry', name: null };
}

/**
 * A fatal close's error code: for a 4401 or a 4403, the REST code of the refusal that its
 * reason starts with (`credential_revoked`, `outside_key_prefix`...), which tells a client
 * what to do; else the close's name (a producer's wrong ingest token stays `invalid_token`).
 */
export function fatalCode(name: CloseName, reason: string): string {
  const word = reason.split(':', 1)[0];
  const access = name === 'invalid_token' || name === 'forbidden';
  const refusal = access && Object.hasOwn(problems, word) ? problems[word as ProblemCode] : null;
  return refusal !== null && refusal.status === closeCodes[name].code - 4000 ? word : name;
}

/** Where an attempt connects: a path under /api/v1, and the session's ingest token for a producer's socket. */
export interface SocketTarget {
  path: string;
  ingestToken?: string;
}

/** A server frame: a JSON object, its fields still to be checked by the client. */
export type ServerFrame = { readonly type?: unknown } & Readonly<Record<string, unknown>>;

/**
 * Text that is not a JSON object is no frame of the contract: dropped here, for both clients,
 * rather than failing one of them on a server newer or stranger than it knows.
 */
function parseFrame(text: string): ServerFrame | null {
  try {
    const frame: unknown = JSON.parse(text);
    return typeof frame === 'object' && frame !== null && !Array.isArray(frame) ? (frame as ServerFrame) : null;
  } catch {
    return null;
  }
}

export interface SocketClient {
  /** Whether this attempt reads the session (GET /sessions/{id}) before it connects. */
  readsSession(): boolean;
  /**
   * Where this attempt connects, given the session when it was read; null when what was read
   * made the client stop (an ended session, other channels).
   */
  target(session: Session | null): SocketTarget | null;
  /** The attempt has a socket, not yet open. */
  opening?(): void;
  open(socket: WebSocketLike): void;
  message(frame: ServerFrame): void;
  /**
   * The socket closed or was let go, or an attempt failed before it had one (1006, with the
   * error's message). `meaning` is never `renew`: that is decided here, as retry or fatal.
   */
  closed(code: number, reason: string, meaning: CloseMeaning): void;
  /** GET /sessions/{id} answered 404. */
  notFound(): void;
  /** The session's read or the credential's token was refused (401, 403): fatal. */
  denied(error: WavehouseHttpError): void;
}

export interface ReconnectingSocketOptions {
  baseUrl: string;
  sessionId: string;
  backoff?: BackoffOptions;
  WebSocket?: WebSocketConstructor;
  fetch?: typeof fetch;
  credential?: AccessCredential;
}

export class ReconnectingSocket {
  private current: WebSocketLike | null = null;
  /** Bumped whenever a socket is let go, so its late events are ignored. */
  private generation = 0;
  private readonly backoff: Backoff;
  /** The access token the last attempt presented; null when it presented none. */
  private presented: string | null = null;
  /** The token the last renewal gave: refused as expired in its turn, it is fatal. */
  private renewedTo: string | null = null;
  /** The next attempt renews the presented token first. */
  private renewNext = false;

  constructor(
    private readonly options: ReconnectingSocketOptions,
    private readonly client: SocketClient,
  ) {
    this.backoff = new Backoff(options.backoff);
  }

  /** The socket of the current attempt, open or not; null between attempts. */
  get socket(): WebSocketLike | null {
    return this.current;
  }

  /** Starts an attempt now, abandoning any older one. */
  async connect(): Promise<void> {
    const generation = ++this.generation;
    const isCurrent = () => generation === this.generation;
    const renew = this.renewNext;
    this.renewNext = false;
    try {
      const opener = await resolveWebSocket(this.options.WebSocket);
      if (!isCurrent()) return;
      let session: Session | null = null;
      if (this.client.readsSession()) {
        const { fetch, credential } = this.options;
        session = await getSession(this.options.baseUrl, this.options.sessionId, { fetch, credential });
        if (!isCurrent()) return;
      }
      const target = this.client.target(session);
      if (target === null) return;
      const bearer = target.ingestToken ?? (await this.accessToken(renew));
      if (!isCurrent()) return;
      if (bearer === null) return this.onClose(closeCodes.invalid_token.code, `${expiredReason}: no newer token to be had`);
      const socket = openSocket(
        opener,
        socketUrl(this.options.baseUrl, target.path),
        bearer,
        target.ingestToken ? 'token' : 'access_token',
      );
      this.current = socket;
      this.client.opening?.();
      listen(socket, isCurrent, {
        open: () => this.client.open(socket),
        message: (text) => {
          const frame = parseFrame(text);
          if (frame !== null) this.client.message(frame);
        },
        close: (code, reason) => this.onClose(code, reason),
      });
    } catch (error) {
      if (!isCurrent()) return;
      if (error instanceof WavehouseHttpError && error.status === 404) return this.client.notFound();
      if (error instanceof WavehouseHttpError && (error.status === 401 || error.status === 403)) return this.client.denied(error);
      // Unreachable or answering 5xx: as good as a dropped connection.
      this.onClose(1006, error instanceof Error ? error.message : String(error));
    }
  }

  /** Connects again after the next backoff delay, or at once with a renewed token after it expired; returns the delay. */
  retry(): number {
    if (!this.renewNext) return this.backoff.schedule(() => void this.connect());
    this.backoff.cancel();
    void this.connect();
    return 0;
  }

  /**
   * The token this attempt presents: the credential's current one, or, after it was refused as
   * expired, a renewed one (null when there is none); undefined without a credential.
   */
  private async accessToken(renew: boolean): Promise<string | null | undefined> {
    const { credential } = this.options;
    if (credential === undefined) return undefined;
    const token = renew && this.presented !== null ? await credential.renew(this.presented) : await credential.token();
    if (renew) this.renewedTo = token;
    this.presented = token;
    return token;
  }

  /** The connection proved good: the next failure retries from the shortest delay. */
  resetBackoff(): void {
    this.backoff.reset();
  }

  /** A socket that stopped answering: let it go without waiting for a closing handshake. */
  abandon(reason: string): void {
    const socket = this.current;
    if (socket === null) return;
    try {
      if (socket.terminate) socket.terminate();
      else socket.close(4000, reason);
    } catch {
      // Already closing: nothing more to do with it.
    }
    this.onClose(4000, reason);
  }

  /** Stops for good: no retry pending, no event from any socket, the current one closed. */
  stop(reason: string): void {
    this.generation++;
    this.backoff.cancel();
    const socket = this.current;
    this.current = null;
    if (socket && socket.readyState <= OPEN) socket.close(1000, reason);
  }

  private onClose(code: number, reason: string): void {
    this.current = null;
    this.generation++;
    const meaning = closeMeaning(code, reason);
    this.renewNext = meaning.outcome === 'renew' && this.presented !== null && this.presented !== this.renewedTo;
    if (meaning.outcome !== 'renew') return this.client.closed(code, reason, meaning);
    this.client.closed(code, reason, { outcome: this.renewNext ? 'retry' : 'fatal', name: meaning.name });
  }
}
