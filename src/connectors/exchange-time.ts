/**
 * Wall-clock times of an exchange, as Twelve Data writes its bars' datetimes, turned into
 * instants with Intl, DST included. A zone's offset is read around the time rather than
 * assumed, so a bar on the morning after a clock change is placed by that day's offset.
 *
 * An hour that occurs twice (clocks going back) is read as its first occurrence; an hour that
 * does not occur (clocks going forward) with the offset in force before the change. Neither
 * happens while markets trade; docs/connectors.md says so.
 */

// `YYYY-MM-DD` (a daily bar) or `YYYY-MM-DD HH:MM:SS`.
const datetimePattern = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2}))?$/;
const dayMs = 86_400_000;

/** Formatters of valid zones only: Intl knows a fixed set of names, so this stays small whatever an upstream sends. */
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's formatter, or null when Intl knows no such zone. */
function formatter(zone: string): Intl.DateTimeFormat | null {
  const known = formatters.get(zone);
  if (known !== undefined) return known;
  try {
    const created = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, created);
    return created;
  } catch {
    return null;
  }
}

export function isTimeZone(zone: string): boolean {
  return formatter(zone) !== null;
}

/** The wall time in the zone at `ms`, as epoch ms read as if it were UTC. */
function wallTime(format: Intl.DateTimeFormat, ms: number): number {
  const part: Record<string, number> = {};
  for (const { type, value } of format.formatToParts(new Date(ms))) part[type] = Number(value);
  return Date.UTC(part.year, part.month - 1, part.day, part.hour, part.minute, part.second);
}

/** A datetime's wall time as epoch ms read as UTC, or null when it is not a real date and time. */
export function parseWallTime(text: string): number | null {
  const match = datetimePattern.exec(text);
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part ?? 0));
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const back = new Date(ms);
  // Date.UTC rolls 2024-02-30 over into March: a datetime that does not round-trip is not one.
  const real =
    back.getUTCFullYear() === year &&
    back.getUTCMonth() === month - 1 &&
    back.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60;
  return real ? ms : null;
}

/** The instant (epoch ms) of a wall time in `zone`; null when the zone is unknown. */
export function instantOf(wallMs: number, zone: string): number | null {
  const format = formatter(zone);
  if (format === null) return null;
  // The offsets a day either side: at most one change lies between them.
  const before = wallMs - (wallTime(format, wallMs - dayMs) - (wallMs - dayMs));
  const after = wallMs - (wallTime(format, wallMs + dayMs) - (wallMs + dayMs));
  const fits = [before, after].filter((candidate) => wallTime(format, candidate) === wallMs);
  return fits.length > 0 ? Math.min(...fits) : before;
}

/** The instant of an exchange datetime, or null when the text is not a datetime or the zone is unknown. */
export function exchangeInstant(text: string, zone: string): number | null {
  const wallMs = parseWallTime(text);
  return wallMs === null ? null : instantOf(wallMs, zone);
}
