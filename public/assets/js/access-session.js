/**
 * The pages' credential on a private server (docs/security.md, "The pages"). An API key typed
 * on the landing page is exchanged at once for an access token and a refresh token (POST
 * /api/v1/auth/token) and then forgotten: only the pair is kept, in this tab's sessionStorage,
 * never in localStorage, so it ends with the tab and no long-lived secret is left on disk.
 *
 * Refresh: a timer renews the pair a margin before the access token expires (a quarter of its
 * lifetime, at most two minutes, since background tabs' timers may fire a minute late), and a
 * REST call answered 401 renews it once and is sent again. The refresh token is single-use,
 * so every refresh of this tab is one shared promise, and tabs holding the same pair take
 * turns (access-tabs.js). A refresh the server refuses (the family was revoked, the refresh
 * token expired) drops the pair: the tab is signed out and the pages say so.
 *
 * Sockets: the SDK's Viewer gets `credential`, which hands it the current access token at every
 * connect (a browser's socket carries it in `?access_token=`) and renews it through this
 * session when the server calls it expired; the SDK decides when that may happen (once per
 * token), so a server that keeps refusing fresh tokens cannot make the page loop.
 */
import { SiblingTabs } from './access-tabs.js';
import { authMode } from './page-config.js';
import { baseUrl } from './page-links.js';
import { WavehouseHttpError } from './wavehouse-sdk.js';

export const privateMode = authMode === 'private';

const storageKey = 'wavehouse.access';
const maxMarginMs = 120_000;
/** An access token this close to its expiry is renewed before it is sent, not after a 401. */
const expirySkewMs = 5_000;
/** A refresh that failed without a refusal (network down, 429, 5xx) is tried again this soon. */
const retryMs = 5_000;

const apiPath = (path) => `${baseUrl}/api/v1${path}`;

function readStored() {
  try {
    return JSON.parse(sessionStorage.getItem(storageKey) ?? 'null');
  } catch {
    return null;
  }
}

function writeStored(pair) {
  try {
    if (pair === null) sessionStorage.removeItem(storageKey);
    else sessionStorage.setItem(storageKey, JSON.stringify(pair));
  } catch {
    // Storage disabled: the pair lives in memory, and the tab is signed out by a reload.
  }
}

function randomFamily() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** The server's answer as the pair this tab keeps, with when to renew it. */
function pairFrom(answer, family, generation) {
  const lifetimeMs = answer.expiresIn * 1000;
  const expiresAt = Date.now() + lifetimeMs;
  const refreshAt = expiresAt - Math.min(maxMarginMs, lifetimeMs / 4);
  return { accessToken: answer.accessToken, refreshToken: answer.refreshToken, expiresAt, refreshAt, family, generation };
}

/** The claims of a JWT, read to show who is signed in; the server verifies them, not the page. */
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return {};
  }
}

async function problemCode(response) {
  try {
    return (await response.json()).code ?? `http_${response.status}`;
  } catch {
    return `http_${response.status}`;
  }
}

/** Dispatches `change` when the tab signs in, renews its pair or is signed out (`signedOutBecause` says why). */
class AccessSession extends EventTarget {
  #pair = readStored();
  #refreshing = null;
  #timer = null;
  #tabs;
  refreshes = 0;
  /** 'signed-out' (by the user, here or in a sibling tab) or 'expired' (the server refused the refresh). */
  signedOutBecause = null;

