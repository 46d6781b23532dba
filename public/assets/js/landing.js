/**
 * The landing page: creates a session and hands out its two links, the recorder's (which
 * carries the write token) and the viewer's (read only, to share).
 */
import { absoluteUrl, baseUrl, recorderLink } from './page-links.js';
import { createSession } from './wavehouse-sdk.js';

const button = document.getElementById('create-session');
const message = document.getElementById('message');
const links = document.getElementById('session-links');

async function create() {
  button.disabled = true;
  message.hidden = true;
  try {
    const session = await createSession(baseUrl);
    document.getElementById('session-id').textContent = session.sessionId;
    document.getElementById('recorder-link').href = absoluteUrl(recorderLink(session.sessionId, session.ingestToken));
    document.getElementById('viewer-link').href = absoluteUrl(session.viewerUrl);
    links.hidden = false;
  } catch (error) {
    message.textContent = `Could not create a session: ${error.message}`;
    message.dataset.kind = 'error';
    message.hidden = false;
  } finally {
    button.disabled = false;
  }
}

button.addEventListener('click', create);
