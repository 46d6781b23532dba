/**
 * No input from a socket client may take the server down or hold its memory: what one
 * socket sends affects that socket only.
 */
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import type WebSocket from 'ws';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

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

describe('frame size limits by kind of socket', () => {
  test('a viewer sending a frame over its few KiB is closed with 1009, at once for a frame it has not finished; producers keep the hard limit', async (t) => {
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
