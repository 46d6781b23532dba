import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, getData, ingestUrl, liveUrl, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

/** A binary frame (docs/protocol.md) of samples given as [seq, t, ...values]. */
function binaryFrame(rows: number[][]): Buffer {
  const n = rows.length;
  const width = rows[0].length - 2;
  const out = Buffer.alloc(8 + n * (width + 2) * 8);
  out.writeUInt8(1, 0);
  out.writeUInt16LE(width, 2);
  out.writeUInt32LE(n, 4);
  rows.forEach((row, i) => row.forEach((value, column) => out.writeDoubleLE(value, 8 + (column * n + i) * 8)));
  return out;
}

test('binary frames are stored, acked and shown live like JSON ones, values exact', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t);
  const session = await createSession(baseUrl, { channels: ['x', 'y'] });
  const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
  await viewer.opened;
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  const rows = Array.from({ length: 100 }, (_, i) => [i + 1, 1732345678901.25 + i * 0.001, 0.1 * i, i === 0 ? -0 : 5e-324 * i]);
  producer.socket.send(binaryFrame(rows.slice(0, 60)));
  producer.send({ samples: rows.slice(50).map(([seq, t, x, y]) => ({ seq, t, x, y })) });
  await producer.waitForAck(100);
  assert.deepEqual(producer.ofType('error'), []);
  const expected = rows.map(([seq, t, x, y]) => ({ seq, t, x, y }));
  await eventually(() => assert.equal(viewer.samples.length, 100));
  const stored = (await getData(baseUrl, session.sessionId)).samples;
  for (const received of [viewer.samples, stored]) {
    received.forEach((sample, i) => {
      for (const key of ['seq', 't', 'x', 'y'] as const) assert.ok(Object.is(sample[key], expected[i][key]), `${key} of sample ${i}`);
    });
  }
  producer.close();
  viewer.close();
});
