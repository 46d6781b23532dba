/**
 * The viewer page, /view/{id}: a live plot of one session, a lane per channel on a shared time
 * axis (lanes.js), each lane with the channel's latest value.
 *
 * Data: the SDK's Viewer, which reads the live socket with `fromSeq` (docs/protocol.md). A
 * live session starts a little in the past (about one plot window) so the plot is not empty;
 * a finished one from seq 0, to show the whole recording, which ends with `session_ended`. A
 * finished recording of more than `maxRawSamples` is not replayed: it is read by REST as its
 * envelope, min/max band and first/last line per pixel, and read again for each zoom, as the
 * samples themselves once the zoomed range holds few enough (envelope.js).
 * After any drop the Viewer reconnects with backoff from the last seq it delivered + 1: the
 * server sends everything from there, so the plot never has a hole, and never a seq twice.
 *
 * Memory: a live session keeps only the last `liveWindowMs` of samples, at most
 * `maxLiveSamples`, in float64 columns (sample-columns.js) that uPlot draws from directly.
 * Drawing happens in requestAnimationFrame, at most once per display frame however fast
 * samples arrive; the time axis scrolls with the wall clock between batches so the plot moves
 * smoothly instead of jumping once per batch.
 *
 * Private servers (access-session.js): REST calls carry the tab's access token, each socket
 * connect its current one in `?access_token=`. A live socket outlives its token; a reconnect
 * refused for an expired one (the tab slept through the renewal) renews it and resumes. That
 * is the SDK Viewer's own rule, given the tab's credential: once per token, so a server that
 * refuses even a fresh token stops the viewer instead of looping on refreshes.
 */
import { access, privateMode, watchSignIn } from './access-session.js';
import { Envelope, maxRawSamples } from './envelope.js';
import { Lanes } from './lanes.js';
import { baseUrl } from './page-links.js';
import { show, showMessage } from './page-text.js';
import { SampleColumns } from './sample-columns.js';
import { Backoff, dataUrl, getSession, Viewer } from './wavehouse-sdk.js';

const liveWindowMs = 15_000;
/** 15 s at 20 kHz: bounds a live page's memory (about 12 MB for 3 channels) at any rate. */
const maxLiveSamples = 300_000;
/** Assumed when a session does not declare its rate: only sizes the first request's history. */
const assumedRateHz = 1_000;
/**
 * How far behind the newest sample the right edge of a live plot runs: a little over one
 * batch interval of the recorder (100 ms), so the edge keeps moving until the next batch.
 */
const liveDelayMs = 150;
/** A jump in the producer's clock beyond this resets the scroll instead of easing into it. */
const clockJumpMs = 1_000;
const statsIntervalMs = 250;
/** A 4401's codes (the Viewer's error carries the refusal's): the tab's token was not accepted. */
const signInRefusals = new Set(['missing_credential', 'invalid_credential', 'credential_expired', 'credential_revoked']);
/** A 4403's: the key is valid but cannot read this session. */
const reachRefusals = new Set(['insufficient_scope', 'outside_key_prefix']);

const sessionId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');

const elements = {
  title: document.getElementById('session-title'),
  sessionStatus: document.getElementById('session-status'),
  connection: document.getElementById('connection-status'),
  rate: document.getElementById('rate'),
  count: document.getElementById('sample-count'),
  lastSeq: document.getElementById('last-seq'),
  message: document.getElementById('message'),
  plot: document.getElementById('plot'),
  downloads: document.getElementById('downloads'),
  wholeRecording: document.getElementById('whole-recording'),
  signInNeeded: document.getElementById('sign-in-needed'),
};

let channels = [];
/**
 * 'live': a bounded window that scrolls; 'whole': every sample of a finished recording;
 * 'envelope': a longer finished recording, read by REST per zoom.
 */
let mode = 'live';
let sessionStatus = 'loading';
let connection = 'connecting';
let columns = null;
/** The lanes, made at the first sample (lanes.js). */
let lanes = null;
/** The time range a user zoomed a finished recording to; null shows all of it. */
let zoomRange = null;
let viewer = null;
let received = 0;
let lastArrivalAt = -Infinity;
/** Connections the Viewer made: every one after the first is a resume. */
let connections = 0;
let ended = false;
let dirty = false;
let frameRequested = false;
/** The columns last handed to the plot, so the debug hook can name the seq of each point. */
let handed = null;
/** Producer clock minus performance.now(), eased: where the right edge of a live plot is. */
let clockOffsetMs = null;
let shownRange = null;
let draws = 0;
/** A long recording's reads (envelope.js), and the last data they handed over. */
let envelope = null;
let envelopeData = null;

