/**
 * The `thingspeak` kind: one channel, one stream keyed `thingspeak/<channelId>`, `seq` =
 * entry_id, `t` = created_at (epoch ms), a nullable channel per named field.
 *
 * Reading from the cursor: `feeds.json?start=` the second of the stream's highest stored t
 * (`start` is inclusive and whole seconds, so the last stored entries come again, and are
 * dropped as duplicates). ThingSpeak answers the newest `results` entries (at most 8,000) of
 * the window, so a full page whose oldest entry is not the one after the cursor has left out
 * the ones between: the window is then closed with `end=` half way to that entry, and halved
 * again while it stays full, and the rest is read by the next pages (`more`). Entries are put
 * in entry_id order and each is taken once, whatever order and repetition the body has.
 *
 * An entry written later with a created_at older than the stream's highest t (bulk updates
 * can backdate) falls before the window and is not read: docs/connectors.md says so.
 */
import type { ThingSpeakConfig } from '../contract/connector-schemas.ts';
import type { ConnectorKind, PollOutcome, StreamSpec, UpstreamRecord } from './connector-kind.ts';
import { channelMapping, type FeedEntry, fieldNames, parseFeed } from './thingspeak-feed.ts';
import { UpstreamError } from './upstream-error.ts';

/** ThingSpeak's cap on results per request. */
const maxPageSize = 8_000;
/** Halvings of a window before the page is taken as it is: 2^40 ms is 35 years. */
const maxNarrowings = 40;

/** `YYYY-MM-DD HH:NN:SS` in UTC, ThingSpeak's start/end format, floored to the second. */
export function thingSpeakTime(ms: number): string {
  return new Date(Math.floor(ms / 1_000) * 1_000).toISOString().slice(0, 19).replace('T', ' ');
}

function feedUrl(config: ThingSpeakConfig, startMs: number | null, endMs: number | null): URL {
  const query = [`results=${config.pageSize ?? maxPageSize}`, 'timezone=Etc%2FUTC'];
  if (config.readApiKey !== undefined) query.push(`api_key=${encodeURIComponent(config.readApiKey)}`);
  if (startMs !== null) query.push(`start=${encodeURIComponent(thingSpeakTime(startMs))}`);
  if (endMs !== null) query.push(`end=${encodeURIComponent(thingSpeakTime(endMs))}`);
  return new URL(`${config.baseUrl.replace(/\/+$/, '')}/channels/${config.channelId}/feeds.json?${query.join('&')}`);
}

/** The entries above `lastSeq`, by entry_id, each once. */
function newEntries(entries: readonly FeedEntry[], lastSeq: number): FeedEntry[] {
  const fresh = entries.filter((entry) => entry.entryId > lastSeq).sort((a, b) => a.entryId - b.entryId);
  return fresh.filter((entry, i) => i === 0 || entry.entryId !== fresh[i - 1].entryId);
}

export const thingSpeak: ConnectorKind<ThingSpeakConfig, 'thingspeak'> = {
  kind: 'thingspeak',
  secretKeys: ['readApiKey'],
  streamKeys: (config) => [`thingspeak/${config.channelId}`],
  baseUrl: (config) => config.baseUrl,

  async poll(config, streamKey, cursor, { fetch }): Promise<PollOutcome> {
    const pageSize = config.pageSize ?? maxPageSize;
    const lastSeq = cursor.lastSeq ?? 0;
    let startMs = cursor.lastT;
    let endMs: number | null = null;
    /** The oldest t of the last full page: entries after the cursor are known to exist before it. */
    let upperMs = Number.POSITIVE_INFINITY;
    for (let narrowings = 0; ; narrowings++) {
      const parsed = parseFeed(await fetch(feedUrl(config, startMs, endMs)));
      if (!parsed.ok) throw new UpstreamError(parsed.message, false);
      const { feed } = parsed;
      const mapping = channelMapping(feed.fields);
      if (mapping === null) throw new UpstreamError(`channel ${config.channelId} names none of field1..field8`, false);
      const entries = newEntries(feed.entries, lastSeq);
      const full = feed.entries.length + feed.discards.invalidRecords >= pageSize;
      const skipped = full && entries.length > 0 && entries[0].entryId > lastSeq + 1;
      // A window that held nothing new, after a full page showed there is: the entries are after it.
      const emptyWindow: boolean = endMs !== null && !full && entries.length === 0;
      if ((skipped || emptyWindow) && narrowings < maxNarrowings) {
        const lowerMs: number = emptyWindow && endMs !== null ? endMs : (startMs ?? feed.createdAtMs ?? 0);
        if (skipped) upperMs = Math.min(...feed.entries.map((entry) => entry.t));
        if (upperMs - lowerMs >= 2_000) {
          startMs = lowerMs;
          endMs = lowerMs + (upperMs - lowerMs) / 2;
          continue;
        }
      }
      const spec: StreamSpec = { key: streamKey, channels: mapping.map((m) => m.channel), mapping };
      const fieldIndexes = mapping.map((m) => fieldNames.indexOf(m.field as (typeof fieldNames)[number]));
      const records: UpstreamRecord[] = entries.map((entry) => ({
        seq: entry.entryId,
        t: entry.t,
        values: fieldIndexes.map((i) => entry.values[i]),
      }));
      return { spec, records, discards: feed.discards, more: endMs !== null };
    }
  },
};
