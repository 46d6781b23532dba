/**
 * Entity tags (RFC 9110, section 8.8.3) for cached reads, and the If-None-Match header that
 * sends them back (section 13.1.2), which is untrusted input.
 *
 * A tag is a digest of what determines a body (the route, the query, the session's version):
 * equal inputs give byte-equal bodies, so the tag is strong; a read whose bodies are only
 * equivalent (an aggregate) makes it weak (read-cache.ts). If-None-Match compares weakly
 * (section 8.8.3.2): `W/"x"` matches `"x"`. A header that does not follow the grammar is
 * ignored, as if absent: the answer is then the full 200, which is never wrong, where guessing
 * at a garbled header could be.
 */
import { createHash } from 'node:crypto';

/** 22 base64url characters of SHA-256: 132 bits, beyond any collision among a server's tags. */
const tagDigestChars = 22;

/** The strong entity tag, quotes included, of a body that `parts` determine. */
export function entityTag(parts: readonly string[]): string {
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
  return `"${digest.slice(0, tagDigestChars)}"`;
}

/** etagc: %x21 / %x23-7E / obs-text (Node hands header bytes over as latin1 characters). */
function isTagChar(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

const isOws = (code: number) => code === 0x20 || code === 0x09;

/**
 * The opaque tags (quotes included, `W/` dropped) that an If-None-Match value lists, `*` for
 * any, or null when the value is not `"*" / #entity-tag` (empty list members are allowed, as
 * the list rule of section 5.6.1 says a recipient must accept).
 */
export function parseIfNoneMatch(value: string): string[] | '*' | null {
  // Not String.trim(): it also takes U+00A0 and the rest of Unicode's spaces, which the
  // grammar's OWS (SP, HTAB) does not allow, and Node hands a 0xA0 byte over as U+00A0.
  if (/^[ \t]*\*[ \t]*$/.test(value)) return '*';
  const tags: string[] = [];
  let at = 0;
  const skipOws = () => {
    while (at < value.length && isOws(value.charCodeAt(at))) at++;
  };
  for (;;) {
    skipOws();
    if (at === value.length) return tags;
    if (value[at] === ',') {
      at++;
      continue;
    }
    if (value.startsWith('W/', at)) at += 2;
    if (value[at] !== '"') return null;
    const start = at++;
    while (at < value.length && isTagChar(value.charCodeAt(at))) at++;
    if (value[at] !== '"') return null;
    tags.push(value.slice(start, ++at));
    skipOws();
    if (at < value.length && value[at] !== ',') return null;
  }
}

/** Whether an If-None-Match value names `tag` (or `*`): the read is then answered 304. */
export function ifNoneMatchHits(value: string | undefined, tag: string): boolean {
  if (value === undefined) return false;
  const tags = parseIfNoneMatch(value);
  return tags === '*' || tags?.includes(tag) === true;
}
