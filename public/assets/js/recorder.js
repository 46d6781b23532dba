/**
 * The recorder page, /record: streams this device's accelerometer into a new session (or the
 * one named by a recorder link from the landing page, `#session=...&token=...`).
 *
 * Each `devicemotion` event becomes one sample {seq, t, ax, ay, az}: accelerationIncludingGravity
 * in m/s², `t` the event's time as epoch milliseconds, seqs 1, 2, 3... (continuing after the
 * session's lastSeq). The samples are pushed to the SDK's Producer, which sends them in
 * batches (at most every 100 ms), keeps each until an ack covers it (an ack means
 * committed), and resends everything unacked after any reconnect; the server drops the seqs
 * it already has, so storage holds each sample once. Stop waits (bounded) for the last ack,
 * then ends the session with the ingest token.
 *
 * Private servers (access-session.js): the tab must be signed in, with `sessions:write`, to
 * create a session. A recorder link needs no sign-in: its ingest token reads its session (as
 * the Producer does before it connects), writes to it and ends it, and nothing else.
 */
import { access, privateMode, watchSignIn } from './access-session.js';
import { absoluteUrl, baseUrl, recorderLinkSession } from './page-links.js';
import { show, showMessage } from './page-text.js';
import { createSession, endSession, getSession, ingestTokenCredential, Producer, ProducerError } from './wavehouse-sdk.js';

/** The longest a captured sample waits before it is sent; the viewer's scroll delay assumes it. */
const batchIntervalMs = 100;
/**
 * One hour of unacked samples at 100 Hz bounds the page's memory through a long outage. A
 * sensor cannot be paused, so once the Producer pushes back, readings are dropped (and
 * counted) until acks bring the backlog down.
 */
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
  signInNeeded: document.getElementById('sign-in-needed'),
};

let linkSession = recorderLinkSession(location.hash);

let state = 'idle';
let connection = 'closed';
let session = null;
let ingestToken = null;
let producer = null;
let nextSeq = 1;
let firstSeq = 1;
let lastCapturedSeq = 0;
let sentSeq = 0;
let ackedSeq = 0;
let dropped = 0;
/** The Producer holds more than `maxUnackedSamples`: readings are dropped until it drains. */
let backlogFull = false;
let noDataTimer = null;
let wakeLock = null;
/** A private server and no sign-in in this tab. */
let signedOut = false;
/** ...and no recorder link waiting: nothing can start. */
let signInMissing = false;

function setMessage(text, kind = 'info') {
  showMessage(elements.message, text, kind);
}

