/**
 * The landing page: creates a session and hands out its two links, the recorder's (which
 * carries the write token) and the viewer's (read only, to share). On a private server it
 * first signs the tab in with an API key (access-session.js); a page that sent a signed-out
 * visitor here names itself in the fragment (`#next=/view/...`), and the sign-in returns there.
 * On an open server the sign-in is offered too, as optional: the connectors and leaderboards
 * (landing-status.js) need a key in either mode.
 */
import { access, privateMode } from './access-session.js';
import { absoluteUrl, baseUrl, recorderLink } from './page-links.js';
import { show, showMessage } from './page-text.js';
import { createSession } from './wavehouse-sdk.js';

const button = document.getElementById('create-session');
const message = document.getElementById('message');
const links = document.getElementById('session-links');
const signIn = {
  card: document.getElementById('sign-in'),
  form: document.getElementById('sign-in-form'),
  key: document.getElementById('api-key'),
  signedIn: document.getElementById('signed-in'),
  signOut: document.getElementById('sign-out'),
  message: document.getElementById('sign-in-message'),
};

const refusals = {
  invalid_credential: 'That key was not accepted.',
  credential_expired: 'That key has expired.',
  credential_revoked: 'That key has been revoked.',
  rate_limited: 'Too many attempts: wait a minute and try again.',
};

async function create() {
  button.disabled = true;
  message.hidden = true;
  try {
    const session = await createSession(baseUrl, undefined, { fetch: access.fetch });
    document.getElementById('session-id').textContent = session.sessionId;
    document.getElementById('recorder-link').href = absoluteUrl(recorderLink(session.sessionId, session.ingestToken));
    document.getElementById('viewer-link').href = absoluteUrl(session.viewerUrl);
    links.hidden = false;
  } catch (error) {
    message.textContent = `Could not create a session: ${error.message}`;
    message.dataset.kind = 'error';
    message.hidden = false;
  } finally {
    renderAccess();
  }
}

/**
 * A path on this origin to return to after the sign-in; null for anything else (no open
 * redirect). Judged by the URL parser the browser will navigate with, not by its text: it
 * drops tabs and line breaks and reads `\` as `/`, so `/<tab>/evil.example` is `//evil.example`.
 */
function nextPath() {
  const next = new URLSearchParams(location.hash.replace(/^#/, '')).get('next');
  if (next === null) return null;
  try {
    const target = new URL(next, location.origin);
    return target.origin === location.origin ? target.pathname + target.search + target.hash : null;
  } catch {
    return null;
  }
}

async function submitKey(event) {
  event.preventDefault();
  const key = signIn.key.value.trim();
  signIn.form.querySelector('button').disabled = true;
  showMessage(signIn.message, '');
  try {
    await access.signIn(key);
    signIn.key.value = '';
    const next = nextPath();
    if (next !== null) location.assign(next);
  } catch (error) {
    showMessage(signIn.message, refusals[error.message] ?? `Could not sign in: ${error.message}`, 'error');
  } finally {
    signIn.form.querySelector('button').disabled = false;
  }
}

function renderAccess() {
  const identity = access.identity;
  signIn.form.hidden = identity !== null;
  signIn.signedIn.hidden = identity === null;
  if (identity !== null) {
    show(document.getElementById('key-id'), identity.keyId ?? '?');
    show(document.getElementById('key-scopes'), identity.scopes.join(' ') || 'none');
    show(document.getElementById('key-prefix'), identity.keyPrefix === null ? '' : `, sessions under ${identity.keyPrefix}`);
  } else if (access.signedOutBecause === 'expired') {
    showMessage(signIn.message, 'Your sign-in has expired: sign in again.', 'warning');
  } else if (access.signedOutBecause === 'signed-out') {
    showMessage(signIn.message, 'Signed out.');
  }
  button.disabled = privateMode && identity === null;
  for (const link of links.querySelectorAll('a[target="_blank"]')) {
    // The new tab starts with a copy of this tab's sessionStorage, and so signed in, only
    // when it knows its opener; same origin, so the opener gives it nothing it lacked.
    link.rel = privateMode ? 'opener' : 'noopener';
  }
}

button.addEventListener('click', create);
signIn.card.hidden = false;
document.getElementById('sign-in-private').hidden = !privateMode;
document.getElementById('sign-in-open').hidden = privateMode;
signIn.form.addEventListener('submit', submitKey);
signIn.signOut.addEventListener('click', () => access.signOut());
access.addEventListener('change', renderAccess);
renderAccess();
