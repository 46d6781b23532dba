/**
 * Where the SDK's access tokens come from in private mode (docs/security.md, "SDK"): an API
 * key exchanged for tokens and refreshed before they expire, a caller's own token getter (an
 * identity provider's tokens, which its library refreshes), or one fixed token.
 *
 * From a key: POST /auth/token gives the first pair; the refresh token is used up by each
 * POST /auth/refresh, and a refresh token used twice revokes its whole family, so refreshes
 * are coalesced: whoever asks while one is in flight waits for that one. A refused refresh
 * (used up, revoked, expired) falls back to exchanging the key again; a refused key is the
 * caller's error to see, never retried here. A background timer refreshes ahead of expiry,
 * so that a reconnect does not wait on a refresh; it is unref'd, and `close()` clears it.
 */
import { apiUrl, problemFrom, WavehouseHttpError } from './rest.ts';
import type { AccessCredential } from './types.ts';

export type AccessCredentialOptions =
  | {
      baseUrl: string;
      /** An API key (`wh_...`): exchanged for tokens, never sent on a socket. */
      apiKey: string;
      fetch?: typeof fetch;
      /** Replaceable for tests; Date.now by default. */
      clock?: () => number;
    }
  /** Called for every connection and request, and again when the server calls its token expired. */
  | { getAccessToken: () => Promise<string> }
  /** Used until it expires; nothing renews it. */
  | { accessToken: string };

export function accessCredential(options: AccessCredentialOptions): AccessCredential {
  if ('apiKey' in options) return new KeyCredential(options);
  if ('getAccessToken' in options) return new CallbackCredential(options.getAccessToken);
  const { accessToken } = options;
  if (typeof accessToken !== 'string' || accessToken === '') throw new TypeError('accessToken must be a non-empty string');
  return new CallbackCredential(() => Promise.resolve(accessToken));
}

/**
 * A session's ingest token as the credential of REST reads of that session: it reads the
 * session's own record, in either mode (docs/security.md), and nothing else. A Producer given
 * no credential reads its session with it; a page holding only a recorder link does the same.
 * Fixed: there is nothing to renew it with.
 */
export function ingestTokenCredential(ingestToken: string): AccessCredential {
  return { token: () => Promise.resolve(ingestToken), renew: () => Promise.resolve(null), close: () => undefined };
}

/** Not sooner than this after a token arrives, whatever its lifetime says: no tight loop on a server answering expiresIn 0. */
const minRefreshDelayMs = 1_000;
/** Well under setTimeout's limit (2^31-1 ms, about 24.8 days, past which it fires at once): a token living longer is refreshed daily. */
const maxRefreshDelayMs = 24 * 60 * 60 * 1000;

/**
 * How long after its arrival a token that lives `lifetimeMs` is refreshed: at 80% of its
 * lifetime or a minute before it expires, whichever is sooner, so a 15-minute token is
 * refreshed with 3 minutes to spare; not before half of its lifetime (a token shorter than
 * two minutes would otherwise be due at once), nor within the bounds above.
 */
export function refreshDelayMs(lifetimeMs: number): number {
  const lifetime = Number.isNaN(lifetimeMs) ? 0 : lifetimeMs;
  const ahead = Math.max(Math.min(lifetime * 0.8, lifetime - 60_000), lifetime / 2);
  return Math.min(Math.max(ahead, minRefreshDelayMs), maxRefreshDelayMs);
}

interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

interface Held {
  accessToken: string;
  refreshAtMs: number;
  expiresAtMs: number;
}

class KeyCredential implements AccessCredential {
  private held: Held | null = null;
  private refreshToken: string | null = null;
  private inflight: Promise<Held> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private readonly clock: () => number;

  constructor(private readonly options: Extract<AccessCredentialOptions, { apiKey: string }>) {
    if (typeof options.apiKey !== 'string' || options.apiKey === '') throw new TypeError('apiKey must be a non-empty string');
    this.clock = options.clock ?? Date.now;
  }

  async token(): Promise<string> {
    const held = this.held;
    if (held !== null && this.clock() < held.refreshAtMs) return held.accessToken;
    try {
      return (await this.renewed()).accessToken;
    } catch (error) {
      // Due for a refresh that failed (the server out of reach, say): the token still works until it expires.
      if (held !== null && this.clock() < held.expiresAtMs && !(error instanceof WavehouseHttpError && error.status === 401)) {
        return held.accessToken;
      }
      throw error;
    }
  }

  async renew(refused: string): Promise<string | null> {
    // Refreshed already since `refused` was handed out: the newer one.
    if (this.held !== null && this.held.accessToken !== refused) return this.held.accessToken;
    return (await this.renewed()).accessToken;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The one refresh in flight, or a new one. */
  private renewed(): Promise<Held> {
    this.inflight ??= this.fetchPair().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchPair(): Promise<Held> {
    const sentAtMs = this.clock();
    const pair = (await this.refreshed()) ?? (await this.post('/auth/token', { authorization: `Bearer ${this.options.apiKey}` }));
    this.refreshToken = pair.refreshToken;
    const lifetimeMs = pair.expiresIn * 1000;
    // Counted from the request, not the answer: the server's clock started before the answer came.
    const held = { accessToken: pair.accessToken, refreshAtMs: sentAtMs + refreshDelayMs(lifetimeMs), expiresAtMs: sentAtMs + lifetimeMs };
    this.held = held;
    this.schedule(held.refreshAtMs - this.clock());
    return held;
  }

  /** A pair from the refresh token; null when there is none or it was refused, and the key must be exchanged again. */
  private async refreshed(): Promise<TokenPair | null> {
    const refreshToken = this.refreshToken;
    if (refreshToken === null) return null;
    try {
      return await this.post('/auth/refresh', { 'content-type': 'application/json' }, JSON.stringify({ refreshToken }));
    } catch (error) {
      if (!(error instanceof WavehouseHttpError && error.status === 401)) throw error;
      this.refreshToken = null;
      return null;
    }
  }

  private async post(path: string, headers: Record<string, string>, body?: string): Promise<TokenPair> {
    const response = await (this.options.fetch ?? fetch)(apiUrl(this.options.baseUrl, path), { method: 'POST', headers, body });
    if (response.status !== 200) throw await problemFrom(response);
    return (await response.json()) as TokenPair;
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.closed) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        // A failure here is met again, and reported, by the next token() that needs one.
        this.renewed().catch(() => undefined);
      },
      Math.max(delayMs, minRefreshDelayMs),
    );
    // Node: a credential alone must not keep the process alive. Browsers' timers are numbers.
    (this.timer as { unref?: () => void }).unref?.();
  }
}

class CallbackCredential implements AccessCredential {
  constructor(private readonly getAccessToken: () => Promise<string>) {}

  token(): Promise<string> {
    return this.getAccessToken();
  }

  async renew(refused: string): Promise<string | null> {
    const next = await this.getAccessToken();
    return next === refused ? null : next;
  }

  close(): void {}
}
