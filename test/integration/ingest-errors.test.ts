/**
 * The ingest socket's answers to frames it cannot take, and to frames it takes only in part
 * (docs/protocol.md, ingest socket; docs/errors.md): which error code, what is stored,
 * whether the connection survives, and the refusals before any frame is read.
 *
 * Most rejections are checked between two good frames: a rejected frame must store nothing
 * and leave the frames around it untouched. Rejected frames carry values the good frames do
 * not, so stored data equal to exactly the good samples proves nothing of the bad one leaked.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, endSession, getData, ingestUrl, liveUrl, makeSamples, RecordingSocket, type Sample } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

const maxSeq = Number.MAX_SAFE_INTEGER;
const MiB = 1024 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: a body as the server sent it, each test reads the fields it expects
type Body = Record<string, any>;

async function getSession(baseUrl: string, sessionId: string): Promise<Body> {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`);
  assert.equal(response.status, 200);
  return (await response.json()) as Body;
}

interface ProducerSetup {
  env?: Record<string, string>;
  channels?: string[];
}

async function connectProducer(t: TestContext, setup: ProducerSetup = {}) {
  const { baseUrl, wsUrl } = await startApp(t, setup.env);
  const session = await createSession(baseUrl, setup.channels ? { channels: setup.channels } : undefined);
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  t.after(() => producer.socket.terminate());
  return { baseUrl, wsUrl, session, producer };
}

/** A one-sample frame whose sample is a valid one with `overrides` applied. */
function frameWith(overrides: Record<string, unknown>, channels = ['ax', 'ay', 'az']): string {
  const sample: Record<string, unknown> = { seq: 6, t: 123.5 };
  for (const name of channels) sample[name] = 777;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete sample[key];
    else sample[key] = value;
  }
  return JSON.stringify({ samples: [sample] });
}

/** Compact samples (all zeros) so a frame can hold many of them under the byte limit. */
function zeroSamples(fromSeq: number, count: number): Sample[] {
  return Array.from({ length: count }, (_, i) => ({ seq: fromSeq + i, t: 0, ax: 0, ay: 0, az: 0 }));
}

/** `frame` as text padded with trailing JSON whitespace to exactly `bytes` bytes. */
function paddedTo(frame: unknown, bytes: number): string {
  const text = JSON.stringify(frame);
  assert.ok(text.length <= bytes, `frame is already ${text.length} bytes`);
  return text + ' '.repeat(bytes - text.length);
}

function assertErrorFrame(message: Body | undefined, code: string): void {
  assert.ok(message, `expected an error frame with code ${code}`);
  assert.deepEqual(Object.keys(message).sort(), ['code', 'message', 'type']);
  assert.equal(message.type, 'error');
  assert.equal(message.code, code);
  assert.equal(typeof message.message, 'string');
  assert.ok(message.message.length > 0);
}

/**
 * Sends samples 1..5, the bad frame, then samples 6..10, and checks that the bad frame got
 * exactly one error frame with `code`, stored nothing, and did not disturb the good frames.
 */
async function assertRejectedBetweenGoodFrames(
  t: TestContext,
  bad: string | Buffer,
  code: string,
  setup: ProducerSetup = {},
): Promise<void> {
  const { baseUrl, session, producer } = await connectProducer(t, setup);
  const before = makeSamples(1, 5, session.channels);
  const after = makeSamples(6, 5, session.channels);
  producer.send({ samples: before });
  if (typeof bad === 'string') producer.send(bad);
  else producer.socket.send(bad, { binary: true });
  producer.send({ samples: after });

  await producer.waitForAck(10);
  const errors = producer.ofType('error');
  assert.equal(errors.length, 1, `expected one error frame, got ${JSON.stringify(errors)}`);
  assertErrorFrame(errors[0], code);
  assert.equal(producer.lastAck, 10);
  assert.equal(producer.closed, null, 'a rejected frame must not close the connection');
  assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [...before, ...after]);
  const record = await getSession(baseUrl, session.sessionId);
  assert.equal(record.sampleCount, 10);
  assert.equal(record.lastSeq, 10);
}

