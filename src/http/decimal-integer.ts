/**
 * Whether a query value is an integer written in decimal digits, the only form /data and the
 * live socket take for a seq or a limit. Number(), which Ajv's coercion and a plain parse
 * use, also takes ' ' (as 0), '0x10', '1e3' and '5.0', and rounds '9007199254740990.5': a
 * typo would quietly read another range.
 */
export function isDecimalInteger(text: string): boolean {
  return /^[0-9]+$/.test(text);
}
