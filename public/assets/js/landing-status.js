/**
 * The landing page's connectors and scheduler leaderboard. Both name sessions, so the server
 * answers them only to a key with sessions:read, in either mode: signed out, the page says so
 * and asks nothing (a refused request is an error in every console); signed in, it reads them
 * every few seconds while the tab is visible. A key that lacks the scope is told once, and the
 * page stops asking until the sign-in changes.
 */
import { access, privateMode } from './access-session.js';
import { baseUrl } from './page-links.js';
import { showMessage } from './page-text.js';
import { listConnectors, readLeaderboard, WavehouseHttpError } from './wavehouse-sdk.js';

const refreshMs = 5_000;
const keyPrefix = 'scheduler/';
const message = document.getElementById('connectors-message');
const connectorTable = document.getElementById('connector-table');
const leaderboard = document.getElementById('leaderboard');
const leaderboardBody = document.querySelector('#leaderboard-table tbody');
let timer = null;
let refused = false;

function time(iso) {
  return iso === null ? '-' : new Date(iso).toLocaleTimeString();
}

function cell(row, text, attributes = {}) {
  const td = row.insertCell();
  td.textContent = text;
  for (const [name, value] of Object.entries(attributes)) td.dataset[name] = value;
  return td;
}

function renderConnectors(connectors) {
  const body = connectorTable.tBodies[0];
  body.replaceChildren();
  for (const connector of connectors) {
    const row = body.insertRow();
    row.dataset.id = connector.id;
    cell(row, connector.name);
    cell(row, connector.state, { state: connector.state });
    cell(row, time(connector.lastSuccessAt)).title = connector.lastSuccessAt ?? '';
    cell(row, connector.lastError ?? '-').className = 'wrap';
    cell(row, connector.breaker, { breaker: connector.breaker });
    cell(row, time(connector.nextPollAt)).title = connector.nextPollAt ?? '';
    const stream = row.insertCell();
    for (const { key, sessionId } of connector.sessions) {
      const link = document.createElement('a');
      link.href = `/view/${sessionId}`;
      link.textContent = key;
      stream.append(link, ' ');
    }
  }
  connectorTable.hidden = connectors.length === 0;
  showMessage(message, connectors.length === 0 ? 'No connectors yet: wavehouse connectors create, or wavehouse demo iot.' : '');
}

async function renderLeaderboard() {
  const options = { fetch: access.fetch };
  const read = (channel, fn) => readLeaderboard(baseUrl, { keyPrefix, channel, fn: [fn] }, options);
  const [win, duration, energy, cost] = await Promise.all([
    read('win', 'avg'),
    read('duration', 'avg'),
    read('energy', 'sum'),
    read('cost', 'sum'),
  ]);
  const fnValue = (board, key, fn) => board.rows.find((row) => row.key === key)?.values[fn] ?? null;
  leaderboardBody.replaceChildren();
  for (const row of win.rows) {
    const tr = leaderboardBody.insertRow();
    tr.dataset.key = row.key;
    cell(tr, row.key.slice(keyPrefix.length));
    cell(tr, String(row.count));
    const meanMs = fnValue(duration, row.key, 'avg');
    const energyMj = fnValue(energy, row.key, 'sum');
    cell(tr, row.values.avg === null ? '-' : `${(row.values.avg * 100).toFixed(1)}%`);
    cell(tr, meanMs === null ? '-' : `${meanMs.toFixed(0)} ms`);
    cell(tr, energyMj === null ? '-' : `${(energyMj / 1_000).toFixed(1)} J`);
    cell(tr, String(fnValue(cost, row.key, 'sum') ?? '-'));
  }
  leaderboard.hidden = win.rows.length === 0;
}

async function refresh() {
  try {
    renderConnectors(await listConnectors(baseUrl, { fetch: access.fetch }));
    await renderLeaderboard();
  } catch (error) {
    if (error instanceof WavehouseHttpError && (error.status === 401 || error.status === 403)) {
      refused = true;
      connectorTable.hidden = true;
      leaderboard.hidden = true;
      showMessage(message, `This key cannot list connectors (${error.code}): it needs sessions:read.`, 'warning');
    } else {
      showMessage(message, `Could not read the connectors: ${error.message}`, 'error');
    }
  }
}

function schedule() {
  clearTimeout(timer);
  if (!access.signedIn || refused) return;
  timer = setTimeout(async () => {
    if (document.visibilityState === 'visible') await refresh();
    schedule();
  }, refreshMs);
}

function update() {
  refused = false;
  clearTimeout(timer);
  if (!access.signedIn) {
    connectorTable.hidden = true;
    leaderboard.hidden = true;
    const where = privateMode ? 'sign in above' : 'sign in above (optional on this open server)';
    showMessage(message, `Listing connectors and leaderboards needs an API key with sessions:read: ${where}.`, 'warning');
    return;
  }
  refresh().then(schedule);
}

access.addEventListener('change', update);
update();

window.__wavehouseLanding = Object.freeze({ refresh });