describe('ingest socket: frames that are not a batch are rejected with invalid_frame', () => {
  const cases: Array<[string, string]> = [
    ['text that is not JSON', '{"samples": [ {"seq": 6,'],
    ['a JSON array', JSON.stringify(makeSamples(6, 2))],
    ['a JSON number', '42'],
    ['a JSON string', '"samples"'],
    ['JSON null', 'null'],
    ['an object of another type', '{"type":"other"}'],
    ['a samples_batch without a payload', '{"type":"samples_batch"}'],
    ['a samples_batch whose payload has no samples array', '{"type":"samples_batch","payload":{"samples":{}}}'],
    ['samples that are not an array (an object)', '{"samples":{"seq":6,"t":1,"ax":1,"ay":1,"az":1}}'],
    ['samples that are not an array (a string)', '{"samples":"6,1,1,1,1"}'],
    ['a sample that is a number', '{"samples":[6]}'],
    ['a sample that is an array', '{"samples":[[6,1,1,1,1]]}'],
    ['a sample that is null', '{"samples":[null]}'],
    ['a good sample followed by one that is not an object', `{"samples":[${frameWith({}).slice(12, -2)},7]}`],
  ];
  for (const [what, frame] of cases) {
    test(`rejects ${what}`, async (t) => {
      await assertRejectedBetweenGoodFrames(t, frame, 'invalid_frame');
    });
  }

  test('rejects a binary frame', async (t) => {
    await assertRejectedBetweenGoodFrames(t, Buffer.from(JSON.stringify({ samples: makeSamples(6, 5) })), 'invalid_frame');
  });
});

describe('ingest socket: samples with bad values are rejected', () => {
  const cases: Array<[string, string, string]> = [
    ['a channel value that is a string', frameWith({ ay: '1.5' }), 'invalid_frame'],
    ['a channel value that is null', frameWith({ ay: null }), 'invalid_frame'],
    ['a channel value that is a boolean', frameWith({ ay: true }), 'invalid_frame'],
    ['a channel value that is an object', frameWith({ ay: { value: 1 } }), 'invalid_frame'],
    ['a channel value that overflows to Infinity', frameWith({ ay: 0 }).replace('"ay":0', '"ay":1e400'), 'invalid_frame'],
    ['a t that is a string', frameWith({ t: '123.5' }), 'invalid_frame'],
    ['a t that is null', frameWith({ t: null }), 'invalid_frame'],
    ['a t that overflows to Infinity', frameWith({ t: 0 }).replace('"t":0', '"t":1e400'), 'invalid_frame'],
    ['a t that overflows to -Infinity', frameWith({ t: 0 }).replace('"t":0', '"t":-1e400'), 'invalid_frame'],
    ['a negative seq', frameWith({ seq: -1 }), 'invalid_frame'],
    ['a fractional seq', frameWith({ seq: 6.5 }), 'invalid_frame'],
    ['a seq of 2^53, one over the maximum', frameWith({ seq: 0 }).replace('"seq":0', '"seq":9007199254740992'), 'invalid_frame'],
    ['a seq of 1e300', frameWith({ seq: 0 }).replace('"seq":0', '"seq":1e300'), 'invalid_frame'],
    ['a seq that is a string', frameWith({ seq: '6' }), 'invalid_frame'],
    ['a seq that is null', frameWith({ seq: null }), 'invalid_frame'],
    ['a missing channel', frameWith({ az: undefined }), 'wrong_channels'],
    ['an extra channel', frameWith({ bx: 1 }), 'wrong_channels'],
    ['a channel under another name', frameWith({ az: undefined, AZ: 1 }), 'wrong_channels'],
  ];
  for (const [what, frame, code] of cases) {
    test(`rejects ${what} with ${code}`, async (t) => {
      await assertRejectedBetweenGoodFrames(t, frame, code);
    });
  }

  test('rejects with invalid_frame a frame where only the first samples have a seq', async (t) => {
    const frame = {
      samples: [
        { seq: 6, t: 1, ax: 7, ay: 7, az: 7 },
        { t: 2, ax: 7, ay: 7, az: 7 },
      ],
    };
    await assertRejectedBetweenGoodFrames(t, JSON.stringify(frame), 'invalid_frame');
  });

  test('rejects with invalid_frame a frame where only the later samples have a seq', async (t) => {
    const frame = {
      samples: [
        { t: 1, ax: 7, ay: 7, az: 7 },
        { seq: 7, t: 2, ax: 7, ay: 7, az: 7 },
      ],
    };
    await assertRejectedBetweenGoodFrames(t, JSON.stringify(frame), 'invalid_frame');
  });

  test('rejects with wrong_channels ax/ay/az on a session whose channels are x and y', async (t) => {
    await assertRejectedBetweenGoodFrames(t, JSON.stringify({ samples: makeSamples(6, 3) }), 'wrong_channels', { channels: ['x', 'y'] });
  });

  test('rejects with wrong_channels x/y/z on a session whose channels are x and y', async (t) => {
    await assertRejectedBetweenGoodFrames(t, frameWith({}, ['x', 'y', 'z']), 'wrong_channels', { channels: ['x', 'y'] });
  });
});

