/**
 * Listing sessions (GET /api/v1/sessions): the filter a caller asks for, narrowed to what
 * its credential reaches, and the opaque cursor that carries a page's position. Newest
 * first, by (createdAt, id): a session created while a client pages is newer than its cursor
 * and not on its later pages, so no page repeats or skips a session that existed when paging
 * began. (One exception: createdAt is its transaction's start, so an insert that commits
 * late may land behind a cursor that has already passed its time.)
 */
import { uuidPattern } from '../contract/schemas.ts';
import type { ListPosition, SessionFilter } from '../storage/session-list-query.ts';

export type { ListPosition, SessionFilter };

/**
 * The filter as a credential limited to `reach` (a key prefix; null for none) may run it, or
 * null when nothing it asks for is within reach. The narrower of two nested prefixes is the
 * one that applies; a prefixed credential never lists keyless sessions.
 */
export function withinReach(filter: SessionFilter, reach: string | null): SessionFilter | null {
  if (reach === null) return filter;
  if (filter.key !== undefined && !filter.key.startsWith(reach)) return null;
  const asked = filter.keyPrefix ?? '';
  if (asked.startsWith(reach)) return { ...filter, keyPrefix: asked };
  return reach.startsWith(asked) ? { ...filter, keyPrefix: reach } : null;
}

const cursorTag = 'sessions';
const positionPattern = /^sessions:(0|[1-9][0-9]{0,18}):(.+)$/;
/** Microseconds of year 10000, past any timestamptz a session can hold. */
const maxCreatedUs = 253_402_300_800_000_000n;

/** Opaque to clients: wrapped so that it is not taken for something to build or edit. */
export function encodeCursor(position: ListPosition): string {
  return Buffer.from(`${cursorTag}:${position.createdUs}:${position.id}`, 'latin1').toString('base64url');
}

/** The position a cursor carries, or null for anything this server did not give. */
export function decodeCursor(cursor: string): ListPosition | null {
  if (cursor.length > 120 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const match = positionPattern.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (match === null) return null;
  const createdUs = BigInt(match[1]);
  // The id as PostgreSQL writes a uuid: an edited cursor is at most another position, never a malformed one.
  return createdUs < maxCreatedUs && uuidPattern.test(match[2]) ? { createdUs, id: match[2].toLowerCase() } : null;
}
