import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchSender, sendLimits } from '../../src/sdk/batch-sender.ts';
import { UnackedBuffer } from '../../src/sdk/unacked-buffer.ts';
import type { WebSocketLike } from '../../src/sdk/websocket.ts';

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fakeSocket() {
  const frames: number[][] = [];
  const socket = {
    readyState: 1,
    bufferedAmount: 0,
    send: (data: string) => frames.push((JSON.parse(data) as { samples: Array<{ seq: number }> }).samples.map((sample) => sample.seq)),
  } as unknown as WebSocketLike & { readyState: number; bufferedAmount: number };
  return { socket, frames };
}

function setup(limits: Parameters<typeof sendLimits>[0], count: number) {
  const buffer = new UnackedBuffer();
  for (let seq = 1; seq <= count; seq++) buffer.push(seq, `{"seq":${seq}}`);
  const { socket, frames } = fakeSocket();
  let open: WebSocketLike | null = socket;
  const sent: Array<[number, number]> = [];
  const sender = new BatchSender(
    buffer,
    sendLimits(limits),
    () => open,
    (seq, samples) => sent.push([seq, samples]),
  );
  return { buffer, socket, frames, sent, sender, disconnect: () => (open = null) };
}

test('limits: defaults, and the first one out of range is named', () => {
  assert.deepEqual(sendLimits({}), { maxBatchSamples: 50, maxBatchDelayMs: 50, maxFrameSamples: 1_000, maxFrameBytes: 512 * 1024 });
  assert.equal(sendLimits({ maxBatchSamples: 2_000 }).maxFrameSamples, 2_000);
  assert.throws(() => sendLimits({ maxFrameSamples: 10_001 }), /maxFrameSamples must be an integer from 1 to 10000/);
  assert.throws(
    () => sendLimits({ maxBatchSamples: 11, maxFrameSamples: 10 }),
    /maxBatchSamples must be an integer from 1 to maxFrameSamples \(10\)/,
  );
  assert.throws(() => sendLimits({ maxFrameBytes: 1023 }), /maxFrameBytes must be at least 1024/);
});

test('a full batch goes out at once, in frames within the sample limit; a short one after its delay', async () => {
  const { frames, sent, sender, buffer } = setup({ maxBatchSamples: 3, maxFrameSamples: 3, maxBatchDelayMs: 5 }, 7);
  sender.schedule();
  assert.deepEqual(frames, [[1, 2, 3], [4, 5, 6], [7]]);
  assert.deepEqual(sent, [[7, 7]]);
  assert.equal(sender.sentCount, 7);
  buffer.push(8, '{"seq":8}');
  sender.schedule();
  assert.equal(frames.length, 3);
  await settle(30);
  assert.deepEqual(frames.at(-1), [8]);
});

test('acks shrink what counts as sent; a lost connection or a rate_limited hold sends it all again', async () => {
  const { frames, sender, buffer, disconnect } = setup({ maxBatchSamples: 1 }, 4);
  sender.sendNow();
  sender.acked(buffer.dropThrough(2));
  assert.equal(sender.sentCount, 2);

  sender.resendAfter(20);
  assert.equal(frames.length, 1, 'held back');
  await settle(50);
  assert.deepEqual(frames, [
    [1, 2, 3, 4],
    [3, 4],
  ]);

  sender.connectionLost();
  assert.equal(sender.sentCount, 0);
  disconnect();
  sender.sendNow();
  assert.equal(frames.length, 2, 'nothing is sent without an open socket');
});

test('past 1 MiB queued in the socket, sending waits until it drains', async () => {
  const { socket, frames, sender } = setup({ maxBatchSamples: 1, maxFrameSamples: 1 }, 2);
  socket.bufferedAmount = 2 * 1024 * 1024;
  sender.sendNow();
  assert.equal(frames.length, 0);
  socket.bufferedAmount = 0;
  await settle(40);
  assert.deepEqual(frames, [[1], [2]]);
});