function setState(next) {
  state = next;
  show(elements.state, next);
  elements.state.dataset.state = next;
  elements.start.disabled = signInMissing || !(next === 'idle' || next === 'ended' || next === 'failed');
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
  clearTimeout(noDataTimer);
  if (backlogFull) {
    dropped += 1;
    if (dropped === 1) setMessage('The server has not acknowledged anything for a long time; new samples are being dropped.', 'error');
    return;
  }
  const t = event.timeStamp > epochThresholdMs ? event.timeStamp : performance.timeOrigin + event.timeStamp;
  const seq = nextSeq;
  nextSeq += 1;
  lastCapturedSeq = seq;
  backlogFull = !producer.push({ seq, t, ax: a.x, ay: a.y, az: a.z });
  renderCounts();
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

/** The Producer's events drive the connection badge and the counts; it does the delivery. */
function openProducer() {
  const current = new Producer({
    baseUrl,
    sessionId: session.sessionId,
    token: ingestToken,
    maxBatchDelayMs: batchIntervalMs,
    maxUnackedSamples,
    fetch: access.fetch,
  });
  current.on('connected', () => {
    setConnection('connected');
    if (elements.message.dataset.kind === 'warning') setMessage('');
  });
  current.on('disconnected', ({ willReconnect }) => {
    if (!willReconnect) return setConnection('closed');
    setConnection('reconnecting');
    setMessage('Connection lost; reconnecting. Samples are kept until the server acknowledges them.', 'warning');
  });
  current.on('sent', ({ seq }) => {
    sentSeq = Math.max(sentSeq, seq);
    renderCounts();
  });
  current.on('ack', ({ seq }) => {
    ackedSeq = Math.max(ackedSeq, seq);
    renderCounts();
  });
  current.on('drain', () => {
    backlogFull = false;
  });
  current.on('error', (error) => {
    // Not fatal (rate_limited): the Producer holds back and resends by itself.
    if (!error.fatal) return;
    if (error.code === 'session_ended') return finish(null);
    if (error.code === 'invalid_token' || error.code === 'session_not_found') {
      return fail('This session or its write token is not valid: start a new recording.');
    }
    fail(`Recording stopped: ${error.message}`);
  });
  setConnection('connecting');
  return current;
}

// -- start and stop ---------------------------------------------------------------------

async function openSession() {
  if (linkSession !== null) {
    const credential = ingestTokenCredential(linkSession.ingestToken);
    const existing = await getSession(baseUrl, linkSession.sessionId, { fetch: access.fetch, credential }).catch((error) => {
      if (error.status === 404) return null;
      if (error.status === 403) throw new Error("the write token in this link is not the session's");
      throw error;
    });
    const unusable = existing === null ? 'does not exist' : existing.status === 'ended' ? 'has already ended' : null;
    if (unusable !== null) {
      linkSession = null;
      elements.linkNote.hidden = true;
      throw new Error(`the session in this link ${unusable}; press Start for a new one`);
    }
    ingestToken = linkSession.ingestToken;
    return existing;
  }
  const created = await createSession(baseUrl, { metadata: { source: 'wavehouse recorder' } }, { fetch: access.fetch });
  ingestToken = created.ingestToken;
  return created;
}

function showShareLink() {
  const url = absoluteUrl(session.viewerUrl);
  elements.shareLink.value = url;
  elements.openViewer.href = url;
  // As the landing page's links: a tab opened with its opener starts with this tab's sign-in (access-tabs.js).
  elements.openViewer.rel = privateMode ? 'opener' : 'noopener';
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
    return fail(`Could not start a session: ${error.detail ?? error.message}`);
  }
  if (linkSession !== null) {
    // A recorder link starts one recording: the next Start creates a new session. The token
    // leaves the address bar so it is not shared by accident.
    linkSession = null;
    elements.linkNote.hidden = true;
    history.replaceState(null, '', location.pathname);
  }
  firstSeq = nextSeq = (session.lastSeq ?? 0) + 1;
  lastCapturedSeq = sentSeq = ackedSeq = firstSeq - 1;
  dropped = 0;
  backlogFull = false;
  showShareLink();
  renderCounts();
  producer = openProducer();
  window.addEventListener('devicemotion', onMotion);
  noDataTimer = setTimeout(() => {
    setMessage(
      'No motion data is arriving. This device may have no accelerometer, ' +
        'or the browser blocks it (Android Chrome: site settings, Motion sensors).',
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
  try {
    finish(await endRecording());
  } catch (error) {
    // A fatal error of the Producer has already said what happened.
    if (state !== 'stopping') return;
    elements.stop.disabled = false;
    setMessage(`Could not end the session (${error.detail ?? error.message}); press Stop to try again.`, 'error');
  }
}

/**
 * Ends the session once every captured sample is stored. Past `stopAckTimeoutMs` (the
 * network is down, say) it ends with what is stored: a phone cannot be asked to keep the
 * page open indefinitely, and the user is told how many samples that leaves out.
 */
async function endRecording() {
  try {
    return await producer.end({ timeoutMs: stopAckTimeoutMs });
  } catch (error) {
    if (!(error instanceof ProducerError && error.code === 'timeout')) throw error;
  }
  setMessage(`${producer.bufferedSamples} samples were not acknowledged within ${stopAckTimeoutMs / 1000} s and are lost.`, 'warning');
  const ended = await endSession(baseUrl, session.sessionId, ingestToken);
  producer.close();
  return ended;
}

function release() {
  stopCapture();
  wakeLock?.release().catch(() => undefined);
  wakeLock = null;
  producer?.close();
  setConnection('closed');
  renderCounts();
}

/** Whether Start can work, and the notice saying why not: a private server needs a sign-in, unless a recorder link is waiting. */
function checkSignIn() {
  const busy = state === 'starting' || state === 'recording' || state === 'stopping';
  signInMissing = signedOut && linkSession === null && !busy;
  elements.signInNeeded.hidden = !signInMissing;
  setState(state);
}

function finish(ended) {
  release();
  setState('ended');
  checkSignIn();
  const stored = ended?.sampleCount;
  if (elements.message.dataset.kind !== 'warning') {
    setMessage(stored === undefined ? 'The session has ended.' : `Recording ended: ${stored} samples stored.`);
  }
}

function fail(text) {
  if (session !== null) release();
  setState('failed');
  checkSignIn();
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
watchSignIn(elements.signInNeeded, (allowed) => {
  signedOut = !allowed;
  checkSignIn();
});
setConnection('closed');
renderCounts();
