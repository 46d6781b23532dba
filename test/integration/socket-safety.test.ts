/**
 * No input from a socket client may take the server down or hold its memory: what one
 * socket sends affects that socket only.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import type WebSocket from 'ws';
import { decodeBinaryFrame, decodeTextFrame } from '../../src/ingest/frame-decoder.ts';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, liveUrl, makeSamples, RecordingSocket, refusedUpgrade } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { logLines } from '../support/log-lines.ts';

/** The TCP socket under a ws client, to write a frame ws itself would not. */
function tcpOf(socket: WebSocket): Duplex {
  return (socket as unknown as { _socket: Duplex })._socket;
}

/** The header of a masked client text frame (RFC 6455, 5.2) announcing `length` bytes, none of which follow. */
function unfinishedFrameHeader(length: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x81;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

async function counterValue(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('a socket handler that throws', () => {
  test('closes that producer with 1011, logged with its session id and up to 200 bytes of the frame, counted; others go on', async (t) => {
    const marker = `explode-${randomUUID()}`;
    const tail = `tail-${randomUUID()}`;
    const { lines, log } = logLines();
    const { baseUrl, wsUrl } = await startApp(
      t,
      {},
      {
        log,
        frameDecoders: {
          text: (data, ...rest) => {
            if (data.includes(marker)) throw new TypeError('a bug in the decoder');
            return decodeTextFrame(data, ...rest);
          },
          binary: decodeBinaryFrame,
        },
      },
    );
    const [hit, spared] = [await createSession(baseUrl), await createSession(baseUrl)];
    const sockets = {
      hitViewer: new RecordingSocket(liveUrl(wsUrl, hit.sessionId)),
      hitProducer: new RecordingSocket(ingestUrl(wsUrl, hit.sessionId, hit.ingestToken)),
      sparedViewer: new RecordingSocket(liveUrl(wsUrl, spared.sessionId)),
      sparedProducer: new RecordingSocket(ingestUrl(wsUrl, spared.sessionId, spared.ingestToken)),
    };
    t.after(() => {
      for (const socket of Object.values(sockets)) socket.close();
    });
    await Promise.all(Object.values(sockets).map((socket) => socket.opened));
    sockets.hitProducer.send({ samples: makeSamples(1, 3) });
    sockets.sparedProducer.send({ samples: makeSamples(1, 3) });
    await Promise.all([sockets.hitProducer.waitForAck(3), sockets.sparedProducer.waitForAck(3)]);

    sockets.hitProducer.send(`{"samples":[],"note":"${marker}${'x'.repeat(400)}${tail}"}`);
    assert.equal((await sockets.hitProducer.waitForClose()).code, 1011);

    sockets.sparedProducer.send({ samples: makeSamples(4, 3) });
    await sockets.sparedProducer.waitForAck(6);
    await eventually(() =>
      assert.deepEqual(
        sockets.sparedViewer.samples.map((sample) => sample.seq),
        [1, 2, 3, 4, 5, 6],
      ),
    );
    // The hit session itself is whole: its producer reconnects and streams on to its viewer.
    const again = new RecordingSocket(ingestUrl(wsUrl, hit.sessionId, hit.ingestToken));
    t.after(() => again.close());
    await again.opened;
    again.send({ samples: makeSamples(4, 2) });
    await again.waitForAck(5);
    await eventually(() =>
      assert.deepEqual(
        sockets.hitViewer.samples.map((sample) => sample.seq),
        [1, 2, 3, 4, 5],
      ),
    );
    assert.equal(sockets.hitViewer.closed, null);
    assert.equal(sockets.sparedViewer.closed, null);
    assert.equal(sockets.sparedProducer.closed, null);

    assert.equal(await counterValue(baseUrl, 'wavehouse_socket_handler_errors_total{kind="ingest"}'), 1);
    assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
    const failures = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 50);
    assert.equal(failures.length, 1, JSON.stringify(failures));
    assert.equal(failures[0].sessionId, hit.sessionId);
    assert.match(failures[0].err.message, /a bug in the decoder/);
    assert.ok(failures[0].frameHead.includes(marker));
    assert.ok(Buffer.byteLength(failures[0].frameHead) <= 200);
    assert.ok(!lines.some((line) => line.includes(tail)), 'no more than 200 bytes of the frame are logged');
  });
});

describe('frame size limits by kind of socket', () => {
  test('a viewer frame over a few KiB closes it with 1009, at once for an unfinished frame; producers keep the hard limit', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const viewers = {
      live: new RecordingSocket(liveUrl(wsUrl, session.sessionId)),
      legacy: new RecordingSocket(`${wsUrl}/ws/${session.sessionId}`),
      unfinished: new RecordingSocket(liveUrl(wsUrl, session.sessionId)),
    };
    const watching = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    t.after(() => watching.close());
    await Promise.all([...Object.values(viewers), watching].map((viewer) => viewer.opened));

    viewers.live.send('x'.repeat(8 * 1024));
    viewers.legacy.send('x'.repeat(8 * 1024));
    // 15 MiB announced and never sent: ws waits for none of it.
    tcpOf(viewers.unfinished.socket).write(unfinishedFrameHeader(15 * 1024 * 1024));
    for (const [name, viewer] of Object.entries(viewers)) assert.equal((await viewer.waitForClose()).code, 1009, name);

    // A producer on either path still sends frames far larger than a viewer may.
    const frame = { samples: makeSamples(1, 2_000) };
    assert.ok(JSON.stringify(frame).length > 64 * 1024);
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    producer.send(frame);
    await producer.waitForAck(2_000);
    producer.close();
    await producer.waitForClose();
    const legacyProducer = new RecordingSocket(`${wsUrl}/ws/${session.sessionId}?token=${encodeURIComponent(session.ingestToken)}`);
    t.after(() => legacyProducer.close());
    await legacyProducer.opened;
    legacyProducer.send({ samples: makeSamples(2_001, 2_000) });
    await legacyProducer.waitForAck(4_000);
    await eventually(() => assert.equal(watching.samples.length, 4_000));
    assert.equal(watching.closed, null, 'the other viewer goes on');
  });
});

