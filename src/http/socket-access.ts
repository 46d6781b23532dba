/**
 * The authorization step of the sockets, as access-guard.ts is REST's. A socket's request
 * presents an API key or access token (`Authorization: Bearer`, or `?access_token=` since a
 * browser cannot set a socket's headers), a session's ingest token (the header, or
 * `?token=`), or nothing. A key or token is judged by itself, in either mode; an ingest token
 * is left to the ingest route (ingest/ingest-route.ts), which alone can check it.
 *
 * Refusals are closes right after the upgrade, so browsers can read them: a credential
 * refused or missing is 4401, a valid one that does not reach is 4403, the reason starting
 * with the REST code. What can be refused without the session is, before its lookup
 * (`beforeLookup`), so that an id is not probed for; the rest (`onSession`) once it is found.
 *
 * A socket counts against the cap of its holder (`holderOf`): the key its key or token stands
 * for, or the provider subject, else its client IP. A team behind one NAT is then capped per
 * key, not all together by its address; an anonymous flood is still capped by its address,
 * and random credentials are refused, not counted as anyone's.
 */
import type { Authenticator } from '../access/authenticator.ts';
import { classifyCredential, type PresentedCredential, parseAuthorization } from '../access/bearer.ts';
import { type AuthMode, type RefusalCode, refusalStatus } from '../access/policy.ts';
import { Principal, type SessionRef } from '../access/principal.ts';
import type { Config } from '../config.ts';
import type { CloseName } from '../contract/errors.ts';
import { judge } from './access-guard.ts';
import type { SocketKind, Upgrade } from './socket-upgrades.ts';

/** What a socket presents, once read. */
export type Presented =
  | { readonly kind: 'none' }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'ingest-token'; readonly token: string }
  | { readonly kind: 'bearer'; readonly credential: PresentedCredential }
  /** An Authorization header and an `?access_token=` that are not the same credential. */
  | { readonly kind: 'conflict' };

/** Who the socket is for, or why it is refused. */
export type Verdict =
  | { readonly ok: true; readonly principal: Principal; readonly ingestToken: string | null }
  | { readonly ok: false; readonly code: RefusalCode };

export interface Refusal {
  readonly close: CloseName;
  readonly reason: string;
}

/** `?token=` as it always was: any text is an ingest token to compare, an empty one malformed. */
function legacyToken(upgrade: Upgrade): PresentedCredential {
  const token = upgrade.query.get('token');
  if (token === null) return 'absent';
  return token === '' ? 'malformed' : { kind: 'opaque', text: token };
}

export function presentedOf(upgrade: Upgrade): Presented {
  const header = parseAuthorization(upgrade.authorization);
  const accessToken = upgrade.query.get('access_token');
  if (header !== 'absent' && accessToken !== null && (typeof header === 'string' || header.text !== accessToken)) {
    return { kind: 'conflict' };
  }
  const credential = header !== 'absent' ? header : accessToken !== null ? classifyCredential(accessToken) : legacyToken(upgrade);
  if (credential === 'absent') return { kind: 'none' };
  if (credential === 'malformed') return { kind: 'malformed' };
  if (credential.kind === 'opaque') return { kind: 'ingest-token', token: credential.text };
  return { kind: 'bearer', credential };
}

/** On the legacy path, an ingest token (or a malformed credential) makes a producer's socket; a key, a token or nothing, a viewer's. */
export function legacyKind(presented: Presented): SocketKind {
  return presented.kind === 'ingest-token' || presented.kind === 'malformed' ? 'ingest' : 'live';
}

/** Whose sockets a socket counts among, and how many they may hold. */
export interface SocketHolder {
  /** The registry's name for it (socket-registry.ts): a key or subject (Principal.limitedAs), else the client IP. */
  readonly id: string;
  readonly cap: number;
  /** How a refusal names it. */
  readonly per: 'client' | 'key' | 'subject';
}

export function holderOf(
  principal: Principal,
  ip: string,
  caps: Pick<Config['http'], 'maxSocketsPerIp' | 'maxSocketsPerKey'>,
): SocketHolder {
  const identity = principal.limitedAs;
  if (identity === null) return { id: ip, cap: caps.maxSocketsPerIp, per: 'client' };
  const cap = principal.limits.maxSockets ?? caps.maxSocketsPerKey;
  return { id: identity, cap, per: principal.kind === 'oidc' ? 'subject' : 'key' };
}

export function refusalOf(code: RefusalCode): Refusal {
  return { close: refusalStatus(code) === 403 ? 'forbidden' : 'invalid_token', reason: code };
}

const scopeOf = { ingest: 'sessions:write', live: 'sessions:read' } as const;

/** Before the lookup: the credential checked, and what needs no session refused. */
export async function beforeLookup(
  mode: AuthMode,
  authenticator: Pick<Authenticator, 'authenticate'>,
  presented: Presented,
  kind: SocketKind,
  ip: string,
): Promise<Verdict> {
  const anonymous = { ok: true, principal: Principal.anonymous, ingestToken: null } as const;
  switch (presented.kind) {
    case 'conflict':
      return { ok: false, code: 'invalid_credential' };
    case 'bearer': {
      const outcome = await authenticator.authenticate(presented.credential, { ip });
      if (!outcome.ok) return outcome;
      return outcome.principal.can(scopeOf[kind])
        ? { ok: true, principal: outcome.principal, ingestToken: null }
        : { ok: false, code: 'insufficient_scope' };
    }
    case 'ingest-token':
      if (kind === 'ingest') return { ok: true, principal: Principal.anonymous, ingestToken: presented.token };
      // A viewer never needed a credential in open mode, and ignored one; in private mode an ingest token reads nothing.
      return mode === 'private' ? { ok: false, code: 'insufficient_scope' } : anonymous;
    case 'malformed':
      // In open mode the ingest route refuses it with 4401, as it always did; a viewer ignores it.
      return mode === 'private' ? { ok: false, code: 'invalid_credential' } : anonymous;
    case 'none':
      return mode === 'private' ? { ok: false, code: 'missing_credential' } : anonymous;
  }
}

/** Once the session is found: a key's or token's reach (its prefix); null when the socket may open. */
export function onSession(mode: AuthMode, verdict: Verdict & { ok: true }, kind: SocketKind, session: SessionRef): Refusal | null {
  // An ingest token, or none on an ingest socket: the ingest route decides.
  if (kind === 'ingest' && verdict.principal.kind === 'anonymous') return null;
  const decision = judge(mode, verdict.principal, { scope: scopeOf[kind], session });
  return decision.ok ? null : refusalOf(decision.code);
}
