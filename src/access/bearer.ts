/**
 * What a request's credential is, before anything is looked up: an API key (`wh_...`), a JWT
 * (three base64url parts: an access token of ours or an identity provider's), or an opaque
 * token (a session's ingest token, which only its session can check). Sent as
 * `Authorization: Bearer <it>`; sockets may send it as `?access_token=` instead, since a
 * browser cannot set a socket's headers.
 *
 * Pure and total: any string classifies or is refused, nothing throws (the property tests).
 */
import { apiKeyPrefix, isApiKey } from './key-format.ts';

export type Credential =
  | { readonly kind: 'api-key'; readonly text: string }
  | { readonly kind: 'jwt'; readonly text: string }
  | { readonly kind: 'opaque'; readonly text: string };

export type PresentedCredential = Credential | 'absent' | 'malformed';

/**
 * Longer than any credential of ours or a provider's access token with a generous claim set;
 * what is longer is refused before it is hashed or parsed.
 */
export const maxCredentialLength = 8192;

/** RFC 6750's b64token: the characters a bearer token may hold, `=` padding only at the end. */
const b64tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;
/** A JWS in compact form: three base64url parts, the signature possibly empty (`alg: none`, refused later). */
const jwtPattern = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The kind of a credential's text, or malformed when it cannot be one of ours. */
export function classifyCredential(text: string): Credential | 'malformed' {
  if (text.length === 0 || text.length > maxCredentialLength || !b64tokenPattern.test(text)) return 'malformed';
  if (text.startsWith(apiKeyPrefix)) return isApiKey(text) ? { kind: 'api-key', text } : 'malformed';
  if (jwtPattern.test(text)) return { kind: 'jwt', text };
  return { kind: 'opaque', text };
}

/** The text an Authorization header carries after `Bearer`, not yet classified. */
export type BearerText = { readonly text: string } | 'absent' | 'malformed';

/**
 * The one parser of Authorization headers: `Bearer`, in any case, spaces or tabs (RFC 9110's
 * whitespace), one token. One that is present but not a bearer credential (`Basic ...`, an empty
 * `Bearer`, `Bearer a b`) is malformed and refused, never taken for none: a client that sent a
 * credential must not be served as anonymous, nor pass where no credential is needed.
 * METRICS_TOKEN is compared to this text; everything else classifies it (parseAuthorization).
 */
export function bearerText(header: string | undefined): BearerText {
  if (header === undefined) return 'absent';
  if (header.length > maxCredentialLength + 16) return 'malformed';
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? { text: match[1] } : 'malformed';
}

/** The credential of an Authorization header. */
export function parseAuthorization(header: string | undefined): PresentedCredential {
  const bearer = bearerText(header);
  return typeof bearer === 'string' ? bearer : classifyCredential(bearer.text);
}

/**
 * A socket's credential: the Authorization header when there is one, else `?access_token=`.
 * An empty query value is malformed, like an empty header.
 */
export function socketCredential(header: string | undefined, accessToken: string | null): PresentedCredential {
  if (header !== undefined) return parseAuthorization(header);
  if (accessToken === null) return 'absent';
  return classifyCredential(accessToken);
}