describe('ingest socket: seqs within a frame must strictly increase', () => {
  const tagged = (seqs: number[]) => JSON.stringify({ samples: seqs.map((seq) => ({ seq, t: seq, ax: 777, ay: 777, az: 777 })) });

  test('rejects a frame with two equal seqs with seq_not_increasing', async (t) => {
    await assertRejectedBetweenGoodFrames(t, tagged([6, 7, 7, 8]), 'seq_not_increasing');
  });

  test('rejects a frame with decreasing seqs with seq_not_increasing', async (t) => {
    await assertRejectedBetweenGoodFrames(t, tagged([6, 8, 7]), 'seq_not_increasing');
  });

  test('rejects the whole frame even when its only new samples come before the disorder', async (t) => {
    // 3 and 4 are duplicates, 6..9 would be new: none of it may be taken.
    await assertRejectedBetweenGoodFrames(t, tagged([3, 4, 6, 7, 9, 8]), 'seq_not_increasing');
  });
});

describe('ingest socket: frame size limits', () => {
  test('rejects a frame of 10,001 samples with frame_too_large', async (t) => {
    const frame = JSON.stringify({ samples: zeroSamples(6, 10_001) });
    assert.ok(frame.length < MiB, 'the frame must be over the sample limit only');
    await assertRejectedBetweenGoodFrames(t, frame, 'frame_too_large');
  });

  test('accepts a frame of exactly 10,000 samples', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const samples = zeroSamples(1, 10_000);
    producer.send({ samples });
    await producer.waitForAck(10_000, 10_000);
    assert.deepEqual(producer.ofType('error'), []);
    assert.equal((await getSession(baseUrl, session.sessionId)).sampleCount, 10_000);
  });

  test('rejects a frame of 1 MiB + 1 byte with frame_too_large and accepts one of exactly 1 MiB', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const first = makeSamples(1, 100);
    const second = makeSamples(101, 100);
    producer.send(paddedTo({ samples: first }, MiB + 1));
    producer.send(paddedTo({ samples: first }, MiB));
    producer.send(paddedTo({ type: 'samples_batch', payload: { samples: second } }, MiB));
    await producer.waitForAck(200);
    const errors = producer.ofType('error');
    assert.equal(errors.length, 1);
    assertErrorFrame(errors[0], 'frame_too_large');
    assert.equal(producer.closed, null);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [...first, ...second]);
  });

  test('rejects a frame of just over 1 MiB made of real samples with frame_too_large', async (t) => {
    // Long numbers, so the frame passes 1 MiB while staying under 10,000 samples.
    const samples = makeSamples(6, 9_999).map((sample) => ({
      ...sample,
      t: -sample.t - sample.seq / 3,
      ax: -777 - sample.seq / 7,
      ay: -sample.ay / 3,
      az: -sample.az / 3,
    }));
    const frame = JSON.stringify({ samples });
    assert.ok(frame.length > MiB && samples.length < 10_000, `frame of ${frame.length} bytes`);
    await assertRejectedBetweenGoodFrames(t, frame, 'frame_too_large');
  });

  test('applies a configured soft limit in bytes', async (t) => {
    const env = { INGEST_MAX_FRAME_BYTES: '16384', INGEST_HARD_MAX_FRAME_BYTES: '65536' };
    await assertRejectedBetweenGoodFrames(t, paddedTo({ samples: makeSamples(6, 5) }, 16_385), 'frame_too_large', { env });
  });

  test('answers frame_too_large up to the hard limit, and closes with 1009 above it', async (t) => {
    const env = { INGEST_MAX_FRAME_BYTES: '16384', INGEST_HARD_MAX_FRAME_BYTES: '65536' };
    const { baseUrl, session, producer } = await connectProducer(t, { env });
    const stored = makeSamples(1, 5);
    producer.send({ samples: stored });
    await producer.waitForAck(5);
    producer.send(paddedTo({ samples: makeSamples(6, 5) }, 65_536));
    await eventually(() => assertErrorFrame(producer.ofType('error')[0], 'frame_too_large'));
    assert.equal(producer.closed, null);

    producer.send(paddedTo({ samples: makeSamples(6, 5) }, 65_537));
    assert.equal((await producer.waitForClose()).code, 1009);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, stored);
  });
});

