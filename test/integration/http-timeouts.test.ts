import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, liveUrl, RecordingSocket } from '../support/clients.ts';
import { storeSamplesDirectly } from '../support/export-streams.ts';
import { RawConnection } from '../support/raw-connection.ts';

const headersTimeoutMs = 500;
const requestTimeoutMs = 1_000;
const keepAliveTimeoutMs = 500;
const timeouts = {
  HTTP_HEADERS_TIMEOUT_MS: String(headersTimeoutMs),
  HTTP_REQUEST_TIMEOUT_MS: String(requestTimeoutMs),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: String(keepAliveTimeoutMs),
};
/**
 * A bound is enforced by a check every quarter of the headers timeout (server.ts), so a
 * connection is closed at most 125 ms past its bound here; the rest is slack for a busy machine.
 */
const slackMs = 2_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('slow clients are cut off', () => {
  test('a connection that sends nothing is closed once the headers timeout passes', async (t) => {
    const { baseUrl } = await startApp(t, timeouts);
    const connection = new RawConnection(baseUrl);
    await connection.connected;
    const elapsedMs = await connection.closedWithin(headersTimeoutMs + slackMs, performance.now());
    assert.ok(elapsedMs >= headersTimeoutMs - 50, `closed after ${elapsedMs} ms, before its bound`);
  });

  test('headers that stop part way, or trickle in a byte at a time, are answered 408 and closed', async (t) => {
    const { baseUrl } = await startApp(t, timeouts);
    const stalled = new RawConnection(baseUrl);
    const trickling = new RawConnection(baseUrl);
    await Promise.all([stalled.connected, trickling.connected]);
    const startedMs = performance.now();
    stalled.write('GET /health HTTP/1.1\r\nHost: wavehouse\r\nX-Slow: ');
    trickling.write('GET /health HTTP/1.1\r\n');
    trickling.trickle(`X-Slow: ${'a'.repeat(1_000)}\r\n\r\n`, 50);
    for (const connection of [stalled, trickling]) {
      await connection.closedWithin(headersTimeoutMs + slackMs, startedMs);
      assert.match(connection.received, /^HTTP\/1\.1 408 /);
    }
  });

  test('a body that never comes, or trickles in, is cut once the request timeout passes', async (t) => {
    const { baseUrl } = await startApp(t, timeouts);
    const session = await createSession(baseUrl);
    const head =
      `POST /api/v1/sessions/${session.sessionId}/end HTTP/1.1\r\nHost: wavehouse\r\n` +
      `Authorization: Bearer ${session.ingestToken}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n`;
    const silent = new RawConnection(baseUrl);
    const trickling = new RawConnection(baseUrl);
    await Promise.all([silent.connected, trickling.connected]);
    const startedMs = performance.now();
    silent.write(head);
    trickling.write(head);
    trickling.trickle(' '.repeat(5_000), 100);
    for (const connection of [silent, trickling]) {
      await connection.closedWithin(requestTimeoutMs + slackMs, startedMs);
      assert.doesNotMatch(connection.received, /^HTTP\/1\.1 200 /, 'the end was never run');
    }
    const record = (await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json()) as { status: string };
    assert.notEqual(record.status, 'ended');
  });
});

describe('what the timeouts leave alone', () => {
  test('a keep-alive connection serves a second request after longer than the request timeout', async (t) => {
    const { baseUrl } = await startApp(t, { ...timeouts, HTTP_KEEP_ALIVE_TIMEOUT_MS: String(4 * requestTimeoutMs) });
    const connection = new RawConnection(baseUrl);
    await connection.connected;
    const request = 'GET /health HTTP/1.1\r\nHost: wavehouse\r\n\r\n';
    connection.write(request);
    assert.match(await connection.response(0), /^HTTP\/1\.1 200 /);
    await sleep(requestTimeoutMs + headersTimeoutMs);
    connection.write(request);
    assert.match(await connection.response(1), /^HTTP\/1\.1 200 /);
    assert.ok(connection.isOpen, 'the connection is kept alive');
  });

  test('an idle keep-alive connection is closed once the keep-alive timeout passes', async (t) => {
    const { baseUrl } = await startApp(t, timeouts);
    const connection = new RawConnection(baseUrl);
    await connection.connected;
    connection.write('GET /health HTTP/1.1\r\nHost: wavehouse\r\n\r\n');
    assert.match(await connection.response(0), /^HTTP\/1\.1 200 /);
    await connection.closedWithin(keepAliveTimeoutMs + slackMs, performance.now());
  });

  test('an export streamed for longer than the request timeout is not cut', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t, timeouts);
    const session = await createSession(baseUrl);
    // About 20 MB of CSV: more than the socket buffers hold, so the server is still sending
    // after the reader's pause, as an export of millions of samples is for minutes.
    const samples = 200_000;
    await storeSamplesDirectly(databaseUrl, session.sessionId, 1, samples);
    const { lines, bytes } = await new Promise<{ lines: number; bytes: number }>((resolve, reject) => {
      http
        .get(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=csv`, (response) => {
          assert.equal(response.statusCode, 200);
          let lines = 0;
          let bytes = 0;
          response.once('data', () => {
            response.pause();
            setTimeout(() => response.resume(), 2 * requestTimeoutMs + headersTimeoutMs);
          });
          response.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            for (const byte of chunk) if (byte === 0x0a) lines++;
          });
          // On close, not end: a body cut short must show as missing lines, not as a hang.
          response.on('close', () => resolve({ lines, bytes }));
          response.on('error', () => undefined);
        })
        .on('error', reject);
    });
    assert.equal(lines, samples + 1, `the header line and every sample (${bytes} bytes received)`);
    assert.ok(bytes > 12 * 1024 * 1024, `the body (${bytes} bytes) outlasts the socket buffers`);
  });

  test('an idle WebSocket stays open well past every HTTP timeout', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, timeouts);
    const session = await createSession(baseUrl);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await viewer.opened;
    await sleep(3 * requestTimeoutMs + headersTimeoutMs);
    assert.equal(viewer.closed, null, 'the viewer was not closed');
    viewer.close();
    await viewer.waitForClose();
  });
});
