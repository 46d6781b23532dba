/**
 * The one authorization step of REST. A route declares what it needs in its config
 * (`config: { access: { scope, on } }`); routes that declare nothing (/health, /ready,
 * /metrics, the pages) are not looked at. Before the body is read, the step turns the
 * Authorization header into a Principal (access/authenticator.ts) and refuses what can be
 * refused without the session; a route on one session calls authorizeSession once it has
 * loaded it, so the prefix of a key is checked against the session's key.
 *
 * A request that presents an API key or an access token is judged by it alone, in either
 * mode. An opaque bearer is a session's ingest token: only the routes that take one (`end`,
 * the session's record) check it; elsewhere it is ignored in open mode, as it always was, and insufficient in
 * private mode. A malformed header is refused in private mode; in open mode only `end`,
 * which always refused it, does.
 *
 * Its refusals count against the rate limit of whoever sent them, and a client whose
 * credentials were refused too often has its next ones refused before they are looked up
 * (rate-limits.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { Access } from '../access/access-service.ts';
import type { AuditContext } from '../access/audit-trail.ts';
import { parseAuthorization } from '../access/bearer.ts';
import { IdentityProviderUnavailableError } from '../access/oidc-verifier.ts';
import { type AuthMode, authorize, type Decision, type Need } from '../access/policy.ts';
import { Principal, type SessionRef } from '../access/principal.ts';
import type { Scope } from '../access/scopes.ts';
import type { Config } from '../config.ts';
import { Problem } from '../contract/errors.ts';
import { refusalsOf } from './rate-limits.ts';
import type { HttpServer } from './server.ts';

export interface RouteAccess {
  /** null: any credential this server accepts (exchanging a key for tokens), but one. */
  readonly scope: Scope | null;
  /** What it acts on: the collection (create, keys, audit), or one session, which the route loads. */
  readonly on: 'collection' | 'session';
  /** Whether a session's ingest token is a credential here (`end`, and reading the session's own record). */
  readonly ingestToken?: true;
}

/** What the step found in a request. */
export interface RequestAccess {
  principal: Principal;
  /** An opaque bearer, for a route that takes an ingest token; null when none was sent. */
  readonly ingestToken: string | null;
  /** An Authorization header was sent that is no bearer credential (open mode only; private mode refuses it). */
  readonly malformed: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    access: RequestAccess;
  }
}

const anonymousAccess: RequestAccess = Object.freeze({ principal: Principal.anonymous, ingestToken: null, malformed: false });

/**
 * The policy's decision, a presented credential judged by itself: open mode's capabilities
 * are for callers who present none, so a reader's key creates nothing in either mode.
 */
export function judge(mode: AuthMode, principal: Principal, need: Need): Decision {
  return authorize(principal.kind === 'anonymous' ? mode : 'private', principal, need);
}

export function refuse(decision: Decision): void {
  if (!decision.ok) throw new Problem(decision.code);
}

/** Who acted, for the audit trail. */
export function auditContext(request: FastifyRequest): AuditContext {
  return { actor: request.access.principal.actor, ip: request.ip, requestId: request.id };
}

/** The session-bound half of the step, once the route has loaded the session. */
export function authorizeSession(config: Config, request: FastifyRequest, scope: Scope, session: SessionRef): void {
  refuse(judge(config.access.mode, request.access.principal, { scope, session }));
}

export function installAccessGuard(server: HttpServer, config: Config, access: () => Access): void {
  const { mode } = config.access;
  const refusals = refusalsOf(server, config);

  async function admit(request: FastifyRequest, route: RouteAccess): Promise<void> {
    const credential = parseAuthorization(request.headers.authorization);
    let principal = Principal.anonymous;
    let ingestToken: string | null = null;
    if (credential === 'malformed') {
      // In open mode it is no credential: the checks below apply to the caller as to one who sent none.
      if (mode === 'private') throw new Problem('invalid_credential', 'the Authorization header is not Bearer <credential>');
    } else if (credential !== 'absent' && credential.kind === 'opaque') {
      if (route.ingestToken) ingestToken = credential.text;
      else if (mode === 'private')
        throw new Problem('insufficient_scope', 'an ingest token only writes to, ends and reads the record of its own session');
    } else if (credential !== 'absent') {
      const limited = await refusals.beforeCredential(request);
      if (limited !== null) throw limited;
      const outcome = await access()
        .authenticator.authenticate(credential, { ip: request.ip })
        .catch((error: unknown) => {
          if (!(error instanceof IdentityProviderUnavailableError)) throw error;
          request.log.warn({ err: error }, 'the identity provider could not be reached');
          throw new Problem('service_unavailable', "the identity provider's keys could not be fetched; retry shortly", 5);
        });
      if (!outcome.ok) {
        await refusals.credentialRefused(request);
        throw new Problem(outcome.code);
      }
      principal = outcome.principal;
    }
    request.access = { principal, ingestToken, malformed: credential === 'malformed' };
    if (ingestToken !== null) return;
    if (route.scope === null) {
      if (principal.kind === 'anonymous') throw new Problem('missing_credential');
      return;
    }
    const need: Need = { scope: route.scope };
    if (route.on === 'collection') return refuse(judge(mode, principal, need));
    // What can be refused before the session is looked up, so that an id is not probed for.
    if (principal.kind === 'anonymous' && mode === 'private') throw new Problem('missing_credential');
    if (principal.kind !== 'anonymous' && !principal.can(route.scope)) throw new Problem('insufficient_scope');
  }

  server.decorateRequest('access', null as unknown as RequestAccess);
  server.addHook('onRequest', async (request) => {
    request.access = anonymousAccess;
    const route = request.routeOptions.config?.access;
    if (route === undefined) return;
    // A refusal never reaches the rate limit's own hook, so it is counted here (rate-limits.ts).
    await admit(request, route).catch(async (error: unknown) => {
      throw await refusals.charged(request, error);
    });
  });
}