  constructor() {
    super();
    this.#tabs = new SiblingTabs({
      held: () => this.#pair,
      adopt: (pair) => this.#keep(pair),
      drop: () => this.#drop('signed-out'),
    });
    this.fetch = (input, init) => this.#fetch(input, init);
    /** The SDK's `credential` (an AccessCredential, src/sdk/types.ts). */
    this.credential = {
      token: async () => {
        const token = await this.#currentToken();
        if (token === undefined) throw new WavehouseHttpError(401, 'missing_credential', 'this tab is signed out', apiPath(''));
        return token;
      },
      renew: async (refused) => ((await this.renew(refused)) ? this.#pair.accessToken : null),
      // The session outlives any one Viewer: its renewals go on.
      close: () => undefined,
    };
    document.addEventListener('visibilitychange', () => {
      // Hidden tabs' timers are throttled: catch up on a renewal that came due meanwhile.
      if (document.visibilityState === 'visible' && this.#pair !== null && Date.now() >= this.#pair.refreshAt) this.#renewOnTime();
    });
    this.#schedule();
  }

  get signedIn() {
    return this.#pair !== null;
  }

  /** The key id, scopes and key prefix the access token carries; null when signed out. */
  get identity() {
    if (this.#pair === null) return null;
    const claims = claimsOf(this.#pair.accessToken);
    return { keyId: claims.sub ?? null, scopes: (claims.scope ?? '').split(' ').filter(Boolean), keyPrefix: claims.key_prefix ?? null };
  }

  /** Exchanges `apiKey` for a pair; throws an Error with the problem's code when it is refused. */
  async signIn(apiKey) {
    const response = await fetch(apiPath('/auth/token'), { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } });
    if (response.status !== 200) throw Object.assign(new Error(await problemCode(response)), { status: response.status });
    const previous = this.#pair;
    this.signedOutBecause = null;
    this.#keep(pairFrom(await response.json(), randomFamily(), 1));
    if (previous !== null) {
      this.#tabs.announceSignOut(previous.family);
      this.#logout(previous);
    }
  }

  /** Revokes the pair's family on the server (siblings of this tab included) and forgets it here. */
  async signOut() {
    const pair = this.#pair;
    if (pair === null) return;
    this.#tabs.announceSignOut(pair.family);
    this.#drop('signed-out');
    await this.#logout(pair);
  }

  /** Renews the pair now; concurrent calls share one refresh. */
  refresh() {
    this.#refreshing ??= this.#refreshOnce().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /**
   * After `usedToken` was refused: renews the pair unless that already happened; true when a
   * newer token is now held to try again with.
   */
  async renew(usedToken) {
    if (this.#pair !== null && this.#pair.accessToken === usedToken) await this.refresh().catch(() => undefined);
    return this.#pair !== null && this.#pair.accessToken !== usedToken;
  }

  /** fetch with `Authorization: Bearer <access token>`, unless the request carries its own (an ingest token). */
  async #fetch(input, init = {}) {
    const headers = new Headers(init.headers);
    if (this.#pair === null || headers.has('authorization')) return fetch(input, init);
    const token = await this.#currentToken();
    if (token === undefined) return fetch(input, init);
    headers.set('authorization', `Bearer ${token}`);
    const response = await fetch(input, { ...init, headers });
    if (response.status !== 401 || !(await this.renew(token))) return response;
    headers.set('authorization', `Bearer ${this.#pair.accessToken}`);
    return fetch(input, { ...init, headers });
  }

  /** The access token to send now, renewed first when it is about to expire; undefined when signed out. */
  async #currentToken() {
    if (this.#pair !== null && Date.now() >= this.#pair.expiresAt - expirySkewMs) await this.refresh().catch(() => undefined);
    return this.#pair?.accessToken;
  }

  async #refreshOnce() {
    const held = this.#pair;
    if (held === null) return;
    await this.#tabs.exclusive(held.family, async () => {
      await this.#tabs.catchUp(held);
      const current = this.#pair;
      // Signed out meanwhile, or a sibling tab renewed the pair and handed it over.
      if (current === null || current.family !== held.family || current.generation > held.generation) return;
      const response = await fetch(apiPath('/auth/refresh'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken: current.refreshToken }),
      });
      if (response.status === 200) {
        this.refreshes += 1;
        this.#keep(pairFrom(await response.json(), current.family, current.generation + 1));
        this.#tabs.announce(this.#pair);
      } else if (response.status === 401) {
        this.#tabs.announceSignOut(current.family);
        this.#drop('expired');
      } else {
        throw new Error(`the refresh failed: ${await problemCode(response)}`);
      }
    });
  }

  #renewOnTime() {
    this.refresh().catch(() => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#renewOnTime(), retryMs);
    });
  }

  #schedule() {
    clearTimeout(this.#timer);
    if (this.#pair !== null) this.#timer = setTimeout(() => this.#renewOnTime(), Math.max(0, this.#pair.refreshAt - Date.now()));
  }

  #keep(pair) {
    this.#pair = pair;
    writeStored(pair);
    this.#schedule();
    this.dispatchEvent(new Event('change'));
  }

  #drop(reason) {
    if (this.#pair === null) return;
    this.#pair = null;
    this.signedOutBecause = reason;
    writeStored(null);
    this.#schedule();
    this.dispatchEvent(new Event('change'));
  }

  async #logout(pair) {
    try {
      await fetch(apiPath('/auth/logout'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken: pair.refreshToken }),
      });
    } catch {
      // Unreachable: the tokens are gone from this tab; the refresh token expires by itself.
    }
  }
}

export const access = new AccessSession();

/** Where a page sends a signed-out visitor: the landing page's sign-in, and back here after it (in the fragment, never logged). */
export function signInHref() {
  return `/#${new URLSearchParams({ next: location.pathname + location.search + location.hash })}`;
}

/**
 * Shows `notice` (a message holding a link to the sign-in) while a private server has no
 * pair in this tab; calls `onChange` whenever that changes. Returns whether the page may call the API.
 */
export function watchSignIn(notice, onChange = () => undefined) {
  const update = () => {
    const missing = privateMode && !access.signedIn;
    notice.querySelector('a').href = signInHref();
    notice.querySelector('[data-why]').textContent = access.signedOutBecause === 'expired' ? 'Your sign-in has expired. ' : '';
    notice.hidden = !missing;
    onChange(!missing);
  };
  access.addEventListener('change', update);
  update();
  return !(privateMode && !access.signedIn);
}

window.__wavehouseAccess = Object.freeze({
  get status() {
    return { mode: authMode, signedIn: access.signedIn, refreshes: access.refreshes, signedOutBecause: access.signedOutBecause };
  },
  refresh: () => access.refresh(),
});
