/**
 * A read's answer as the cache keeps it: its media type, the headers that go with it, and its
 * body bytes; and the form it takes in Redis, which another instance (or anyone who can write
 * to that Redis) wrote: decoding checks every field and answers null for anything else, which
 * the cache takes for a miss.
 *
 * Encoded: a 4-byte big-endian length, that many bytes of JSON `{type, headers}`, then the body.
 */

export interface CachedBody {
  /** Content-Type. */
  readonly type: string;
  /** Headers beside it that a repeat must carry too (Wavehouse-Next-From-Seq), lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** What an entry holds beyond its body, for the byte bound: its strings and the objects around them, roughly. */
export const entryOverheadBytes = 256;

export function cachedSize(entry: CachedBody): number {
  return entry.body.length + entryOverheadBytes;
}

/**
 * A copy of `pieces` in memory of its own, so that a small body kept for minutes does not hold
 * the larger buffer it was cut from (a 1 MiB export piece, or an 8 KiB slab of Node's pool).
 */
export function ownedCopy(pieces: readonly Buffer[], size: number): Buffer {
  const copy = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const piece of pieces) at += piece.copy(copy, at);
  return copy;
}

export function encodeCachedBody(entry: CachedBody): Buffer {
  const meta = Buffer.from(JSON.stringify({ type: entry.type, headers: entry.headers }));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(meta.length);
  return Buffer.concat([length, meta, entry.body]);
}

/** Header names and values a reply can carry: what the server's own entries hold. */
const headerName = /^[a-z0-9-]{1,64}$/;
const headerValue = /^[\x20-\x7e]{0,1024}$/;

export function decodeCachedBody(encoded: Buffer): CachedBody | null {
  if (encoded.length < 4) return null;
  const metaEnd = 4 + encoded.readUInt32BE(0);
  if (metaEnd > encoded.length) return null;
  let meta: unknown;
  try {
    meta = JSON.parse(encoded.toString('utf8', 4, metaEnd));
  } catch {
    return null;
  }
  if (meta === null || typeof meta !== 'object') return null;
  const { type, headers } = meta as { type?: unknown; headers?: unknown };
  if (typeof type !== 'string' || !headerValue.test(type) || type === '') return null;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return null;
  const entries = Object.entries(headers);
  if (
    entries.length > 8 ||
    !entries.every(([name, value]) => headerName.test(name) && typeof value === 'string' && headerValue.test(value))
  )
    return null;
  return { type, headers: Object.fromEntries(entries), body: ownedCopy([encoded.subarray(metaEnd)], encoded.length - metaEnd) };
}
