/**
 * The recorder page, /record: streams this device's accelerometer into a new session (or the
 * one named by a recorder link from the landing page, `#session=...&token=...`).
 *
 * Each `devicemotion` event becomes one sample {seq, t, ax, ay, az}: accelerationIncludingGravity
 * in m/s², `t` the event's time as epoch milliseconds, seqs 1, 2, 3... (continuing after the
 * session's lastSeq). Every 100 ms the unsent samples go out as one `{"samples": [...]}` frame
 * on the ingest socket.
 *
 * Delivery (docs/protocol.md): a sample stays in the outbox until an ack covers it, since an
 * ack means committed. After any reconnect everything unacked is sent again; the server drops
 * the seqs it already has, so storage holds each sample once. Stop waits (bounded) for the
 * last ack, then ends the session with the ingest token.
 */
import {
  absoluteUrl,
  backoffDelayMs,
  createSession,
  endSession,
  fetchSession,
  recorderLinkSession,
  socketUrl,
} from './wavehouse-api.js';

const flushIntervalMs = 100;
/** About 180 KB of JSON: far below the 1 MiB frame limit, and a resend goes out in a few frames. */
const maxSamplesPerFrame = 2_000;
/** Beyond this in the socket's own buffer, samples wait in the outbox where acks can trim them. */
const maxSocketBufferedBytes = 512 * 1024;
/** One hour of unacked samples at 100 Hz bounds the page's memory through a long outage. */
const maxUnackedSamples = 360_000;
const stopAckTimeoutMs = 15_000;
const noDataWarningMs = 3_000;
/** Event times above this are already epoch milliseconds (old browsers); below, page-relative. */
const epochThresholdMs = 1e11;

const elements = {
  start: document.getElementById('start'),
  stop: document.getElementById('stop'),
  state: document.getElementById('recorder-state'),
  connection: document.getElementById('connection-status'),
  captured: document.getElementById('captured'),
  sent: document.getElementById('sent'),
  acked: document.getElementById('acked'),
  message: document.getElementById('message'),
  share: document.getElementById('share'),
  shareLink: document.getElementById('share-link'),
  copy: document.getElementById('copy-link'),
  openViewer: document.getElementById('open-viewer'),
  linkNote: document.getElementById('link-session'),
};

/** Samples kept until acked, in seq order; `next` is the first one not yet sent on this connection. */
class Outbox {
  #items = [];
  #head = 0;
  #next = 0;

  get size() {
    return this.#items.length - this.#head;
  }

  get hasUnsent() {
    return this.#next < this.#items.length;
  }

  push(sample) {
    this.#items.push(sample);
  }

  takeUnsent(max) {
    const batch = this.#items.slice(this.#next, this.#next + max);
    this.#next += batch.length;
    return batch;
  }

  /** Forgets every sample an ack covers. */
  acked(seq) {
    while (this.#head < this.#items.length && this.#items[this.#head].seq <= seq) this.#head += 1;
    this.#next = Math.max(this.#next, this.#head);
    // Trim the array now and then rather than shifting it on every ack.
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#next -= this.#head;
      this.#head = 0;
    }
  }

  /** After a reconnect, everything unacked goes out again. */
  rewind() {
    this.#next = this.#head;
  }
}

let linkSession = recorderLinkSession(location.hash);

let state = 'idle';
let connection = 'closed';
let session = null;
let ingestToken = null;
let socket = null;
let outbox = new Outbox();
let nextSeq = 1;
let firstSeq = 1;
let lastCapturedSeq = 0;
let sentSeq = 0;
let ackedSeq = 0;
let dropped = 0;
let attempt = 0;
let ending = false;
let flushTimer = null;
let noDataTimer = null;
let wakeLock = null;