describe('ingest socket: rate limit and misbehaviour', () => {
  test('rejects frames over the samples/s limit with rate_limited, stores none, and does not count them as misbehaviour', async (t) => {
    // One rejected frame is tolerated, a second closes: so the rate-limited frames must not count.
    const env = { INGEST_MAX_SAMPLES_PER_S: '1000', INGEST_MAX_FRAME_SAMPLES: '1000', INGEST_MAX_REJECTED_FRAMES_PER_MINUTE: '1' };
    const { baseUrl, session, producer } = await connectProducer(t, { env });
    // 950 of a 1000-sample budget: the next frames could only fit after 900 ms of refill,
    // far longer than it takes the server to read three frames sent back to back.
    const first = makeSamples(1, 950);
    const rejected = makeSamples(951, 950).map((sample) => ({ ...sample, ax: 777 }));
    const resent = makeSamples(951, 950);
    producer.send({ samples: first });
    producer.send({ samples: rejected });
    producer.send({ samples: rejected });
    await eventually(() => assert.equal(producer.ofType('error').length, 2));
    for (const error of producer.ofType('error')) assertErrorFrame(error, 'rate_limited');
    await producer.waitForAck(950);

    producer.send('not json');
    await eventually(() => assert.equal(producer.ofType('error').length, 3));
    assertErrorFrame(producer.ofType('error')[2], 'invalid_frame');
    assert.equal(producer.closed, null, 'rate-limited frames were counted as misbehaviour');

    // The bucket refills at 1000/s: a resend goes through once 950 samples of budget are back.
    await eventually(
      async () => {
        const seen = producer.messages.length;
        producer.send({ samples: resent });
        const reply = await eventually(() => producer.messages[seen] ?? assert.fail('no reply yet'));
        if (reply.type === 'error') {
          assertErrorFrame(reply, 'rate_limited');
          throw new Error('still rate limited');
        }
      },
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    await producer.waitForAck(1900);
    assert.equal(producer.closed, null);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [...first, ...resent]);

    producer.send('still not json');
    assert.equal((await producer.waitForClose()).code, 1008);
  });

  test('closes with 1008 a producer that sends more rejected frames a minute than configured', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t, { env: { INGEST_MAX_REJECTED_FRAMES_PER_MINUTE: '5' } });
    const good = makeSamples(1, 10);
    producer.send({ samples: good.slice(0, 5) });
    producer.send('not json');
    producer.socket.send(Buffer.from('{}'), { binary: true });
    producer.send(frameWith({ bx: 1 }));
    producer.send(
      JSON.stringify({
        samples: [
          { seq: 8, t: 1, ax: 1, ay: 1, az: 1 },
          { seq: 7, t: 1, ax: 1, ay: 1, az: 1 },
        ],
      }),
    );
    producer.send('[]');
    producer.send({ samples: good.slice(5) });
    await producer.waitForAck(10);
    assert.equal(producer.ofType('error').length, 5);
    assert.equal(producer.closed, null, 'five rejected frames are within the allowance of five');

    producer.send('one too many');
    assert.equal((await producer.waitForClose()).code, 1008);
    assert.equal(producer.ofType('error').length, 6);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, good);
  });

  test('tolerates 100 rejected frames a minute by default and closes with 1008 on the 101st', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    producer.send({ samples: makeSamples(1, 1) });
    for (let i = 0; i < 100; i++) producer.send(`bad frame ${i}`);
    producer.send({ samples: makeSamples(2, 1) });
    await producer.waitForAck(2);
    assert.equal(producer.ofType('error').length, 100);
    assert.equal(producer.closed, null);

    producer.send('bad frame 101');
    assert.equal((await producer.waitForClose()).code, 1008);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 2));
  });
});

