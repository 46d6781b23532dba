import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ViewerConnection, type ViewerConnectionOptions, type ViewerSocket } from '../../src/live/viewer-connection.ts';
import { LiveFrame, textMessage } from '../../src/samples/live-frames.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { jsonColumnKeys } from '../../src/samples/sample-text.ts';
import { eventually } from '../support/eventually.ts';

const prefixes = jsonColumnKeys(['x']);

/** For viewers whose history never fails: a failure fails the test. */
const unexpectedFailure = (error: unknown): never => {
  throw new Error(`unexpected history failure: ${String(error)}`);
};

/** For viewers whose handlers never fail. */
const unexpectedHandlerFailure = (error: unknown): never => {
  throw new Error(`unexpected handler failure: ${String(error)}`);
};

function counters() {
  const seen = { framesSent: 0, slowClosed: 0, handlerFailed: 0 };
  return { seen, frameSent: () => seen.framesSent++, slowClosed: () => seen.slowClosed++, handlerFailed: () => seen.handlerFailed++ };
}

/** The text of one server-to-client WebSocket message (RFC 6455, 5.2): a final text frame, unmasked. */
function textOf(message: Buffer): string {
  assert.equal(message[0], 0x81);
  const short = message[1];
  const [offset, length] =
    short < 126 ? [2, short] : short === 126 ? [4, message.readUInt16BE(2)] : [10, Number(message.readBigUInt64BE(2))];
  assert.equal(message.length, offset + length);
  return message.toString('utf8', offset);
}

class FakeSocket implements ViewerSocket {
  bufferedAmount = 0;
  readyState = 1;
  // biome-ignore lint/suspicious/noExplicitAny: frames as the server sent them, each test reads the fields it expects
  sent: any[] = [];
  closedWith: number | null = null;
  closeReason: string | null = null;
  write(message: Buffer) {
    this.sent.push(JSON.parse(textOf(message)));
  }
  close(code: number, reason: string) {
    this.closedWith = code;
    this.closeReason = reason;
    this.readyState = 3;
  }
  get seqs(): number[] {
    return this.sent.flatMap((frame) => (frame.payload?.samples ?? []).map((sample: { seq: number }) => sample.seq));
  }
}

function batch(from: number, to: number): SampleBatch {
  const seqs = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const out = SampleBatch.allocate(seqs.length, 1);
  seqs.forEach((seq, i) => {
    out.columns[i] = seq;
    out.columns[seqs.length + i] = seq;
    out.columns[2 * seqs.length + i] = seq / 4;
  });
  return out;
}

const frame = (from: number, to: number) => new LiveFrame(batch(from, to), prefixes, from - 1);

function historyOf(stored: SampleBatch[], reads: Array<[number, number]>) {
  return async function* (fromSeq: number, toSeq: number) {
    reads.push([fromSeq, toSeq]);
    for (const b of stored) {
      const part = b.range(fromSeq, toSeq);
      if (part.count > 0) yield part;
    }
  };
}

/** A viewer's connection on `socket`, with what these tests share unless `options` says otherwise. */
function connection(socket: ViewerSocket, options: Partial<ViewerConnectionOptions> = {}) {
  return new ViewerConnection({
    socket,
    columnKeys: prefixes,
    fromSeq: null,
    history: historyOf([], []),
    maxBufferedBytes: 1 << 20,
    counters: counters(),
    historyFailed: unexpectedFailure,
    handlerFailed: unexpectedHandlerFailure,
    ...options,
  });
}

test('a viewer from now on sends each frame as it comes, cutting nothing', () => {
  const socket = new FakeSocket();
  const viewer = connection(socket);
  viewer.deliver(frame(5, 9));
  viewer.deliver(frame(10, 12));
  assert.deepEqual(socket.seqs, [5, 6, 7, 8, 9, 10, 11, 12]);
});

test('a viewer that missed frames reads exactly the missing range from history, then goes on live', async () => {
  const socket = new FakeSocket();
  const reads: Array<[number, number]> = [];
  const viewer = connection(socket, { history: historyOf([batch(1, 20)], reads) });
  viewer.deliver(frame(1, 5));
  viewer.deliver(frame(11, 15));
  viewer.deliver(frame(16, 20));
  await eventually(() =>
    assert.deepEqual(
      socket.seqs,
      Array.from({ length: 20 }, (_, i) => i + 1),
    ),
  );
  assert.deepEqual(reads, [[6, 10]]);
  viewer.deliver(frame(21, 22));
  assert.deepEqual(socket.seqs.slice(-2), [21, 22]);
});