function show(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setMessage(text, kind = 'info') {
  show(elements.message, text);
  elements.message.dataset.kind = kind;
  elements.message.hidden = text === '';
}

function setState(next) {
  state = next;
  show(elements.state, next);
  elements.state.dataset.state = next;
  elements.start.disabled = !(next === 'idle' || next === 'ended' || next === 'failed');
  elements.stop.disabled = next !== 'recording';
}

function setConnection(next) {
  connection = next;
  show(elements.connection, next);
  elements.connection.dataset.state = next;
}

function renderCounts() {
  const counted = (seq) => String(Math.max(0, seq - firstSeq + 1));
  show(elements.captured, counted(lastCapturedSeq));
  show(elements.sent, counted(sentSeq));
  show(elements.acked, counted(ackedSeq));
}

// -- capture ----------------------------------------------------------------------------

function onMotion(event) {
  const a = event.accelerationIncludingGravity;
  // Browsers on devices without the sensor fire events with null readings: not samples.
  if (!a || !Number.isFinite(a.x) || !Number.isFinite(a.y) || !Number.isFinite(a.z)) return;
  if (outbox.size >= maxUnackedSamples) {
    dropped += 1;
    if (dropped === 1) setMessage('The server has not acknowledged anything for a long time; new samples are being dropped.', 'error');
    return;
  }
  clearTimeout(noDataTimer);
  const t = event.timeStamp > epochThresholdMs ? event.timeStamp : performance.timeOrigin + event.timeStamp;
  const seq = nextSeq;
  nextSeq += 1;
  lastCapturedSeq = seq;
  outbox.push({ seq, t, ax: a.x, ay: a.y, az: a.z });
}

async function askMotionPermission() {
  if (typeof DeviceMotionEvent === 'undefined') {
    return 'This browser does not give pages access to motion sensors. Open this page on a phone or tablet.';
  }
  if (!window.isSecureContext) {
    return 'Motion sensors are only available to secure pages: open this page over HTTPS.';
  }
  // iOS 13+: must be asked from the tap itself, before anything else is awaited.
  if (typeof DeviceMotionEvent.requestPermission === 'function') {
    try {
      const answer = await DeviceMotionEvent.requestPermission();
      if (answer !== 'granted') {
        return 'Access to motion sensors was denied. Allow it (iOS: Settings, Safari, Motion & Orientation Access) and reload this page.';
      }
    } catch (error) {
      return `Access to motion sensors could not be requested: ${error.message}`;
    }
  }
  return null;
}

async function keepScreenOn() {
  try {
    wakeLock = (await navigator.wakeLock?.request('screen')) ?? null;
  } catch {
    // Not offered or refused (battery saver): recording works, the user keeps the screen on.
  }
}

document.addEventListener('visibilitychange', () => {
  // A wake lock is released whenever the page is hidden; take it again on return.
  if (document.visibilityState === 'visible' && state === 'recording') keepScreenOn();
});

// -- delivery ---------------------------------------------------------------------------

function flush() {
  if (socket === null || socket.readyState !== WebSocket.OPEN) return renderCounts();
  while (outbox.hasUnsent && socket.bufferedAmount < maxSocketBufferedBytes) {
    const batch = outbox.takeUnsent(maxSamplesPerFrame);
    socket.send(JSON.stringify({ samples: batch }));
    sentSeq = Math.max(sentSeq, batch[batch.length - 1].seq);
  }
  renderCounts();
}

function handleFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return;
  }
  if (frame.type === 'ack') {
    if (frame.seq > ackedSeq) {
      ackedSeq = frame.seq;
      outbox.acked(ackedSeq);
      renderCounts();
    }
  } else if (frame.type === 'error') {
    if (frame.code === 'rate_limited') outbox.rewind();
    else if (frame.code === 'session_ended') finish(null);
    else setMessage(`The server rejected a batch (${frame.code}): ${frame.message}`, 'error');
  }
}

function connect() {
  const query = new URLSearchParams({ token: ingestToken });
  const current = new WebSocket(socketUrl(`/api/v1/sessions/${encodeURIComponent(session.sessionId)}/ingest?${query}`));
  socket = current;
  setConnection(attempt === 0 ? 'connecting' : 'reconnecting');
  current.onopen = () => {
    if (socket !== current) return;
    attempt = 0;
    setConnection('connected');
    if (elements.message.dataset.kind === 'warning') setMessage('');
    outbox.rewind();
    flush();
  };
  current.onmessage = (event) => {
    if (socket === current) handleFrame(event.data);
  };
  current.onclose = (event) => {
    if (socket !== current) return;
    socket = null;
    socketClosed(event.code);
  };
}

async function socketClosed(code) {
  if (ending || state === 'ended' || state === 'failed') return setConnection('closed');
  if (code === 4401 || code === 4404) return fail('This session or its write token is not valid: start a new recording.');
  if (code === 4409) {
    // Either the server still holds this page's previous connection (it lets go of it within
    // two pings), or the session was ended elsewhere.
    const current = await fetchSession(session.sessionId).catch(() => null);
    if (current?.status === 'ended') return finish(current);
  }
  setConnection('reconnecting');
  setMessage('Connection lost; reconnecting. Samples are kept until the server acknowledges them.', 'warning');
  const delayMs = backoffDelayMs(attempt);
  attempt += 1;
  setTimeout(() => {
    if (!ending && (state === 'recording' || state === 'stopping')) connect();
  }, delayMs);
}

function waitUntil(condition, timeoutMs) {
  return new Promise((resolve) => {
    const deadline = performance.now() + timeoutMs;
    const check = () => {
      if (condition()) return resolve(true);
      if (performance.now() > deadline) return resolve(false);
      setTimeout(check, 50);
    };
    check();
  });
}