describe('ingest socket: empty batches and duplicates', () => {
  test('answers an empty batch with an ack of the highest committed seq and stores nothing', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const sent = makeSamples(1, 10);
    producer.send({ samples: sent });
    await producer.waitForAck(10);
    const acksBefore = producer.ofType('ack').length;

    producer.send({ samples: [] });
    producer.send({ type: 'samples_batch', payload: { samples: [] } });
    await eventually(() =>
      assert.deepEqual(producer.ofType('ack').slice(acksBefore), [
        { type: 'ack', seq: 10 },
        { type: 'ack', seq: 10 },
      ]),
    );
    assert.deepEqual(producer.ofType('error'), []);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, sent);
    assert.equal((await getSession(baseUrl, session.sessionId)).sampleCount, 10);
  });

  test('acks a frame of duplicates only, and stores nothing of it', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const sent = makeSamples(1, 10);
    producer.send({ samples: sent });
    await producer.waitForAck(10);
    const acksBefore = producer.ofType('ack').length;

    producer.send({ samples: makeSamples(3, 5).map((sample) => ({ ...sample, ax: 777 })) });
    producer.send({ samples: makeSamples(10, 1).map((sample) => ({ ...sample, ax: 777 })) });
    await eventually(() =>
      assert.deepEqual(producer.ofType('ack').slice(acksBefore), [
        { type: 'ack', seq: 10 },
        { type: 'ack', seq: 10 },
      ]),
    );
    assert.deepEqual(producer.ofType('error'), []);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, sent);
    assert.equal((await getSession(baseUrl, session.sessionId)).sampleCount, 10);
  });

  test('stores only the new samples of a frame that mixes duplicates and new ones', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const first = makeSamples(1, 10);
    producer.send({ samples: first });
    await producer.waitForAck(10);

    const resend = makeSamples(8, 8).map((sample) => (sample.seq <= 10 ? { ...sample, ax: 777 } : sample));
    producer.send({ samples: resend });
    await producer.waitForAck(15);
    assert.deepEqual(producer.ofType('error'), []);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 15));
    const record = await getSession(baseUrl, session.sessionId);
    assert.equal(record.sampleCount, 15);
    assert.equal(record.lastSeq, 15);
  });

  test('keeps a gap below the highest accepted seq a gap', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    producer.send({ samples: makeSamples(1, 10) });
    producer.send({ samples: makeSamples(20, 11) });
    await producer.waitForAck(30);
    const acksBefore = producer.ofType('ack').length;
    producer.send({ samples: makeSamples(11, 5) });
    await eventually(() => assert.deepEqual(producer.ofType('ack').slice(acksBefore), [{ type: 'ack', seq: 30 }]));

    assert.deepEqual(producer.ofType('error'), []);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [...makeSamples(1, 10), ...makeSamples(20, 11)]);
    const record = await getSession(baseUrl, session.sessionId);
    assert.equal(record.sampleCount, 21);
    assert.equal(record.lastSeq, 30);
  });

  test('accepts seqs at both ends of the range, 0 and 2^53-1, exactly', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const [zero] = makeSamples(0, 1);
    const top = { ...makeSamples(1, 1)[0], seq: maxSeq };
    producer.send(zero);
    await producer.waitForAck(0);
    producer.send({ samples: [top] });
    await producer.waitForAck(maxSeq);
    assert.equal(producer.lastAck, maxSeq);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [zero, top]);
    assert.equal((await getSession(baseUrl, session.sessionId)).lastSeq, maxSeq);
  });
});

