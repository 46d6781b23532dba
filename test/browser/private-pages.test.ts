/**
 * The pages on a private server (AUTH_MODE=private), in headless Chromium: the landing page's
 * sign-in with an API key, the viewer and the recorder on the tab's tokens, renewal before
 * expiry and across a live viewer's reconnect, and one refresh at a time within a tab and
 * across tabs that hold the same pair (a refresh token is single-use: a second use would
 * revoke the family).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import { bearer, call, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import type { CreatedSession } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import {
  dispatchMotion,
  failOnPageErrors,
  openPage,
  readings,
  screenshot,
  skipReason,
  TestProducer,
  useChromium,
  viewerStatus,
  waitForPlotted,
  waitForRecorder,
  waitForViewer,
} from '../support/pages.ts';
import { startSplitProxy } from '../support/split-proxy.ts';

useChromium();

interface AccessHook {
  readonly status: { mode: string; signedIn: boolean; refreshes: number; signedOutBecause: string | null };
  refresh(): Promise<void>;
}

declare global {
  interface Window {
    __wavehouseAccess: AccessHook;
  }
}

interface StoredPair {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
}

/** A private app and a key of `role` made as the CLI makes one. */
async function privateApp(t: TestContext, env: Record<string, string> = {}, role = 'writer') {
  const running = await startApp(t, { ...privateMode(), ...env });
  const { key } = await createKey(running.databaseUrl, { name: 'pages', role, keyPrefix: null });
  return { ...running, key };
}

async function signIn(page: Page, baseUrl: string, key: string): Promise<void> {
  await page.goto(baseUrl);
  await page.fill('#api-key', key);
  await page.click('#sign-in-form button[type="submit"]');
  await page.waitForSelector('#signed-in:not([hidden])', { timeout: 10_000 });
}

/** Everything the page's origin keeps in its two storages. */
const storages = (page: Page) =>
  page.evaluate(() => ({ session: JSON.stringify({ ...sessionStorage }), local: JSON.stringify({ ...localStorage }) }));

const storedPair = (page: Page) =>
  page.evaluate(() => JSON.parse(sessionStorage.getItem('wavehouse.access') ?? 'null') as StoredPair | null);

const accessStatus = (page: Page) => page.evaluate(() => window.__wavehouseAccess.status);

async function createSessionWith(baseUrl: string, key: string, body: Record<string, unknown> = {}): Promise<CreatedSession> {
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(key), body);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
}

/** Counts the refreshes the pages of `page`'s browser context send. */
function countRefreshes(page: Page): { count: number } {
  const counter = { count: 0 };
  page.context().on('request', (request) => {
    if (request.url().endsWith('/api/v1/auth/refresh')) counter.count += 1;
  });
  return counter;
}

