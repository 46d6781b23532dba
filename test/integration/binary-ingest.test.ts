import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startApp } from '../support/app.ts';
import { binaryFrame, createSession, getData, ingestUrl, liveUrl, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

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

test('frames by encoding, new and duplicate samples and frames sent live are counted in /metrics, each once', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t);
  const session = await createSession(baseUrl, { channels: ['x'] });
  const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
  t.after(() => viewer.close());
  await viewer.opened;
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  t.after(() => producer.close());
  await producer.opened;
  const counted = async () => {
    const text = await (await fetch(`${baseUrl}/metrics`)).text();
    const value = (series: string) => Number(text.match(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm'))?.[1] ?? 0);
    return {
      binaryFrames: value('wavehouse_ingest_frames_total{encoding="binary"}'),
      jsonFrames: value('wavehouse_ingest_frames_total{encoding="json"}'),
      samples: value('wavehouse_ingest_samples_total'),
      duplicates: value('wavehouse_ingest_duplicate_samples_total'),
      liveFrames: value('wavehouse_live_frames_sent_total'),
    };
  };
  const rows = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => [from + i, 1_000 + from + i, (from + i) / 2]);
  const json = (from: number, to: number) => ({ samples: rows(from, to).map(([seq, t, x]) => ({ seq, t, x })) });

  producer.socket.send(binaryFrame(rows(1, 60)));
  producer.send(json(51, 100)); // 51-60 again: duplicates
  await producer.waitForAck(100);
  await eventually(() => assert.equal(viewer.samples.length, 100));
  assert.deepEqual(await counted(), { binaryFrames: 1, jsonFrames: 1, samples: 100, duplicates: 10, liveFrames: 2 });

  // A second scrape adds only what came after the first.
  producer.send(json(101, 110));
  await producer.waitForAck(110);
  await eventually(() => assert.equal(viewer.samples.length, 110));
  assert.deepEqual(await counted(), { binaryFrames: 1, jsonFrames: 2, samples: 110, duplicates: 10, liveFrames: 3 });
});

/**
 * Each way a frame is dropped after it was decoded into its producer's slab: `nth(k)` is the
 * k-th big frame (2,700 samples, 64,800 bytes, just under half a slab), sent between one-sample
 * frames that are accepted, seqs base + 2k, each after the k-th big frame.
 */
const droppedFrames: Array<{ kind: string; nth: (k: number, base: number) => number[][]; error: string | null }> = [
  { kind: 'a duplicate', nth: () => Array.from({ length: 2_700 }, (_, i) => [1 + i, i, i]), error: null },
  {
    kind: 'a partial duplicate (only its last sample is new)',
    nth: (k, base) => Array.from({ length: 2_700 }, (_, i) => [base + 2 * k - 2_700 + i, i, i]),
    error: null,
  },
  {
    kind: 'a frame refused as invalid',
    nth: () => Array.from({ length: 2_700 }, (_, i) => [2_700 - i, i, i]),
    error: 'seq_not_increasing',
  },
];

for (const { kind, nth, error } of droppedFrames) {
  test(`a frame decoded and then dropped (${kind}) gives its memory back: a recent window of small frames does not keep it`, async (t) => {
    // Frames are carved one after another from their producer's slabs (src/samples/batch-slabs.ts);
    // a dropped frame left in its slab would be kept alive by the accepted frame after it.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // No rate limit, and no closing for refused frames: each big frame is dropped for the reason under test.
    const { baseUrl, wsUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '0', INGEST_MAX_REJECTED_FRAMES_PER_MINUTE: '100000' });
    const session = await createSession(baseUrl, { channels: ['x'] });
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    t.after(() => producer.close());
    await producer.opened;
    const base = 1_000_000;
    producer.socket.send(binaryFrame([[base, 0, 0]]));
    await producer.waitForAck(base);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const pairs = 1_000;
    for (let k = 1; k <= pairs; k++) {
      producer.socket.send(binaryFrame(nth(k, base)));
      producer.socket.send(binaryFrame([[base + 2 * k, k, k]]));
    }
    await producer.waitForAck(base + 2 * pairs, 20_000);
    const errors = producer.ofType('error');
    assert.deepEqual(new Set(errors.map((frame) => frame.code)), new Set(error ? [error] : []));
    assert.equal(errors.length, error ? pairs : 0);
    gc();
    gc();
    const grownMiB = (process.memoryUsage().arrayBuffers - before) / 2 ** 20;
    // Kept, the big frames would hold ~62 MiB of slabs (a 128 KiB slab for every two pairs); given back, ~0.1.
    assert.ok(grownMiB < 24, `array buffers grew by ${grownMiB.toFixed(1)} MiB while the window holds ${pairs} small frames`);
  });
}
