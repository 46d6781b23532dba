/**
 * A query value read as a finite number written in decimal, the only form /data takes for
 * fromT and toT: digits with an optional sign, fraction and exponent (`1732345678901.25`,
 * `-5`, `1.7e12`); null for anything else. Number(), which Ajv's coercion and a plain parse
 * use, also takes ' ' (as 0), '0x10', 'Infinity' and '1e999' (as Infinity): a typo would
 * quietly read another range, or all of it.
 */
export function decimalNumber(text: string): number | null {
  if (!/^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
