/**
 * Values in upstream bodies, read strictly and the same way for every kind: a number only when
 * it is written as a decimal, so that an upstream's "n/a", hex or "Infinity" is never stored as
 * a number (docs/connectors.md).
 */

// A decimal number as a person or a device writes it; not hex, not Infinity, not "1_000".
const numberPattern = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value: a number, null (absent, null, blank), or `invalid`. */
export function parseValue(value: unknown): number | null | 'invalid' {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : 'invalid';
  if (typeof value !== 'string') return 'invalid';
  if (value.trim() === '') return null;
  if (!numberPattern.test(value)) return 'invalid';
  const number = Number(value);
  return Number.isFinite(number) ? number : 'invalid';
}
