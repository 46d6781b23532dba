/**
 * Whether a principal may do what a request asks, and the typed refusal when not. The edges
 * turn a refusal into problem+json (REST) or a close code (sockets) with its status below;
 * nothing here knows HTTP.
 *
 * Two modes. `open` (the default) keeps the capabilities of a service without accounts
 * (docs/architecture.md, principle 4): a session's id reads it, its ingest token writes to
 * and ends it, anyone may create a session; keys and tokens add to that, never take from it.
 * `private`: every call needs a key or a token with the scope it uses; an id alone reads
 * nothing; an ingest token still writes to and ends its own session (and reads its record:
 * routes/sessions.ts, which alone can check the token).
 */
import { type ProblemCode, problems } from '../contract/errors.ts';
import type { Principal, SessionRef } from './principal.ts';
import type { Scope } from './scopes.ts';

export type AuthMode = 'open' | 'private';

/**
 * Every refusal; its status and title are the catalogue's (contract/errors.ts): 401 for a
 * credential that is absent or not accepted (the client must get another), 403 for one that
 * is accepted but does not reach (asking again with it will not help). A credential is refused with as little as a client needs: an unknown
 * key and a wrong one, a bad signature and a wrong issuer are all `invalid_credential`.
 */
const refusalCodes = [
  'missing_credential',
  'invalid_credential',
  'credential_expired',
  'credential_revoked',
  'insufficient_scope',
  'outside_key_prefix',
] as const satisfies readonly ProblemCode[];

export type RefusalCode = (typeof refusalCodes)[number];

/** 401 or 403, from the one catalogue of codes (contract/errors.ts). */
export function refusalStatus(code: RefusalCode): 401 | 403 {
  return problems[code].status;
}

export type Decision = { readonly ok: true } | { readonly ok: false; readonly code: RefusalCode };

const allowed: Decision = Object.freeze({ ok: true });
const refused = Object.fromEntries(refusalCodes.map((code) => [code, Object.freeze({ ok: false, code })])) as Record<RefusalCode, Decision>;

/** What a call needs: a scope, and the session it acts on (absent for the collection: create, list). */
export interface Need {
  readonly scope: Scope;
  readonly session?: SessionRef;
}

/**
 * Open mode's capabilities, which need no credential: reading a session whose id one knows,
 * and creating a session (whose ingest token then writes to it).
 */
function openToAnyone(need: Need): boolean {
  return need.session === undefined ? need.scope === 'sessions:write' : need.scope === 'sessions:read';
}

export function authorize(mode: AuthMode, principal: Principal, need: Need): Decision {
  if (mode === 'open' && openToAnyone(need)) return allowed;
  if (principal.kind === 'anonymous') return refused.missing_credential;
  // An ingest token acts on its one session, never on the collection (it creates nothing).
  if (principal.kind === 'ingest' && need.session === undefined) return refused.insufficient_scope;
  if (!principal.can(need.scope)) return refused.insufficient_scope;
  if (need.session !== undefined && !principal.reaches(need.session)) {
    return principal.kind === 'ingest' ? refused.insufficient_scope : refused.outside_key_prefix;
  }
  return allowed;
}
