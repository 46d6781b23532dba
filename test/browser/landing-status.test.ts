/**
 * The landing page's connectors and scheduler leaderboard, in headless Chromium against the
 * real server: signed out it says a key is needed and asks nothing (a refused request would be
 * an error in the console, which fails the test), in open and private mode alike; signed in it
 * shows each connector's status and the leaderboard the server answers; a key without
 * sessions:read is told so once.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import { openStreams, replay } from '../../src/demo/scheduler-demo.ts';
import { policies } from '../../src/demo/scheduler-sim.ts';
import { ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import type { AccessCredential } from '../../src/sdk/types.ts';
import { createKey, ecPrivateJwk, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { connectorSettings, createThingSpeakConnector } from '../support/connectors.ts';
import { eventually } from '../support/eventually.ts';
import { openPage, screenshot, skipReason, useChromium } from '../support/pages.ts';

useChromium();

const fixed = (key: string): AccessCredential => ({ token: async () => key, renew: async () => null, close: () => undefined });

/** An app with a connector on a stand-in and the scheduler demo's streams, all stored. */
async function appWithStatus(t: TestContext, env: Record<string, string>) {
  const standIn = await ThingSpeakStandIn.start();
  t.after(() => standIn.close());
  standIn.addChannel(41, ['Water Level (cm)', 'Flow (L/min)', null, null, null, null, null, null]);
  standIn.addEntries(41, 5);
  const running = await startApp(t, { ...connectorSettings(), ...env });
  const admin = await createKey(running.databaseUrl, { name: 'admin', role: 'admin' });
  const connector = await createThingSpeakConnector(running.baseUrl, admin.key, { baseUrl: standIn.baseUrl, channelId: 41 }, 0.5);
  const options = {
    baseUrl: running.baseUrl,
    credential: fixed(admin.key),
    seed: 3,
    tasks: 40,
    speed: 1e6,
    tickMs: 10,
    startT: Date.UTC(2026, 0, 1),
    signal: new AbortController().signal,
  };
  await replay(options, await openStreams(options), async () => undefined);
  const reader = await createKey(running.databaseUrl, { name: 'reader', role: 'reader' });
  return { ...running, connectorId: connector.id, reader: reader.key };
}

/** Requests the page sends to the listing endpoints. */
function listingRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request) => {
    if (/\/api\/v1\/(connectors|aggregate)/.test(request.url())) urls.push(request.url());
  });
  return urls;
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.fill('#api-key', key);
  await page.click('#sign-in-form button[type="submit"]');
  await page.waitForSelector('#signed-in:not([hidden])', { timeout: 10_000 });
}

async function assertShowsStatus(page: Page, connectorId: string): Promise<void> {
  const row = `#connector-table tr[data-id="${connectorId}"]`;
  await page.waitForSelector(`${row} td[data-state="running"]`, { timeout: 10_000 });
  assert.equal(await page.isVisible('#connector-table'), true);
  const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
  assert.equal(cells[0], 'a channel');
  assert.notEqual(cells[2], '-', 'a last success');
  assert.equal(cells[3], '-', 'no last error');
  assert.equal(cells[4], 'closed');
  assert.equal(
    await page.getAttribute(`${row} a`, 'href'),
    `/view/${await page.$eval(`${row} a`, (a) => a.getAttribute('href')?.slice(6))}`,
  );
  assert.equal(await page.textContent(`${row} a`), 'thingspeak/41');
  await page.waitForSelector('#leaderboard:not([hidden])');
  const rows = await page.$$eval('#leaderboard-table tbody tr', (trs) =>
    trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)),
  );
  assert.deepEqual(rows.map((r) => r[0]).sort(), [...policies].sort());
  for (const r of rows) {
    assert.equal(r[1], '40');
    assert.match(r[2] ?? '', /^\d+\.\d%$/);
    assert.match(r[3] ?? '', /^\d+ ms$/);
  }
}

describe('the landing page lists connectors and the leaderboard', { skip: skipReason }, () => {
  test('on an open server: a key is asked for, nothing is requested without one, and a reader sees both', async (t) => {
    const { baseUrl, connectorId, reader } = await appWithStatus(t, { ACCESS_TOKEN_SIGNING_KEY: JSON.stringify(ecPrivateJwk()) });
    const page = await openPage(t);
    const requests = listingRequests(page);
    await page.goto(baseUrl);
    await page.waitForSelector('#connectors-message:not([hidden])');
    assert.match((await page.textContent('#connectors-message')) ?? '', /needs an API key with sessions:read: sign in above \(optional/);
    assert.equal(await page.isVisible('#sign-in-open'), true);
    assert.equal(await page.isVisible('#sign-in-private'), false);
    assert.equal(await page.isVisible('#connector-table'), false);
    assert.equal(await page.isVisible('#leaderboard'), false);
    await page.waitForTimeout(300);
    assert.deepEqual(requests, [], 'nothing asked before a sign-in');

    await signIn(page, reader);
    await assertShowsStatus(page, connectorId);
    await screenshot(page, 'landing-connectors-leaderboard');
  });

  test('on a private server: the same, and a key without sessions:read is told once', async (t) => {
    const { baseUrl, connectorId, reader, databaseUrl } = await appWithStatus(t, privateMode());
    const page = await openPage(t, [/status of 403/]);
    const requests = listingRequests(page);
    await page.goto(baseUrl);
    await page.waitForSelector('#connectors-message:not([hidden])');
    assert.match((await page.textContent('#connectors-message')) ?? '', /needs an API key with sessions:read: sign in above\.$/);
    assert.deepEqual(requests, []);

    const writeOnly = await createKey(databaseUrl, { name: 'ingest only', scopes: ['sessions:write'] });
    await signIn(page, writeOnly.key);
    await page.waitForFunction(() => /cannot list connectors/.test(document.getElementById('connectors-message')?.textContent ?? ''));
    assert.match((await page.textContent('#connectors-message')) ?? '', /\(insufficient_scope\): it needs sessions:read/);
    const refusedRequests = requests.length;
    await page.waitForTimeout(6_000);
    assert.equal(requests.length, refusedRequests, 'a refusal is not asked again');

    await page.click('#sign-out');
    await signIn(page, reader);
    await eventually(() => assertShowsStatus(page, connectorId), { timeoutMs: 10_000 });
  });
});
