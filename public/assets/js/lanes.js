/**
 * The viewer's plot: one lane per channel, stacked, each a uPlot instance with its own value
 * scale (lane-scale.js), all on one time range, with one cursor (uPlot's cursor sync) and the
 * time axis under the last lane (time-ticks.js). Above each lane, the channel's latest value
 * and its value under the cursor. An envelope lane (a long recording summarised per bucket,
 * envelope.js) also draws a band from each bucket's min to its max around the line.
 *
 * The viewer owns the time range: lanes are told what to show (`show`), and a drag on any
 * lane asks the viewer to zoom (`onZoom`), a double click to show everything again. So every
 * lane always shows the same range, whichever lane the user touched.
 */
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { extent, formatReading, nextRange, valueLabels, valueSteps } from './lane-scale.js';
import { show } from './page-text.js';
import { timeTicks } from './time-ticks.js';

const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
export const axisFont = '12px system-ui, sans-serif';
/** The value axis is as wide in every lane, so their plots, and so their times, line up. */
const valueAxisPx = 72;
/** Room right of the plot, where the last time label may reach. */
const rightPaddingPx = 28;
/** Two lines: a clock time, and the date under it where the day changes. */
const timeAxisPx = 44;

let syncKeys = 0;

/** Index of the first `t` at or above `value`, or above it when not `inclusive` (t ascending). */
function searchT(t, value, inclusive) {
  let low = 0;
  let high = t.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (t[middle] < value || (!inclusive && t[middle] === value)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Text widths in the axis font, measured once each (ticks are measured on every frame of a live plot). */
function textMeasurer() {
  const context = document.createElement('canvas').getContext('2d');
  context.font = axisFont;
  const widths = new Map();
  return (text) => {
    let width = widths.get(text);
    if (width === undefined) {
      if (widths.size > 5_000) widths.clear();
      width = context.measureText(text).width;
      widths.set(text, width);
    }
    return width;
  };
}

export class Lanes {
  /**
   * @param {HTMLElement} container
   * @param {{ channels: string[], zoomable: boolean, envelope?: boolean,
   *   onZoom: (range: [number, number] | null) => void, onDraw?: () => void }} options
   */
  constructor(container, { channels, zoomable, envelope = false, onZoom, onDraw = () => {} }) {
    this.container = container;
    this.channels = channels;
    this.envelope = envelope;
    this.onZoom = onZoom;
    this.measure = textMeasurer();
    this.ticksMemo = { key: '', ticks: null };
    syncKeys += 1;
    this.syncKey = `wavehouse-lanes-${syncKeys}`;
    container.replaceChildren();
    container.classList.add('lanes');
    this.lanes = channels.map((channel, index) => this.#createLane(channel, index, { zoomable, onDraw: index === 0 ? onDraw : null }));
    new ResizeObserver(() => this.#resize()).observe(container);
  }

  /**
   * New data: `t` and one value column per channel (null or NaN for a missing reading), and
   * for envelope lanes the band's lower and upper edges (the line itself where there is no band).
   */
  setData(t, columns, lows = columns, highs = columns) {
    this.t = t;
    this.lows = lows;
    this.highs = highs;
    for (const [c, lane] of this.lanes.entries()) {
      lane.plot.setData(this.envelope ? [t, columns[c], lows[c], highs[c]] : [t, columns[c]], false);
    }
  }

  /** The plots' width in CSS pixels: how many buckets an envelope needs. */
  get plotWidthPx() {
    const { plot } = this.lanes[0];
    return Math.round(plot.bbox.width / uPlot.pxRatio);
  }

  /** Shows `min..max` of the time axis in every lane, each lane's values ranged on what is visible. */
  show(min, max) {
    const from = searchT(this.t, min, true);
    const to = searchT(this.t, max, false);
    for (const [c, lane] of this.lanes.entries()) {
      const low = extent(this.lows[c], from, to)[0];
      const high = extent(this.highs[c], from, to)[1];
      const range = nextRange(lane.range, low, high);
      const rescale = lane.range === null || range[0] !== lane.range[0] || range[1] !== lane.range[1];
      lane.plot.batch(() => {
        lane.plot.setScale('x', { min, max });
        if (rescale) lane.plot.setScale('y', { min: range[0], max: range[1] });
      });
      lane.range = range;
    }
  }

  /** The readout above each lane: the newest value of its channel. */
  showLatest(values, label = 'latest') {
    for (const [c, lane] of this.lanes.entries()) {
      show(lane.latest, formatReading(values[c]));
      show(lane.latestLabel, label);
    }
  }

  /** What each lane shows, for the page's test hook. */
  describe() {
    return this.lanes.map((lane) => {
      const { plot } = lane;
      const box = plot.over.getBoundingClientRect();
      return {
        channel: lane.channel,
        yMin: plot.scales.y.min,
        yMax: plot.scales.y.max,
        xMin: plot.scales.x.min,
        xMax: plot.scales.x.max,
        latest: lane.latest.textContent,
        plotBox: { left: box.left, top: box.top, width: box.width, height: box.height },
      };
    });
  }

  /**
   * The time labels as drawn under the last lane: their text, their tick's x in CSS pixels
   * from the canvas's left edge, the canvas's width, and the font they are drawn in.
   */
  timeLabels() {
    const { plot } = this.lanes[this.lanes.length - 1];
    const axis = plot.axes[0];
    const left = plot.bbox.left / uPlot.pxRatio;
    return {
      font: axisFont,
      canvasWidth: plot.ctx.canvas.width / uPlot.pxRatio,
      labels: (axis._values ?? []).map((text, i) => ({ text, x: left + plot.valToPos(axis._splits[i], 'x') })),
    };
  }

  /** The lane's canvas and plot area, for a test that reads what was drawn. */
  laneCanvas(index) {
    const { plot } = this.lanes[index];
    return { canvas: plot.ctx.canvas, bbox: plot.bbox, pxRatio: uPlot.pxRatio, valToX: (value) => plot.valToPos(value, 'x', true) };
  }

  #createLane(channel, index, { zoomable, onDraw }) {
    const color = palette[index % palette.length];
    const element = document.createElement('section');
    element.className = 'lane';
    element.dataset.channel = channel;
    const head = document.createElement('div');
    head.className = 'lane-head';
    const name = Object.assign(document.createElement('span'), { className: 'lane-name', textContent: channel });
    name.style.setProperty('--lane-color', color);
    const latestLabel = Object.assign(document.createElement('span'), { className: 'lane-label', textContent: 'latest' });
    const latest = Object.assign(document.createElement('output'), { className: 'lane-latest', textContent: '–' });
    const atCursor = Object.assign(document.createElement('span'), { className: 'lane-cursor' });
    head.append(name, latestLabel, latest, atCursor);
    const plotElement = document.createElement('div');
    plotElement.className = 'lane-plot';
    element.append(head, plotElement);
    this.container.append(element);

    const last = index === this.channels.length - 1;
    const lane = { channel, element, latest, latestLabel, atCursor, range: null, last };
    lane.plot = new uPlot(this.#options(lane, color, { zoomable, onDraw }), [[], []], plotElement);
    return lane;
  }

  #options(lane, color, { zoomable, onDraw }) {
    const hooks = {
      setCursor: [(plot) => this.#showCursorValue(lane, plot)],
      setSelect: [(plot) => this.#zoomToSelection(plot)],
    };
    if (onDraw !== null) hooks.draw = [onDraw];
    const series = [{}, { label: lane.channel, stroke: color, width: 1, points: { show: false } }];
    const edge = { stroke: 'transparent', width: 0, points: { show: false } };
    if (this.envelope) series.push({ label: 'min', ...edge }, { label: 'max', ...edge });
    return {
      ...this.#size(lane),
      scales: { x: { time: false, auto: false }, y: { auto: false } },
      series,
      // The band: from each bucket's max (series 3) down to its min (series 2), in the lane's colour, faint.
      bands: this.envelope ? [{ series: [3, 2], fill: `${color}40` }] : [],
      legend: { show: false },
      padding: [8, rightPaddingPx, lane.last ? 0 : 4, 0],
      axes: [
        {
          font: axisFont,
          size: lane.last ? timeAxisPx : 0,
          ticks: { show: lane.last },
          splits: (plot, _axis, min, max) => this.#timeTicks(plot, min, max).splits,
          values: (_plot, splits) => (lane.last ? this.ticksMemo.ticks.labels : splits.map(() => null)),
        },
        { font: axisFont, size: valueAxisPx, incrs: valueSteps, values: (_plot, splits, _axis, _space, step) => valueLabels(splits, step) },
      ],
      cursor: {
        sync: { key: this.syncKey },
        // The viewer zooms every lane itself (onZoom); a live window never zooms.
        drag: { x: zoomable, y: false, setScale: false },
        // A double click shows everything again, in every lane (in place of uPlot's, which rescales one).
        bind: { dblclick: () => (zoomable ? () => this.onZoom(null) : null) },
      },
      hooks,
    };
  }

  /** Shared by every lane (same range, same width): computed once per range and width. */
  #timeTicks(plot, min, max) {
    const widthPx = plot.bbox.width / uPlot.pxRatio;
    const key = `${min},${max},${widthPx}`;
    if (this.ticksMemo.key !== key) {
      const ticks = timeTicks({ min, max, widthPx, leftRoomPx: valueAxisPx, rightRoomPx: rightPaddingPx, measure: this.measure });
      this.ticksMemo = { key, ticks };
    }
    return this.ticksMemo.ticks;
  }

  #showCursorValue(lane, plot) {
    const i = plot.cursor.idx;
    show(lane.atCursor, i === null || i === undefined ? '' : `at cursor ${formatReading(plot.data[1][i])}`);
  }

  #zoomToSelection(plot) {
    const { left, width } = plot.select;
    if (width < 2) return;
    const range = [plot.posToVal(left, 'x'), plot.posToVal(left + width, 'x')];
    // Cleared in every lane (the selection is synced) before the zoom redraws them.
    for (const lane of this.lanes) lane.plot.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    this.onZoom(range);
  }

  #size(lane) {
    const width = Math.max(200, this.container.clientWidth);
    const plotHeight = Math.max(110, Math.min(220, Math.round((window.innerHeight * 0.6) / this.channels.length)));
    return { width, height: plotHeight + (lane.last ? timeAxisPx : 0) };
  }

  #resize() {
    for (const lane of this.lanes) lane.plot.setSize(this.#size(lane));
  }
}
