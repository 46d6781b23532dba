/**
 * A viewer resuming inside the recent window, just after frames that left it: the stored
 * history below the window is then an empty range, whose neighbours share one stored chunk.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

test('a viewer resuming with a fromSeq inside the recent window, above frames that left it, gets the rest, then live', async (t) => {
  // Room for one 5-sample frame (5 x 5 columns x 8 bytes): the older of two leaves once
  // committed. A batch age long enough that two frames sent together are one chunk.
  const { baseUrl, wsUrl } = await startApp(t, { LIVE_RECENT_WINDOW_BYTES: '250', WRITE_BATCH_MAX_AGE_MS: '200' });
  const session = await createSession(baseUrl);
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  producer.send({ samples: makeSamples(1, 5) });
  producer.send({ samples: makeSamples(6, 5) });
  await producer.waitForAck(10);
  producer.send({ samples: makeSamples(11, 1) });
  await producer.waitForAck(11);

  const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId, 8));
  await viewer.opened;
  producer.send({ samples: makeSamples(12, 2) });
  await eventually(() => {
    assert.equal(viewer.closed, null, `viewer closed: ${JSON.stringify(viewer.closed)}`);
    assert.deepEqual(viewer.samples, makeSamples(8, 6));
  });
  producer.close();
  viewer.close();
});