test('a viewer with fromSeq joins history, window and live frames without gap or duplicate', async () => {
  const socket = new FakeSocket();
  const reads: Array<[number, number]> = [];
  const viewer = connection(socket, { fromSeq: 3, history: historyOf([batch(1, 10)], reads) });
  viewer.start([frame(11, 15)], async () => false);
  viewer.deliver(frame(16, 18));
  await eventually(() =>
    assert.deepEqual(
      socket.seqs,
      Array.from({ length: 16 }, (_, i) => i + 3),
    ),
  );
  assert.deepEqual(reads, [[3, 10]]);
});

test('a viewer whose socket holds too much is closed with 1013', () => {
  const socket = new FakeSocket();
  const counted = counters();
  const viewer = connection(socket, { maxBufferedBytes: 1024, counters: counted });
  viewer.deliver(frame(1, 2));
  socket.bufferedAmount = 4096;
  viewer.deliver(frame(3, 4));
  assert.equal(socket.closedWith, 1013);
  assert.deepEqual(counted.seen, { framesSent: 1, slowClosed: 1, handlerFailed: 0 });
  assert.deepEqual(socket.seqs, [1, 2]);
});

test('the end of the session reaches a catching-up viewer after its history', async () => {
  const socket = new FakeSocket();
  const viewer = connection(socket, { fromSeq: 1, history: historyOf([batch(1, 4)], []) });
  viewer.start([], async () => false);
  viewer.deliverEnd();
  await eventually(() => assert.equal(socket.closedWith, 1000));
  assert.deepEqual(socket.seqs, [1, 2, 3, 4]);
  assert.deepEqual(socket.sent.at(-1), { type: 'session_ended' });
});

test('a failed history read closes the viewer with 1013 when the database is out of reach, else 1011, telling which once', async () => {
  const cause = new Error('the history read failed');
  for (const [sorted, code, reason] of [
    ['outage', 1013, 'database unavailable; reconnect with fromSeq'],
    ['bug', 1011, 'could not read history; reconnect with fromSeq'],
  ] as const) {
    const socket = new FakeSocket();
    const reported: unknown[] = [];
    const failing = async function* (): AsyncGenerator<SampleBatch> {
      yield batch(1, 2);
      throw cause;
    };
    const viewer = connection(socket, {
      fromSeq: 1,
      history: failing,
      historyFailed: (error) => {
        reported.push(error);
        return sorted;
      },
    });
    viewer.start([], async () => false);
    await eventually(() => assert.equal(socket.closedWith, code));
    assert.equal(socket.closeReason, reason);
    assert.deepEqual(reported, [cause]);
    assert.deepEqual(socket.seqs, [1, 2]);
  }
});

test('a viewer whose handling throws is closed with 1011 and reported once; the caller, and the viewers after it, go on', () => {
  const bug = new Error('a bug in sending');
  const broken = new FakeSocket();
  broken.write = () => {
    throw bug;
  };
  const healthy = new FakeSocket();
  const reported: unknown[] = [];
  const counted = counters();
  const failing = connection(broken, { counters: counted, handlerFailed: (error) => reported.push(error) });
  const other = connection(healthy);
  for (const [from, to] of [
    [1, 3],
    [4, 6],
  ]) {
    for (const viewer of [failing, other]) assert.doesNotThrow(() => viewer.deliver(frame(from, to)));
  }
  assert.doesNotThrow(() => failing.deliverEnd());
  assert.equal(broken.closedWith, 1011);
  assert.equal(broken.closeReason, 'internal error; reconnect with fromSeq');
  assert.deepEqual(reported, [bug]);
  assert.equal(counted.seen.handlerFailed, 1);
  assert.deepEqual(healthy.seqs, [1, 2, 3, 4, 5, 6]);
  assert.equal(healthy.closedWith, null);
});

test('a message is framed with the shortest length form each size allows', () => {
  for (const size of [0, 125, 126, 65_535, 65_536, 200_000]) {
    const text = 'x'.repeat(size);
    const message = textMessage([Buffer.from(text.slice(0, size >> 1)), Buffer.from(text.slice(size >> 1))]);
    assert.equal(textOf(message), text, `${size} bytes`);
    assert.equal(message.length - size, size < 126 ? 2 : size < 65_536 ? 4 : 10, `${size} bytes`);
  }
});
