/**
 * Ticks of the viewer's time axis: the smallest step whose labels, measured in the axis's
 * font, fit side by side with a gap, and labels whose precision follows the step (a
 * millisecond step shows milliseconds, an hour step shows hours and minutes). uPlot's own
 * time axis picks its step from a fixed minimum spacing, whatever the labels' width, which
 * is how a whole recording came to be labelled `:56.000 :56.500 ...` edge to edge.
 *
 * Producer clocks above `epochThresholdMs` are epoch milliseconds and read as local clock
 * times, with the date under the first tick and under any tick where the day changes; other
 * clocks read as time since 0 (`12.5 s`, `1:02:30`).
 */

const second = 1_000;
const minute = 60 * second;
const hour = 60 * minute;
const day = 24 * hour;
/** Producer clocks above this are epoch milliseconds (after 1973). */
export const epochThresholdMs = 1e11;
/** Room between two labels, in CSS pixels. */
const labelGapPx = 18;

/** Steps in ms, ascending: 1-2-5 below a second, then the clock's own divisions. */
const steps = [
  ...[1e-3, 1e-2, 1e-1, 1, 10, 100].flatMap((power) => [power, 2 * power, 5 * power]),
  ...[1, 2, 5, 10, 15, 30].map((n) => n * second),
  ...[1, 2, 5, 10, 15, 30].map((n) => n * minute),
  ...[1, 2, 3, 6, 12].map((n) => n * hour),
  ...[1, 2, 7, 14, 28, 56, 112, 364, 728, 1820, 3640].map((n) => n * day),
];

const pad2 = (n) => String(n).padStart(2, '0');

/** Decimals of a second a step needs: 500 ms one, 10 ms two, 1 ms three. */
function secondDecimals(step) {
  return step >= second ? 0 : Math.max(0, Math.ceil(-Math.log10(step / second) - 1e-9));
}

/** The fraction of a second, as `.250`, for a step below a second. */
function fraction(ms, step) {
  const decimals = secondDecimals(step);
  if (decimals === 0) return '';
  const inSecond = ms - Math.floor(ms / second) * second;
  return (inSecond / second).toFixed(decimals).slice(1);
}

const localDate = (date) => `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`;

function clockLabel(value, step) {
  const date = new Date(value);
  if (step >= day) return localDate(date);
  const hoursMinutes = `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
  if (step >= minute) return hoursMinutes;
  return `${hoursMinutes}:${pad2(date.getSeconds())}${fraction(value, step)}`;
}

/** Time since 0: seconds while the axis stays under a minute, else h:mm:ss. */
function elapsedLabel(value, step, maxAbs) {
  const sign = value < 0 ? '-' : '';
  const ms = Math.abs(value);
  if (maxAbs < minute) return `${sign}${(ms / second).toFixed(secondDecimals(step))} s`;
  if (step >= day) return `${sign}${Math.round(ms / day)} d`;
  const hours = Math.floor(ms / hour);
  const minutes = Math.floor((ms % hour) / minute);
  const seconds = Math.floor((ms % minute) / second);
  if (maxAbs < hour) return `${sign}${minutes}:${pad2(seconds)}${fraction(ms, step)}`;
  if (step >= minute) return `${sign}${hours}:${pad2(minutes)}`;
  return `${sign}${hours}:${pad2(minutes)}:${pad2(seconds)}${fraction(ms, step)}`;
}

/** Ticks at whole multiples of `step`; steps of an hour or more fall on local hours and days. */
function tickValues(min, max, step, epoch) {
  const offset = epoch && step >= hour ? -new Date(min).getTimezoneOffset() * minute : 0;
  const values = [];
  for (let k = Math.ceil((min + offset) / step); k * step - offset <= max; k += 1) {
    // Rounded to a nanosecond so that 0.1-ms steps do not print as 0.30000000000000004.
    values.push(Number((k * step - offset).toFixed(6)));
  }
  return values;
}

function labelsFor(values, step, epoch, maxAbs) {
  if (!epoch) return values.map((value) => elapsedLabel(value, step, maxAbs));
  let previousDay = null;
  return values.map((value) => {
    const label = clockLabel(value, step);
    if (step >= day) return label;
    const today = localDate(new Date(value));
    const withDate = today !== previousDay;
    previousDay = today;
    return withDate ? `${label}\n${today}` : label;
  });
}

/** Whether labels centred at `positions` clear each other by the gap. */
function clearOfEachOther(positions, widths) {
  return positions.every((position, i) => i === 0 || position - positions[i - 1] >= (widths[i] + widths[i - 1]) / 2 + labelGapPx);
}

/**
 * The ticks of an axis from `min` to `max` drawn `widthPx` wide. Labels are centred on their
 * tick and may reach `leftRoomPx` left of the axis and `rightRoomPx` right of it; a tick whose
 * label would reach further is left out. `measure(text)` is a line's width in pixels.
 *
 * @returns {{ step: number, splits: number[], labels: string[] }}
 */
export function timeTicks({ min, max, widthPx, leftRoomPx = 0, rightRoomPx = 0, measure }) {
  const epoch = min > epochThresholdMs;
  const maxAbs = Math.max(Math.abs(min), Math.abs(max));
  const span = max - min;
  let fallback = { step: span, splits: [], labels: [] };
  if (!(span > 0) || !(widthPx > 0)) return fallback;
  const pxPerMs = widthPx / span;
  const widthOf = (label) => Math.max(...label.split('\n').map(measure));
  const layout = (values, step) => {
    const labels = labelsFor(values, step, epoch, maxAbs);
    return { labels, widths: labels.map(widthOf), positions: values.map((value) => (value - min) * pxPerMs) };
  };
  for (const step of steps) {
    // No label is narrower than 20 px: a step this dense cannot fit, whatever its labels say.
    if (step * pxPerMs < 20) continue;
    const all = tickValues(min, max, step, epoch);
    const { widths, positions } = layout(all, step);
    const fitsAt = (x, width) => x - width / 2 >= -leftRoomPx && x + width / 2 <= widthPx + rightRoomPx;
    const splits = all.filter((_, i) => fitsAt(positions[i], widths[i]));
    // Leaving a tick out can move the date to the next label, which widens it: measured again.
    const kept = layout(splits, step);
    const inBounds = kept.positions.every((x, i) => fitsAt(x, kept.widths[i]));
    if (!inBounds || !clearOfEachOther(kept.positions, kept.widths)) continue;
    const ticks = { step, splits, labels: kept.labels };
    if (splits.length >= 2) return ticks;
    if (splits.length === 1 && fallback.splits.length === 0) fallback = ticks;
  }
  return fallback;
}
