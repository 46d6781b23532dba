/**
 * The body of ThingSpeak's `GET /channels/{id}/feeds.json`, read strictly: it comes from
 * outside, so anything but the documented shape is a defined error, never a crash, and a value
 * is a number only when it is written as one.
 *
 * The shape: `{"channel": {"id", "created_at", "field1".."field8": name}, "feeds": [{"created_at",
 * "entry_id", "field1".."field8": value}]}`, values being strings, null or absent. ThingSpeak
 * answers `-1` (a refused read key) or `0` (a failed read) as the whole body, and its proxies
 * answer HTML error pages: errors too. An entry without a usable entry_id or created_at cannot
 * be placed in the stream and is skipped (counted); a value that is not a number is stored as
 * null (counted).
 */
import type { Discards, FieldMapping } from './connector-kind.ts';
import { isObject, parseValue } from './upstream-values.ts';

export const fieldNames = ['field1', 'field2', 'field3', 'field4', 'field5', 'field6', 'field7', 'field8'] as const;

export interface FeedEntry {
  readonly entryId: number;
  /** created_at in epoch ms. */
  readonly t: number;
  /** field1..field8, in that order: null where absent, null or not a number. */
  readonly values: readonly (number | null)[];
}

export interface Feed {
  /** Names of field1..field8, null for a field the channel does not use. */
  readonly fields: readonly (string | null)[];
  /** The channel's created_at in epoch ms, null when absent or unreadable. */
  readonly createdAtMs: number | null;
  /** In the order the body lists them (not necessarily by entry_id). */
  readonly entries: readonly FeedEntry[];
  readonly discards: Discards;
}

export type FeedParse = { ok: true; feed: Feed } | { ok: false; message: string };

// ThingSpeak writes ISO 8601 with seconds and a zone (Z, or an offset with timezone=).
const timestampPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms of a ThingSpeak timestamp, or null. */
export function parseTimestamp(value: unknown): number | null {
  if (typeof value !== 'string' || !timestampPattern.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function describeBody(text: string): string | null {
  const trimmed = text.trim();
  if (trimmed === '-1') return 'ThingSpeak refused the read (-1): a wrong or missing read API key, or a private channel';
  if (trimmed === '0') return 'ThingSpeak answered 0: the read failed upstream';
  if (trimmed.startsWith('<')) return 'the answer is an HTML page, not the channel feed';
  if (trimmed === '') return 'the answer is empty';
  return null;
}

export function parseFeed(text: string): FeedParse {
  const refused = describeBody(text);
  if (refused !== null) return { ok: false, message: refused };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, message: 'the answer is not JSON' };
  }
  if (!isObject(body)) return { ok: false, message: 'the answer is not a JSON object' };
  const { channel, feeds } = body;
  if (!isObject(channel)) return { ok: false, message: 'the answer has no channel object' };
  if (!Array.isArray(feeds)) return { ok: false, message: 'the answer has no feeds array' };
  const fields = fieldNames.map((name) => {
    const label = channel[name];
    return typeof label === 'string' && label.trim() !== '' ? label : null;
  });
  let invalidValues = 0;
  let invalidRecords = 0;
  const entries: FeedEntry[] = [];
  for (const item of feeds) {
    const entryId = isObject(item) ? item.entry_id : undefined;
    const t = isObject(item) ? parseTimestamp(item.created_at) : null;
    if (!isObject(item) || typeof entryId !== 'number' || !Number.isSafeInteger(entryId) || entryId < 0 || t === null) {
      invalidRecords++;
      continue;
    }
    const values = fieldNames.map((name) => {
      const value = parseValue(item[name]);
      if (value !== 'invalid') return value;
      invalidValues++;
      return null;
    });
    entries.push({ entryId, t, values });
  }
  return {
    ok: true,
    feed: { fields, createdAtMs: parseTimestamp(channel.created_at), entries, discards: { invalidValues, invalidRecords } },
  };
}

const reservedChannels = new Set(['seq', 't']);
/** A field's own name is kept for it, so that no other field's name can take it first. */
const fieldPattern = /^field[1-8]$/;

/**
 * The channels of a channel's named fields: each name with every run of characters outside
 * `A-Z a-z 0-9 _ . -` made one `_`, trimmed of `_`, cut to 64; a name that comes out empty,
 * reserved (`seq`, `t`, `field1`..`field8`) or taken
 * already is the field's own (`field3`). Null when no field is named.
 */
export function channelMapping(fields: readonly (string | null)[]): FieldMapping[] | null {
  const mapping: FieldMapping[] = [];
  const taken = new Set<string>();
  fields.forEach((name, i) => {
    if (name === null) return;
    const field = fieldNames[i];
    const cleaned = name
      .replace(/[^A-Za-z0-9_.-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 64);
    const own = cleaned === '' || reservedChannels.has(cleaned) || taken.has(cleaned) || fieldPattern.test(cleaned);
    const channel = own ? field : cleaned;
    taken.add(channel);
    mapping.push({ channel, field, name });
  });
  return mapping.length > 0 ? mapping : null;
}