// -- start and stop ---------------------------------------------------------------------

async function openSession() {
  if (linkSession !== null) {
    const existing = await fetchSession(linkSession.sessionId);
    const unusable = existing === null ? 'does not exist' : existing.status === 'ended' ? 'has already ended' : null;
    if (unusable !== null) {
      linkSession = null;
      elements.linkNote.hidden = true;
      throw new Error(`the session in this link ${unusable}; press Start for a new one`);
    }
    ingestToken = linkSession.ingestToken;
    return existing;
  }
  const created = await createSession({ metadata: { source: 'wavehouse recorder' } });
  ingestToken = created.ingestToken;
  return created;
}

function showShareLink() {
  const url = absoluteUrl(session.viewerUrl);
  elements.shareLink.value = url;
  elements.openViewer.href = url;
  elements.share.hidden = false;
}

async function start() {
  const refusal = await askMotionPermission();
  if (refusal !== null) {
    setState('failed');
    return setMessage(refusal, 'error');
  }
  setState('starting');
  setMessage('');
  try {
    session = await openSession();
  } catch (error) {
    return fail(`Could not start a session: ${error.message}`);
  }
  if (linkSession !== null) {
    // A recorder link starts one recording: the next Start creates a new session. The token
    // leaves the address bar so it is not shared by accident.
    linkSession = null;
    elements.linkNote.hidden = true;
    history.replaceState(null, '', location.pathname);
  }
  outbox = new Outbox();
  firstSeq = nextSeq = (session.lastSeq ?? 0) + 1;
  lastCapturedSeq = sentSeq = ackedSeq = firstSeq - 1;
  dropped = 0;
  attempt = 0;
  ending = false;
  showShareLink();
  renderCounts();
  connect();
  window.addEventListener('devicemotion', onMotion);
  flushTimer = setInterval(flush, flushIntervalMs);
  noDataTimer = setTimeout(() => {
    setMessage(
      'No motion data is arriving. This device may have no accelerometer, or the browser blocks it (Android Chrome: site settings, Motion sensors).',
      'warning',
    );
  }, noDataWarningMs);
  keepScreenOn();
  setState('recording');
}

function stopCapture() {
  window.removeEventListener('devicemotion', onMotion);
  clearTimeout(noDataTimer);
}

async function stop() {
  setState('stopping');
  stopCapture();
  flush();
  const delivered = await waitUntil(() => ackedSeq >= lastCapturedSeq, stopAckTimeoutMs);
  if (!delivered) {
    setMessage(`${lastCapturedSeq - ackedSeq} samples were not acknowledged within ${stopAckTimeoutMs / 1000} s and are lost.`, 'warning');
  }
  ending = true;
  try {
    finish(await endSession(session.sessionId, ingestToken));
  } catch (error) {
    ending = false;
    elements.stop.disabled = false;
    setMessage(`Could not end the session (${error.message}); press Stop to try again.`, 'error');
  }
}

function release() {
  stopCapture();
  clearInterval(flushTimer);
  wakeLock?.release().catch(() => undefined);
  wakeLock = null;
  const current = socket;
  socket = null;
  current?.close(1000, 'recording finished');
  setConnection('closed');
  renderCounts();
}

function finish(ended) {
  release();
  setState('ended');
  const stored = ended?.sampleCount;
  if (elements.message.dataset.kind !== 'warning') {
    setMessage(stored === undefined ? 'The session has ended.' : `Recording ended: ${stored} samples stored.`);
  }
}

function fail(text) {
  if (session !== null) release();
  setState('failed');
  setMessage(text, 'error');
}

async function copyShareLink() {
  try {
    await navigator.clipboard.writeText(elements.shareLink.value);
    show(elements.copy, 'Copied');
  } catch {
    // No clipboard API (insecure page, old browser): leave the link selected to copy by hand.
    elements.shareLink.select();
    show(elements.copy, 'Press Ctrl+C');
  }
  setTimeout(() => show(elements.copy, 'Copy'), 2_000);
}

window.__wavehouseRecorder = Object.freeze({
  get status() {
    return {
      state,
      connection,
      sessionId: session?.sessionId ?? null,
      captured: Math.max(0, lastCapturedSeq - firstSeq + 1),
      lastCapturedSeq,
      sentSeq,
      ackedSeq,
      dropped,
    };
  },
});

elements.start.addEventListener('click', start);
elements.stop.addEventListener('click', stop);
elements.copy.addEventListener('click', copyShareLink);
if (linkSession !== null) {
  elements.linkNote.hidden = false;
  show(elements.linkNote.querySelector('code'), linkSession.sessionId);
}
setState('idle');
setConnection('closed');
renderCounts();
