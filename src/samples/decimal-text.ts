/**
 * Query values read as numbers written in decimal, the only forms the read routes take (/data,
 * the live socket, /aggregate). Number(), which Ajv's coercion and a plain parse use, also
 * takes ' ' (as 0), '0x10', '1e3' as an integer, 'Infinity' and '1e999' (as Infinity), and
 * rounds '9007199254740990.5': a typo would quietly read another range, or all of it.
 */

/** Whether `text` is an integer written in decimal digits (a seq, a limit, a bucket width). */
export function isDecimalInteger(text: string): boolean {
  return /^[0-9]+$/.test(text);
}

/**
 * `text` as a finite number written in decimal: digits with an optional sign, fraction and
 * exponent (`1732345678901.25`, `-5`, `1.7e12`); null for anything else.
 */
export function decimalNumber(text: string): number | null {
  if (!/^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