describe('ingest socket: server-assigned seqs', () => {
  const withoutSeq = (samples: Sample[]) => samples.map(({ seq: _seq, ...rest }) => rest);

  test('numbers seq-less samples 1, 2, 3... in arrival order and acks the assigned seqs', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const samples = makeSamples(1, 6);
    producer.send({ samples: withoutSeq(samples.slice(0, 3)) });
    await producer.waitForAck(3);
    producer.send(withoutSeq(samples.slice(3, 4))[0]);
    producer.send({ type: 'samples_batch', payload: { samples: withoutSeq(samples.slice(4)) } });
    await producer.waitForAck(6);
    assert.deepEqual(
      producer
        .ofType('ack')
        .map((ack) => ack.seq)
        .filter((seq, i, all) => all.indexOf(seq) === i),
      producer.ofType('ack').map((ack) => ack.seq),
      'acks never repeat here: every frame brought new samples',
    );
    assert.ok(
      producer.ofType('ack').every((ack) => [3, 4, 6].includes(ack.seq)),
      JSON.stringify(producer.ofType('ack')),
    );
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
  });

  test('continues assigned seqs from the highest accepted seq', async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    producer.send({ samples: makeSamples(40, 3) });
    producer.send({ samples: withoutSeq(makeSamples(43, 2)) });
    await producer.waitForAck(44);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(40, 5));
  });

  test("stamps a sample without t with the server's receive time", async (t) => {
    const { baseUrl, session, producer } = await connectProducer(t);
    const before = Date.now();
    producer.send({ seq: 1, ax: 1, ay: 2, az: 3 });
    await producer.waitForAck(1);
    const after = Date.now();
    const [stored] = (await getData(baseUrl, session.sessionId)).samples;
    // The server's clock is a monotonic one anchored at process start, so allow a little drift.
    assert.ok(stored.t >= before - 1_000 && stored.t <= after + 1_000, `t ${stored.t} not within [${before}, ${after}]`);
    assert.deepEqual({ ...stored, t: 0 }, { seq: 1, t: 0, ax: 1, ay: 2, az: 3 });
  });
});