function setMessage(text, kind = 'info') {
  showMessage(elements.message, text, kind);
}

function setSessionStatus(status) {
  sessionStatus = status;
  show(elements.sessionStatus, status);
  elements.sessionStatus.dataset.status = status;
}

function setConnection(state) {
  connection = state;
  show(elements.connection, state);
  elements.connection.dataset.state = state;
}

function showDownloads() {
  for (const link of elements.downloads.querySelectorAll('a[data-format]')) {
    const format = link.dataset.format;
    // Relative, like every link of the page: the page's origin is the API's.
    link.href = dataUrl('', sessionId, format);
    link.download = `wavehouse-${sessionId}.${format}`;
    if (privateMode) link.addEventListener('click', downloadWithToken);
  }
  elements.downloads.hidden = false;
}

/** A link cannot carry the access token: on a private server the page fetches the file and saves it. */
async function downloadWithToken(event) {
  event.preventDefault();
  const link = event.currentTarget;
  try {
    const response = await access.fetch(link.href);
    if (response.status !== 200) throw new Error(`the server answered ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    Object.assign(document.createElement('a'), { href: url, download: link.download }).click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    setMessage(`The download failed: ${error.message}`, 'error');
  }
}

// -- data -------------------------------------------------------------------------------

/** New samples from the Viewer: in seq order, none seen before (it drops any resent one). */
function acceptSamples(samples) {
  for (const sample of samples) columns.append(sample, channels);
  if (samples.length === 0) return;
  received += samples.length;
  lastArrivalAt = performance.now();
  if (sessionStatus === 'created') setSessionStatus('active');
  if (elements.message.dataset.kind === 'waiting') setMessage('');
  if (mode === 'live') {
    columns.dropBefore(columns.lastT - liveWindowMs);
    followProducerClock();
  }
  dirty = true;
  requestFrame();
}

function followProducerClock() {
  const target = columns.lastT - performance.now() - liveDelayMs;
  if (clockOffsetMs === null || Math.abs(target - clockOffsetMs) > clockJumpMs) clockOffsetMs = target;
  // Eased so that batches arriving early or late do not make the scroll speed jitter.
  else clockOffsetMs += (target - clockOffsetMs) * 0.05;
}

function sessionEnded() {
  ended = true;
  dirty = true;
  setSessionStatus('ended');
  if (mode === 'live') elements.wholeRecording.hidden = false;
  requestFrame();
}

// -- connection -------------------------------------------------------------------------

function openViewer(fromSeq) {
  const current = new Viewer({ baseUrl, sessionId, fromSeq, fetch: access.fetch, credential: privateMode ? access.credential : undefined });
  current.on('samples', acceptSamples);
  current.on('connected', () => {
    connections += 1;
    setConnection('connected');
    if (elements.message.dataset.kind === 'warning') setMessage('');
    requestFrame();
  });
  current.on('disconnected', ({ code, willReconnect }) => {
    if (!willReconnect) return setConnection('closed');
    setConnection('reconnecting');
    setMessage(code === 1013 ? 'This page fell behind the stream; catching up.' : 'Connection lost; reconnecting.', 'warning');
  });
  current.on('ended', () => {
    setConnection('closed');
    sessionEnded();
  });
  current.on('error', (error) => {
    setConnection('closed');
    setMessage(stopMessage(error.code, error.message), 'error');
  });
  return current.start();
}

function stopMessage(code, message) {
  if (code === 'session_not_found') return 'This session does not exist (any more).';
  if (signInRefusals.has(code)) return `The server no longer accepts this tab's sign-in (${code}): sign in again to watch.`;
  if (reachRefusals.has(code)) return `This key cannot read this session (${code}).`;
  return `The live stream stopped: ${message}`;
}

// -- drawing ----------------------------------------------------------------------------

function requestFrame() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(drawFrame);
}

function createLanes() {
  // Zooming a live window would be undone by the next frame; a finished recording zooms.
  const zoomable = mode !== 'live';
  lanes = new Lanes(elements.plot, { channels, zoomable, envelope: mode === 'envelope', onZoom: zoomTo, onDraw: () => (draws += 1) });
}

function zoomTo(range) {
  zoomRange = range;
  shownRange = null;
  if (mode === 'envelope') envelope.show(range, envelopePoints());
  requestFrame();
}

/** About one bucket per pixel (the contract allows 1 to 10,000). */
const envelopePoints = () => Math.max(1, Math.min(10_000, lanes.plotWidthPx));

function xRange(now) {
  const first = columns.firstT;
  const last = columns.lastT;
  if (mode === 'whole' || ended) {
    if (zoomRange !== null) return zoomRange;
    return first === last ? [first - 1, last + 1] : [first, last];
  }
  const right = Math.min(last, now + clockOffsetMs);
  return [right - liveWindowMs, right];
}

function drawFrame(now) {
  frameRequested = false;
  if (mode === 'envelope') return drawEnvelope();
  if (columns === null || columns.length === 0) return;
  if (lanes === null) createLanes();
  const [min, max] = xRange(now);
  if (dirty) {
    const views = columns.views();
    lanes.setData(views.t, views.values);
    lanes.showLatest(columns.lastValues(), ended ? 'last' : 'latest');
    handed = views;
    dirty = false;
    shownRange = null;
  }
  if (shownRange === null || shownRange[0] !== min || shownRange[1] !== max) {
    lanes.show(min, max);
    shownRange = [min, max];
  }
  // A live plot keeps scrolling between batches; it stops once the newest sample is on screen.
  if (mode === 'live' && !ended && max < columns.lastT) requestFrame();
}

/** Until the next data arrive, a zoom shows the data at hand over the new range at once. */
function drawEnvelope() {
  if (envelopeData === null) return;
  if (dirty) {
    lanes.setData(envelopeData.t, envelopeData.lines, envelopeData.lows, envelopeData.highs);
    dirty = false;
    shownRange = null;
  }
  if (shownRange === null) {
    shownRange = zoomRange ?? envelope.wholeRange;
    lanes.show(...shownRange);
  }
}

function showEnvelope(data) {
  envelopeData = data;
  dirty = true;
  requestFrame();
}

async function startEnvelope(session) {
  mode = 'envelope';
  setConnection('closed');
  show(elements.count, String(session.sampleCount));
  show(elements.lastSeq, String(session.lastSeq));
  const rate = (session.sampleCount - 1) / ((session.lastT - session.firstT) / 1000);
  show(elements.rate, Number.isFinite(rate) ? `${rate.toFixed(rate < 10 ? 1 : 0)} samples/s` : '-');
  setMessage(
    `This recording holds ${session.sampleCount} samples: each lane shows, per pixel, their range as a band and ` +
      'their first and last value as the line. Drag over a stretch to zoom in, down to the samples themselves.',
  );
  createLanes();
  const onError = (error) => setMessage(`The plot could not be read: ${error.message}`, 'error');
  const lastT = session.firstT === session.lastT ? session.lastT + 1 : session.lastT;
  envelope = new Envelope({ sessionId, channels, firstT: session.firstT, lastT, onData: showEnvelope, onError });
  envelope.show(null, envelopePoints());
  const last = await envelope.lastSample().catch(onError);
  if (last)
    lanes.showLatest(
      channels.map((channel) => last[channel]),
      'last',
    );
}

function updateStats() {
  show(elements.count, String(received));
  const lastSeq = viewer?.lastSeq ?? null;
  show(elements.lastSeq, lastSeq === null ? '-' : String(lastSeq));
  if (columns === null || columns.length < 2) return show(elements.rate, '-');
  let rate;
  if (mode === 'whole') {
    rate = (columns.length - 1) / ((columns.lastT - columns.firstT) / 1000);
  } else {
    // Measured on the producer's clock so a burst of history does not read as a rate; a
    // stream that stopped arriving reads 0.
    const stale = performance.now() - lastArrivalAt > 2_000;
    rate = stale ? 0 : columns.countSince(columns.lastT - 2_000) / 2;
  }
  show(elements.rate, Number.isFinite(rate) ? `${rate.toFixed(rate < 10 ? 1 : 0)} samples/s` : '-');
}

// -- a read-only view for tests ---------------------------------------------------------

/** The data arrays the lanes' plots hold: [t, values of lane 0], [t, values of lane 1], ... */
const laneData = () => lanes?.lanes.map((lane) => lane.plot.data) ?? [];

/** What the plot actually holds (its own data arrays), summarised so a test can check for holes. */
function plotted() {
  if (lanes === null || handed === null || laneData()[0][0] !== handed.t) {
    return { count: 0, firstSeq: null, lastSeq: null, gaps: [], disorder: 0 };
  }
  const seqs = handed.seq;
  const gaps = [];
  let disorder = 0;
  for (let i = 1; i < seqs.length; i += 1) {
    if (seqs[i] <= seqs[i - 1]) disorder += 1;
    else if (seqs[i] !== seqs[i - 1] + 1 && gaps.length < 20) gaps.push([seqs[i - 1], seqs[i]]);
  }
  return { count: handed.t.length, firstSeq: seqs[0] ?? null, lastSeq: seqs[seqs.length - 1] ?? null, gaps, disorder };
}

/** The plotted point of one seq, read back from the plot's arrays; null when not plotted. */
function plottedSample(seq) {
  const data = laneData();
  if (lanes === null || handed === null || data[0][0] !== handed.t) return null;
  const i = handed.seq.indexOf(seq);
  if (i < 0) return null;
  const sample = { seq, t: data[0][0][i] };
  channels.forEach((name, c) => {
    sample[name] = data[c][1][i];
  });
  return sample;
}

window.__wavehouseViewer = Object.freeze({
  get status() {
    return { session: sessionStatus, connection, mode, reconnects: Math.max(0, connections - 1), received, draws };
  },
  plotted,
  plottedSample,
  /** Each lane: its channel, value and time ranges, readout and box on the page. */
  lanes: () => lanes?.describe() ?? [],
  /** The time axis's labels as drawn: text and tick x, to measure. */
  timeLabels: () => lanes?.timeLabels() ?? null,
  /** A lane's canvas, to read its pixels. */
  laneCanvas: (index) => lanes?.laneCanvas(index) ?? null,
  /** What a long recording's lanes show: the envelope's buckets or the samples, of which range. */
  envelope() {
    if (envelopeData === null) return null;
    const { source, bucketMs, fromT, toT, count, points } = envelopeData;
    return { source, bucketMs, fromT, toT, count, points: points ?? null };
  },
  /** Zooms a finished recording to `min..max` (null: all of it), as a drag over the plot does. */
  zoomTo(min, max) {
    zoomTo(min === null ? null : [min, max]);
  },
  /** Closes the live socket as a network drop would, to exercise the reconnect. */
  dropConnection() {
    viewer?.dropConnection();
  },
});

// -- start ------------------------------------------------------------------------------

/** The session, or null when there is none; retried (with backoff) while the server cannot answer. */
async function loadSession() {
  const backoff = new Backoff({ initialDelayMs: 250 });
  for (;;) {
    try {
      return await getSession(baseUrl, sessionId, { fetch: access.fetch });
    } catch (error) {
      if (error.status === 404) return null;
      // Not signed in (the notice says so) or a key that cannot read it: asking again will not help.
      if (error.status === 401 || error.status === 403) throw error;
      setMessage(`Could not load the session (${error.detail ?? error.message}); retrying.`, 'warning');
      await new Promise((resolve) => setTimeout(resolve, backoff.nextDelayMs()));
    }
  }
}

async function start() {
  show(elements.title, sessionId);
  if (!watchSignIn(elements.signInNeeded)) {
    setSessionStatus('signed out');
    return setConnection('closed');
  }
  let session;
  try {
    session = await loadSession();
  } catch (error) {
    setSessionStatus('refused');
    setConnection('closed');
    if (error.status === 403) return setMessage(`This key cannot read this session (${error.code}).`, 'error');
    // Signed out by the refusal: the sign-in notice says so.
    return setMessage(access.signedIn ? `The server refused this tab's sign-in (${error.code}).` : '', 'error');
  }
  if (session === null) {
    setSessionStatus('not found');
    setConnection('closed');
    return setMessage(`There is no session ${sessionId}.`, 'error');
  }
  channels = session.channels;
  setSessionStatus(session.status);
  showDownloads();
  if (session.status === 'ended' && session.sampleCount > maxRawSamples) return startEnvelope(session);
  mode = session.status === 'ended' ? 'whole' : 'live';
  columns = new SampleColumns(channels.length, mode === 'live' ? { maxSamples: maxLiveSamples } : {});
  let fromSeq = 0;
  if (mode === 'live' && session.lastSeq !== null) {
    const windowSamples = Math.ceil(((session.sampleRateHz ?? assumedRateHz) * liveWindowMs) / 1000);
    fromSeq = Math.max(0, session.lastSeq - windowSamples);
  }
  if (session.sampleCount === 0 && session.status !== 'ended') setMessage('Waiting for the first samples.', 'waiting');
  if (session.status === 'ended' && session.sampleCount === 0) setMessage('This recording holds no samples.');
  setInterval(updateStats, statsIntervalMs);
  viewer = openViewer(fromSeq);
}

start();