describe('upgrade limits', () => {
  test('upgrades over RATE_LIMIT_UPGRADES_PER_MINUTE get 429 + Retry-After before the handshake; others and REST go on', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { TRUST_PROXY: '1', RATE_LIMIT_UPGRADES_PER_MINUTE: '3' });
    const session = await createSession(baseUrl);
    const [client, other] = ['198.51.100.7', '198.51.100.8'];
    for (let i = 0; i < 3; i++) {
      const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId), { 'x-forwarded-for': client });
      await viewer.opened;
      viewer.close();
      await viewer.waitForClose();
    }
    const limited = await refusedUpgrade(ingestUrl(wsUrl, session.sessionId, session.ingestToken), { 'x-forwarded-for': client });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8');
    const retryAfterS = Number(limited.headers['retry-after']);
    assert.ok(retryAfterS >= 1 && retryAfterS <= 60, `Retry-After ${retryAfterS}`);
    assert.equal(limited.body.code, 'rate_limited');
    assert.match(String(limited.body.detail), /at most 3 socket upgrades a minute/);

    const elsewhere = new RecordingSocket(liveUrl(wsUrl, session.sessionId), { 'x-forwarded-for': other });
    t.after(() => elsewhere.close());
    await elsewhere.opened;
    assert.equal((await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`, { headers: { 'x-forwarded-for': client } })).status, 200);
  });

  test('a client at its socket cap is refused before its session is looked up', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { MAX_SOCKETS_PER_IP: '1' });
    const session = await createSession(baseUrl);
    const held = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    t.after(() => held.close());
    await held.opened;
    // An unknown session would be 4404 after a lookup: 4429 says none was made.
    assert.deepEqual(await new RecordingSocket(liveUrl(wsUrl, crypto.randomUUID())).waitForClose(), {
      code: 4429,
      reason: 'at most 1 sockets per client',
    });
    assert.equal((await new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken)).waitForClose()).code, 4429);
    held.close();
    await held.waitForClose();
    // The server may see the close a moment after the client.
    await eventually(async () => {
      const socket = new RecordingSocket(liveUrl(wsUrl, crypto.randomUUID()));
      assert.equal((await socket.waitForClose()).code, 4404, 'under the cap, the lookup is made');
    });
  });
});
