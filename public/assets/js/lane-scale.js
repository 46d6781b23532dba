/**
 * The value scale of one lane of the viewer: a range that follows the visible data, and the
 * numbers shown on it and beside it.
 *
 * Each channel gets its own range because channels differ by orders of magnitude: a
 * heartbeat in an accelerometer is about 0.05 m/s² riding on 9.8 m/s² of gravity, invisible
 * on an axis shared with a channel that swings by 2. The range is padded so the trace does
 * not touch the lane's edges, and kept while the data still fill most of it, so a live plot
 * does not rescale on every frame.
 */

/** Padding on each side, as a fraction of the data's span. */
const padFraction = 0.1;
/** A kept range must stay at least this full; past that the lane zooms in again. */
const minFill = 0.5;

/**
 * The range to show for data spanning `dataMin..dataMax` (NaN or ±Infinity when there are no
 * values), given the range shown now (null before the first).
 *
 * @returns {[number, number]}
 */
export function nextRange(current, dataMin, dataMax) {
  if (!Number.isFinite(dataMin) || !Number.isFinite(dataMax)) return current ?? [-1, 1];
  const span = dataMax - dataMin;
  if (current !== null && dataMin >= current[0] && dataMax <= current[1] && span >= minFill * (current[1] - current[0])) {
    return current;
  }
  // A flat line sits in the middle of a range 10% of its value wide (or ±1 around 0).
  const pad = span > 0 ? span * padFraction : Math.abs(dataMax) * 0.05 || 1;
  return [dataMin - pad, dataMax + pad];
}

/** The lowest and highest non-null value of `values` in [from, to). */
export function extent(values, from, to) {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = from; i < to; i += 1) {
    const value = values[i];
    // A null (no reading) would compare as 0; the NaN a column holds for it compares false.
    if (value === null) continue;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return [min, max];
}

/** Steps of the value axis, 1-2-5 from 1e-12 to 1e15. */
export const valueSteps = Array.from({ length: 28 }, (_, k) => 10 ** (k - 12)).flatMap((power) => [power, 2 * power, 5 * power]);

/** Labels of the value axis, with as many decimals as the step between them needs. */
export function valueLabels(values, step) {
  const magnitude = Math.max(...values.map(Math.abs));
  if (magnitude >= 1e7 || step < 1e-4) return values.map((value) => (value === 0 ? '0' : value.toExponential(2)));
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return values.map((value) => value.toFixed(decimals));
}

/** A reading as the lane's readout shows it: seven significant digits, `–` for a null (no reading). */
export function formatReading(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e9 || (magnitude > 0 && magnitude < 1e-4)) return value.toExponential(6);
  return String(Number(value.toPrecision(7)));
}