describe('the pages on a private server, in Chromium', { skip: skipReason }, () => {
  test('a key signs the tab in and is kept nowhere; the tab creates, records and views a session; sign-out ends it', async (t) => {
    const { baseUrl, key } = await privateApp(t);
    // The wrong key's 401, which Chromium reports on the console.
    const page = await openPage(t, [/status of 401/]);
    await page.goto(baseUrl);
    assert.equal(await page.isVisible('#sign-in'), true, 'a private server asks for a sign-in');
    assert.equal(await page.isDisabled('#create-session'), true, 'nothing is created before it');

    await page.fill('#api-key', `wh_${'A'.repeat(43)}`);
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForSelector('#sign-in-message:not([hidden])');
    assert.match((await page.textContent('#sign-in-message')) ?? '', /not accepted/);
    assert.equal((await accessStatus(page)).signedIn, false);

    await page.fill('#api-key', key);
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForSelector('#signed-in:not([hidden])');
    assert.equal(await page.textContent('#key-scopes'), 'sessions:read sessions:write');
    assert.equal(await page.inputValue('#api-key'), '', 'the key leaves the form');
    const stored = await storages(page);
    assert.ok(!stored.session.includes(key) && !stored.local.includes(key), 'the key is in no storage');
    assert.equal(stored.local, '{}', 'nothing in localStorage');
    const pair = await storedPair(page);
    assert.ok(pair?.accessToken && pair.refreshToken, 'the tokens are in sessionStorage');
    await screenshot(page, 'private-landing-signed-in');

    await page.click('#create-session');
    await page.waitForSelector('#session-links:not([hidden])', { timeout: 10_000 });
    const sessionId = (await page.textContent('#session-id')) ?? '';
    const recorderHref = (await page.getAttribute('#recorder-link', 'href')) ?? '';

    // The viewer link opens a tab that starts with this tab's tokens.
    const [viewerPage] = await Promise.all([page.context().waitForEvent('page'), page.click('#viewer-link')]);
    failOnPageErrors(t, viewerPage);
    await waitForViewer(viewerPage, { session: 'created', connection: 'connected' });

    await page.goto(recorderHref);
    await page.click('#start');
    await waitForRecorder(page, (s) => s.state === 'recording' && s.connection === 'connected', 'recording');
    await dispatchMotion(page, readings(0, 20));
    await waitForRecorder(page, (s) => s.ackedSeq === 20, 'ack of seq 20');
    await waitForPlotted(viewerPage, 20);
    await page.click('#stop');
    await waitForRecorder(page, (s) => s.state === 'ended', 'ended');
    await waitForViewer(viewerPage, { session: 'ended' });

    // A link cannot carry the token: the viewer fetches the file with it and saves it.
    const [download] = await Promise.all([viewerPage.waitForEvent('download'), viewerPage.click('#downloads a[data-format="csv"]')]);
    const csv = readFileSync((await download.path()) ?? '', 'utf8');
    assert.equal(csv.split('\n').filter(Boolean).length, 1 + 20, 'the CSV holds the header and every sample');
    assert.equal(download.suggestedFilename(), `wavehouse-${sessionId}.csv`);

    await page.goto(baseUrl);
    const before = await storedPair(page);
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in-form:not([hidden])');
    assert.equal((await storages(page)).session, '{}', 'sign-out clears the tokens');
    const reuse = await call(`${baseUrl}/api/v1/auth/refresh`, 'POST', {}, { refreshToken: before?.refreshToken });
    assert.equal(reuse.status, 401, 'the family is revoked on the server');
    await eventually(async () => assert.equal((await accessStatus(viewerPage)).signedIn, false, 'the sibling tab is signed out too'));
  });

  test('without a sign-in the viewer and the recorder say so, and the sign-in returns to them', async (t) => {
    const { baseUrl, key } = await privateApp(t);
    const session = await createSessionWith(baseUrl, key);
    const page = await openPage(t);

    await page.goto(`${baseUrl}/record`);
    await page.waitForSelector('#sign-in-needed:not([hidden])');
    assert.equal(await page.isDisabled('#start'), true);

    await page.goto(`${baseUrl}/view/${session.sessionId}`);
    await waitForViewer(page, { session: 'signed out', connection: 'closed' });
    assert.match((await page.textContent('#sign-in-needed')) ?? '', /private/);
    await screenshot(page, 'private-viewer-signed-out');
    await page.click('#sign-in-needed a');
    await page.fill('#api-key', key);
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForURL(`${baseUrl}/view/${session.sessionId}`);
    await waitForViewer(page, { session: 'created', connection: 'connected' });
    assert.equal(await page.isHidden('#sign-in-needed'), true);
  });

  test('the sign-in returns only to a path on its own origin, however the next link is disguised', async (t) => {
    const { baseUrl, key } = await privateApp(t);
    const page = await openPage(t);
    const origin = new URL(baseUrl).origin;
    const foreign: string[] = [];
    await page.context().route(
      (url) => url.origin !== origin,
      (route) => {
        foreign.push(route.request().url());
        return route.abort();
      },
    );
    // The URL parser drops tabs and line breaks anywhere, and reads a backslash as a slash.
    const disguised = ['/%09/evil.example', '/%0A/evil.example', '/%0D/evil.example', '/%09%0A/evil.example', '//evil.example'];
    const foreignOnes = ['/%5C%5Cevil.example', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', 'JaVaScRiPt%3Aalert(1)'];
    for (const next of [...disguised, ...foreignOnes]) {
      await page.goto(`${baseUrl}/#next=${next}`);
      await page.fill('#api-key', key);
      await page.click('#sign-in-form button[type="submit"]');
      await eventually(async () => assert.ok(foreign.length > 0 || (await page.isVisible('#signed-in')), 'signed in'));
      // The sign-in, once shown, has already sent the page on (or not): give the request time to arrive.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(foreign, [], `next=${next} leads nowhere else`);
      assert.equal(page.url(), `${baseUrl}/#next=${next}`, `next=${next} leaves the page where it is`);
      await page.click('#sign-out');
      await page.waitForSelector('#sign-in-form:not([hidden])');
    }
    await page.goto(`${baseUrl}/#next=${encodeURIComponent('/record?x=1#y')}`);
    await page.fill('#api-key', key);
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForURL(`${baseUrl}/record?x=1#y`);
    await page.waitForSelector('#start:not([disabled])');
    // Before the app stops: the page may still be fetching its icon.
    await page.close();
  });

  test("the recorder's viewer link opens a tab that starts signed in", async (t) => {
    const { baseUrl, key } = await privateApp(t);
    const page = await openPage(t);
    await signIn(page, baseUrl, key);
    await page.goto(`${baseUrl}/record`);
    await page.click('#start');
    await waitForRecorder(page, (s) => s.state === 'recording' && s.connection === 'connected', 'recording');
    await dispatchMotion(page, readings(0, 5));
    await waitForRecorder(page, (s) => s.ackedSeq === 5, 'ack of seq 5');
    const [viewerPage] = await Promise.all([page.context().waitForEvent('page'), page.click('#open-viewer')]);
    failOnPageErrors(t, viewerPage);
    await viewerPage.waitForLoadState();
    assert.equal((await accessStatus(viewerPage)).signedIn, true);
    await waitForPlotted(viewerPage, 5);
    await page.click('#stop');
    await waitForRecorder(page, (s) => s.state === 'ended', 'ended');
  });

  test('a recorder link records into its session with no sign-in, in a fresh browser; its next recording needs one', async (t) => {
    const { baseUrl, key } = await privateApp(t);
    const session = await createSessionWith(baseUrl, key);
    const link = `${baseUrl}/record#${new URLSearchParams({ session: session.sessionId, token: session.ingestToken })}`;
    const page = await openPage(t);
    await page.goto(link);
    assert.equal((await accessStatus(page)).signedIn, false);
    assert.equal(await page.isHidden('#sign-in-needed'), true, 'the link needs no sign-in');
    assert.equal(await page.isDisabled('#start'), false);

    await page.click('#start');
    await waitForRecorder(page, (s) => s.state === 'recording' && s.connection === 'connected', 'recording');
    const sent = readings(0, 30);
    await dispatchMotion(page, sent);
    await waitForRecorder(page, (s) => s.ackedSeq === 30, 'ack of seq 30');
    await page.click('#stop');
    await waitForRecorder(page, (s) => s.state === 'ended', 'ended');
    assert.equal(await page.isDisabled('#start'), true, 'a new session needs the sign-in');
    await page.waitForSelector('#sign-in-needed:not([hidden])');

    const stored = await call(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=json`, 'GET', bearer(key));
    assert.equal(stored.status, 200);
    assert.deepEqual(
      stored.body.samples.map((sample: { seq: number; ax: number; ay: number; az: number }) => [
        sample.seq,
        sample.ax,
        sample.ay,
        sample.az,
      ]),
      sent.map(([x, y, z], i) => [i + 1, x, y, z]),
      'every reading stored once, exactly',
    );
    assert.equal((await call(`${baseUrl}/api/v1/sessions/${session.sessionId}`, 'GET', bearer(key))).body.status, 'ended');
  });

  test('a reader key cannot start a recording; the recorder says why', async (t) => {
    const { baseUrl, key } = await privateApp(t, {}, 'reader');
    const page = await openPage(t, [/status of 403/]);
    await signIn(page, baseUrl, key);
    await page.goto(`${baseUrl}/record`);
    // Chromium gives pages DeviceMotionEvent only on secure origins; 127.0.0.1 is one.
    await page.click('#start');
    await waitForRecorder(page, (s) => s.state === 'failed', 'failed');
    assert.match((await page.textContent('#message')) ?? '', /insufficient_scope|scope/);
  });

  test('a short-lived token is renewed before it expires, and a live viewer outlives it and reconnects with a fresh one', async (t) => {
    // 60 s is the shortest ACCESS_TOKEN_TTL_S allowed: the page renews at 45 s.
    const { baseUrl, wsUrl, key } = await privateApp(t, { ACCESS_TOKEN_TTL_S: '60', INGEST_MAX_SAMPLES_PER_S: '0' });
    const session = await createSessionWith(baseUrl, key, { sampleRateHz: 1000 });
    const producer = await TestProducer.open(t, wsUrl, session, 1_000);
    producer.stream();
    const page = await openPage(t);
    const socketUrls: string[] = [];
    page.on('websocket', (socket) => socketUrls.push(socket.url()));
    await signIn(page, baseUrl, key);
    const signedInAt = Date.now();
    const first = await storedPair(page);
    await page.goto(`${baseUrl}/view/${session.sessionId}`);
    await waitForPlotted(page, producer.lastSentSeq);
    assert.equal(new URL(socketUrls[0]).searchParams.get('access_token'), first?.accessToken);

    await eventually(async () => assert.equal((await accessStatus(page)).refreshes, 1), { timeoutMs: 50_000, intervalMs: 500 });
    const renewed = await storedPair(page);
    assert.ok(Date.now() - signedInAt < 60_000, 'renewed before the first token expired');
    assert.notEqual(renewed?.accessToken, first?.accessToken);
    assert.notEqual(renewed?.refreshToken, first?.refreshToken, 'the refresh token rotates');

    const sessionUrl = `${baseUrl}/api/v1/sessions/${session.sessionId}`;
    await eventually(async () => assert.equal((await call(sessionUrl, 'GET', bearer(first?.accessToken ?? ''))).status, 401), {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    // The socket opened with the first token outlives it...
    await waitForPlotted(page, producer.lastSentSeq);
    await waitForViewer(page, { connection: 'connected', reconnects: 0 });
    // ...and a reconnect carries the renewed one, which the server takes.
    await page.evaluate(() => window.__wavehouseViewer.dropConnection());
    await waitForViewer(page, { connection: 'connected', reconnects: 1 });
    await waitForPlotted(page, producer.lastSentSeq + 200);
    assert.equal(new URL(socketUrls.at(-1) ?? '').searchParams.get('access_token'), renewed?.accessToken);
    assert.equal((await accessStatus(page)).signedIn, true);
  });

  test('a live viewer whose fresh tokens are refused stops and says so, without a loop of refreshes and reconnects', async (t) => {
    // Pages and REST on one instance, sockets on another that signs with its own key (a rotation
    // half done): the tab's refreshes succeed, and every token they give is refused on the socket.
    const { baseUrl: pagesUrl, key } = await privateApp(t);
    const sockets = await startApp(t, privateMode());
    const baseUrl = await startSplitProxy(t, pagesUrl, sockets.baseUrl);
    const session = await createSessionWith(pagesUrl, key);
    const page = await openPage(t);
    const refreshes = countRefreshes(page);
    const upgrades: string[] = [];
    page.on('websocket', (socket) => upgrades.push(socket.url()));
    await signIn(page, baseUrl, key);
    await page.goto(`${baseUrl}/view/${session.sessionId}`);
    await waitForViewer(page, { connection: 'closed' });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.deepEqual({ upgrades: upgrades.length, refreshes: refreshes.count }, { upgrades: 1, refreshes: 0 }, 'refused once, and final');
    assert.equal((await viewerStatus(page)).connection, 'closed');
    assert.match((await page.textContent('#message')) ?? '', /no longer accepts this tab's sign-in \(invalid_credential\)/);
    assert.equal((await accessStatus(page)).signedIn, true, 'REST still takes the tokens: the tab stays signed in');
  });

  test('refreshes are one at a time: concurrent calls in a tab share one, and two tabs holding one pair keep its family', async (t) => {
    const { baseUrl, key } = await privateApp(t);
    const page = await openPage(t);
    const refreshes = countRefreshes(page);
    await signIn(page, baseUrl, key);

    await page.evaluate(() => Promise.all([1, 2, 3].map(() => window.__wavehouseAccess.refresh())));
    assert.equal(refreshes.count, 1, 'three concurrent refreshes in a tab send one');

    // A tab opened with its opener starts with a copy of the opener's sessionStorage: the same refresh token.
    const [sibling] = await Promise.all([page.context().waitForEvent('page'), page.evaluate(() => void window.open('/'))]);
    failOnPageErrors(t, sibling);
    await sibling.waitForSelector('#signed-in:not([hidden])');
    assert.deepEqual(await storedPair(sibling), await storedPair(page), 'the new tab holds the same pair');

    await Promise.all([page, sibling].map((tab) => tab.evaluate(() => window.__wavehouseAccess.refresh())));
    assert.equal(refreshes.count, 2, 'the second tab takes the pair the first renewed instead of reusing the refresh token');
    const [mine, theirs] = [await storedPair(page), await storedPair(sibling)];
    assert.equal(mine?.refreshToken, theirs?.refreshToken);
    for (const tab of [page, sibling]) assert.equal((await accessStatus(tab)).signedIn, true);

    // The family is intact: the next refresh works, and the other tab follows it.
    await sibling.evaluate(() => window.__wavehouseAccess.refresh());
    await eventually(async () => assert.equal((await storedPair(page))?.refreshToken, (await storedPair(sibling))?.refreshToken));
    const pair = await storedPair(page);
    assert.equal((await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(pair?.accessToken ?? ''))).status, 201);
  });
});
