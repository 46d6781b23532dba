/**
 * The body of Twelve Data's `GET /time_series`, read strictly: it comes from outside, so
 * anything but the documented shape is a defined error, never a crash, and a value is a number
 * only when it is written as one (upstream-values.ts).
 *
 * The shape: `{"meta": {"exchange_timezone", ...}, "values": [{"datetime", "open", "high", "low",
 * "close", "volume"}], "status": "ok"}`, values newest first, as strings, datetimes the wall
 * time of the exchange (exchange-time.ts). Twelve Data answers errors with HTTP 200 as well:
 * `{"code": 429, "message": ..., "status": "error"}` is an error, whatever the HTTP status.
 * A bar without a datetime that is a real time is skipped (counted); a value that is not a
 * number is null (counted).
 */
import type { Discards } from './connector-kind.ts';
import { exchangeInstant, isTimeZone } from './exchange-time.ts';
import { isObject, parseValue } from './upstream-values.ts';

/** The channels of a bar, in this order. */
export const barFields = ['open', 'high', 'low', 'close', 'volume'] as const;

export interface Bar {
  /** The bar's start in epoch seconds. */
  readonly start: number;
  readonly values: readonly (number | null)[];
}

export interface Series {
  readonly zone: string;
  /** In the order the body lists them. */
  readonly bars: readonly Bar[];
  readonly discards: Discards;
}

export type SeriesParse = { ok: true; series: Series } | { ok: false; message: string; code: number | null };

/** Longest part of an upstream's own error message kept in a status. */
const maxMessageChars = 200;

/** An upstream's message as a status may hold it: printable, bounded, and without `secret` should the upstream echo it. */
export function upstreamMessage(message: unknown, secret: string): string {
  if (typeof message !== 'string') return 'no message';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes.
  const printable = message.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return (secret === '' ? printable : printable.split(secret).join('[redacted]')).slice(0, maxMessageChars);
}

function errorOf(body: Record<string, unknown>, secret: string): SeriesParse {
  const code = typeof body.code === 'number' && Number.isSafeInteger(body.code) ? body.code : null;
  return { ok: false, code, message: `Twelve Data answered ${code ?? 'an error'}: ${upstreamMessage(body.message, secret)}` };
}

/** Reads a time_series body; `secret` (the API key) is cut from any upstream message kept. */
export function parseSeries(text: string, secret: string): SeriesParse {
  const trimmed = text.trim();
  if (trimmed.startsWith('<')) return { ok: false, code: null, message: 'the answer is an HTML page, not a time series' };
  let body: unknown;
  try {
    body = JSON.parse(trimmed);
  } catch {
    return { ok: false, code: null, message: 'the answer is not JSON' };
  }
  if (!isObject(body)) return { ok: false, code: null, message: 'the answer is not a JSON object' };
  if (body.status === 'error') return errorOf(body, secret);
  if (body.status !== 'ok') return { ok: false, code: null, message: 'the answer has no status "ok"' };
  const { meta, values } = body;
  const zone = isObject(meta) ? meta.exchange_timezone : undefined;
  if (typeof zone !== 'string' || !isTimeZone(zone))
    return { ok: false, code: null, message: 'the answer names no known exchange_timezone' };
  if (!Array.isArray(values)) return { ok: false, code: null, message: 'the answer has no values array' };
  let invalidValues = 0;
  let invalidRecords = 0;
  const bars: Bar[] = [];
  for (const item of values) {
    const ms = isObject(item) && typeof item.datetime === 'string' ? exchangeInstant(item.datetime, zone) : null;
    if (!isObject(item) || ms === null || ms < 0) {
      invalidRecords++;
      continue;
    }
    const parsed = barFields.map((name) => {
      const value = parseValue(item[name]);
      if (value !== 'invalid') return value;
      invalidValues++;
      return null;
    });
    bars.push({ start: ms / 1_000, values: parsed });
  }
  return { ok: true, series: { zone, bars, discards: { invalidValues, invalidRecords } } };
}