describe('ingest socket: ended sessions', () => {
  test('closes the producer with 1000 after the final ack, then refuses a new producer with 4409', async (t) => {
    // Slow commits, so the end is asked for while the samples are accepted but not yet committed.
    const { baseUrl, wsUrl, session, producer } = await connectProducer(t, { env: { WRITE_BATCH_MAX_AGE_MS: '300' } });
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await viewer.opened;
    producer.send({ samples: makeSamples(1, 20) });
    // The live path does not wait for the database: seeing the samples there means they were accepted.
    await eventually(() => assert.equal(viewer.samples.length, 20));
    assert.equal(producer.lastAck, null);
    const ended = await endSession(baseUrl, session.sessionId, session.ingestToken);
    assert.equal(ended.status, 200);
    assert.equal(ended.body.sampleCount, 20);

    assert.equal((await producer.waitForClose()).code, 1000);
    assert.equal(producer.lastAck, 20, 'the final ack comes before the close');
    assert.deepEqual(producer.messages.at(-1), { type: 'ack', seq: 20 });

    const again = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    assert.equal((await again.waitForClose()).code, 4409);
    const viaHeader = new RecordingSocket(ingestUrl(wsUrl, session.sessionId), { authorization: `Bearer ${session.ingestToken}` });
    assert.equal((await viaHeader.waitForClose()).code, 4409);
    assert.deepEqual(again.messages, []);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 20));
  });

  test('answers frames that arrive while the session is ending with session_ended, and stores none of them', async (t) => {
    // Slow commits keep the end waiting long enough for frames to arrive after it began.
    const { baseUrl, wsUrl, session, producer } = await connectProducer(t, { env: { WRITE_BATCH_MAX_AGE_MS: '1000' } });
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await viewer.opened;
    let sent = 0;
    const send = () => producer.send(makeSamples(++sent, 1)[0]);
    send();
    await eventually(() => assert.equal(viewer.samples.length, 1));
    const ending = endSession(baseUrl, session.sessionId, session.ingestToken);
    await eventually(
      () => {
        if (producer.ofType('error').length === 0) {
          send();
          throw new Error('no session_ended yet');
        }
      },
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    const ended = await ending;
    assert.equal((await producer.waitForClose()).code, 1000);

    const errors = producer.ofType('error');
    for (const error of errors) assertErrorFrame(error, 'session_ended');
    const accepted = sent - errors.length;
    assert.ok(accepted >= 1);
    assert.equal(ended.status, 200);
    assert.equal(ended.body.sampleCount, accepted);
    assert.equal(producer.lastAck, accepted);
    assert.deepEqual(producer.messages.at(-1), { type: 'ack', seq: accepted });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, accepted));
  });
});

describe('ingest socket: refusals', () => {
  async function refusalCode(url: string, headers: Record<string, string> = {}): Promise<number> {
    const socket = new RecordingSocket(url, headers);
    const closed = await socket.waitForClose();
    assert.deepEqual(socket.messages, []);
    return closed.code;
  }

  test('refuses a producer without a token, or with a wrong one, with 4401', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const other = await createSession(baseUrl);
    assert.equal(await refusalCode(ingestUrl(wsUrl, session.sessionId)), 4401);
    assert.equal(await refusalCode(ingestUrl(wsUrl, session.sessionId, 'not-the-token')), 4401);
    assert.equal(await refusalCode(ingestUrl(wsUrl, session.sessionId, other.ingestToken)), 4401, "another session's token");
    assert.equal(await refusalCode(ingestUrl(wsUrl, session.sessionId), { authorization: 'Bearer not-the-token' }), 4401);
    assert.equal((await getSession(baseUrl, session.sessionId)).status, 'created');
  });

  test('refuses an unknown session, or an id that is not a UUID, with 4404 before looking at the token', async (t) => {
    const { wsUrl } = await startApp(t);
    assert.equal(await refusalCode(ingestUrl(wsUrl, crypto.randomUUID(), 'some-token')), 4404);
    assert.equal(await refusalCode(ingestUrl(wsUrl, crypto.randomUUID())), 4404);
    assert.equal(await refusalCode(ingestUrl(wsUrl, 'not-a-uuid', 'some-token')), 4404);
  });

  test('refuses a wrong token with 4401 even on an ended session', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    assert.equal(await refusalCode(ingestUrl(wsUrl, session.sessionId, 'not-the-token')), 4401);
    assert.equal(await refusalCode(ingestUrl(wsUrl, session.sessionId, session.ingestToken)), 4409);
  });

  test('takes the token from ?token= as well as from the Authorization header', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    for (const via of ['query', 'header'] as const) {
      const session = await createSession(baseUrl);
      const producer =
        via === 'query'
          ? new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken))
          : new RecordingSocket(ingestUrl(wsUrl, session.sessionId), { authorization: `Bearer ${session.ingestToken}` });
      await producer.opened;
      producer.send({ samples: makeSamples(1, 3) });
      await producer.waitForAck(3);
      assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 3), `token via ${via}`);
      producer.close();
      await producer.waitForClose();
    }
  });
});
