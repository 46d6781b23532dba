/**
 * End-to-end fuzz through a real server on a real PostgreSQL: thousands of random frames, text
 * and binary, on a producer socket and on viewer sockets, while a clean producer on another
 * session streams a known sequence. Every random frame sent is one a reference decoder, written
 * here from docs/protocol.md with JSON.parse, finds certainly invalid (frames it finds valid or
 * ambiguous are not sent); between them go frames built to be valid, with known seqs. So the
 * fuzzed session must hold exactly the built frames' samples, and each random frame must be
 * answered with one error frame. A text frame that is not UTF-8 must close the producer with
 * 1007; it attaches again and goes on.
 *
 * FUZZ_RUNS sets the number of random frames, FUZZ_SEED replays a run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { closeCodes, frameErrors } from '../../src/contract/errors.ts';
import { startApp } from '../support/app.ts';
import { createSession, getData, ingestUrl, liveUrl, makeSamples, RecordingSocket, type Sample } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { fuzzParameters, fuzzRuns, fuzzSeed } from '../support/fuzz.ts';

const channels = ['ax', 'ay', 'az'];
const maxFrameSamples = 10_000;
/** textBytes: a text frame of any bytes, UTF-8 or not. */
type Frame = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Buffer } | { kind: 'textBytes'; bytes: Buffer };
type Verdict = 'valid' | 'invalid' | 'unknown';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Whether JSON text (already known to parse) repeats a name within one object: RFC 8259
 * leaves the meaning of such a frame to the receiver, so it is neither certainly valid nor
 * certainly invalid. A scan with a stack of name sets, so any nesting is fine.
 */
function repeatsAName(text: string): boolean {
  const names: Array<Set<string> | null> = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const token = text.slice(i, end + 1);
      i = end + 1;
      while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
      if (text[i] === ':') {
        const set = names.at(-1)!;
        const name = JSON.parse(token) as string;
        if (set.has(name)) return true;
        set.add(name);
      }
      continue;
    }
    if (c === '{') names.push(new Set());
    else if (c === '[') names.push(null);
    else if (c === '}' || c === ']') names.pop();
    i++;
  }
  return false;
}

/** The three text shapes and the sample rules of docs/protocol.md (samples, ingest socket). */
function classifyText(text: string): Verdict {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return 'invalid';
  }
  if (repeatsAName(text)) return 'unknown';
  if (!isPlainObject(frame)) return 'invalid';
  let samples: unknown[];
  // Whether the envelope holds more than the shape names: valid samples in it are ambiguous.
  let more = false;
  if (Object.hasOwn(frame, 'type')) {
    const payload = frame.payload;
    if (frame.type !== 'samples_batch' || !isPlainObject(payload) || !Array.isArray(payload.samples)) return 'invalid';
    samples = payload.samples;
    more = Object.keys(frame).length !== 2 || Object.keys(payload).length !== 1;
  } else if (Object.hasOwn(frame, 'samples')) {
    if (!Array.isArray(frame.samples)) return 'invalid';
    samples = frame.samples;
    more = Object.keys(frame).length !== 1;
  } else {
    samples = [frame];
  }
  if (samples.length > maxFrameSamples) return 'invalid';
  const hasSeq = isPlainObject(samples[0]) && Object.hasOwn(samples[0], 'seq');
  let previousSeq = -1;
  for (const sample of samples) {
    if (!isPlainObject(sample) || Object.hasOwn(sample, 'seq') !== hasSeq) return 'invalid';
    if (hasSeq) {
      const seq = sample.seq;
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || seq <= previousSeq) return 'invalid';
      previousSeq = seq;
    }
    if (Object.hasOwn(sample, 't') && !(typeof sample.t === 'number' && Number.isFinite(sample.t))) return 'invalid';
    const names = Object.keys(sample).filter((name) => name !== 'seq' && name !== 't');
    if (names.length !== channels.length || !channels.every((name) => Object.hasOwn(sample, name))) return 'invalid';
    if (!channels.every((name) => typeof sample[name] === 'number' && Number.isFinite(sample[name]))) return 'invalid';
  }
  return more ? 'unknown' : 'valid';
}

/** The binary frame of docs/protocol.md. */
function classifyBinary(bytes: Buffer): Verdict {
  if (bytes.length < 8 || bytes[0] !== 1 || bytes[1] !== 0) return 'invalid';
  const width = bytes.readUInt16LE(2);
  const n = bytes.readUInt32LE(4);
  if (width !== channels.length || n > maxFrameSamples || bytes.length !== 8 + 8 * n * (width + 2)) return 'invalid';
  let previousSeq = -1;
  for (let i = 0; i < n * (width + 2); i++) {
    const value = bytes.readDoubleLE(8 + 8 * i);
    if (i < n) {
      if (!Number.isSafeInteger(value) || value < 0 || value <= previousSeq) return 'invalid';
      previousSeq = value;
    } else if (!Number.isFinite(value)) {
      return 'invalid';
    }
  }
  return 'valid';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * What the server reads: a string goes out as UTF-8, where a lone surrogate becomes U+FFFD.
 * A text frame that is not UTF-8 is a protocol error (RFC 6455 8.1), not a frame to answer.
 */
function classify(frame: Frame): Verdict | 'not UTF-8' {
  if (frame.kind === 'binary') return classifyBinary(frame.bytes);
  if (frame.kind === 'text') return classifyText(Buffer.from(frame.text).toString());
  try {
    return classifyText(utf8.decode(frame.bytes));
  } catch {
    return 'not UTF-8';
  }
}

function binaryFrame(samples: Sample[]): Buffer {
  const n = samples.length;
  const bytes = Buffer.alloc(8 + 8 * n * (channels.length + 2));
  bytes.writeUInt8(1, 0);
  bytes.writeUInt16LE(channels.length, 2);
  bytes.writeUInt32LE(n, 4);
  samples.forEach((sample, i) => {
    bytes.writeDoubleLE(sample.seq, 8 + 8 * i);
    bytes.writeDoubleLE(sample.t, 8 + 8 * (n + i));
    channels.forEach((name, c) => {
      bytes.writeDoubleLE(sample[name], 8 + 8 * ((c + 2) * n + i));
    });
  });
  return bytes;
}

function textFrame(samples: Sample[], shape: number): string {
  if (shape === 0 && samples.length === 1) return JSON.stringify(samples[0]);
  if (shape === 1) return JSON.stringify({ type: 'samples_batch', payload: { samples } });
  return JSON.stringify({ samples });
}

// Random frames: mostly valid frames broken a little, where a decoder's edge cases are.
// biome-ignore format: a packed list of cases reads better than one a line
const hostileNumber = fc.constantFrom(
  '1e400', '-1e400', 'NaN', 'Infinity', '"1"', 'null', 'true', '1.5', '-1', '9007199254740992', '-0', '1e-400', '0x10', '[]', '{}',
  '1e308', '01', '.5', '1.', '--1',
);
const sampleArb = fc.record({
  seq: fc.oneof(fc.nat({ max: 1_000 }), fc.constant(Number.MAX_SAFE_INTEGER)),
  t: fc.double({ noNaN: true, noDefaultInfinity: true }),
  ax: fc.double({ noNaN: true, noDefaultInfinity: true }),
  ay: fc.double({ noNaN: true, noDefaultInfinity: true }),
  az: fc.double({ noNaN: true, noDefaultInfinity: true }),
});
const baseSamples = fc
  .array(sampleArb, { minLength: 1, maxLength: 4 })
  .map((samples) => samples.map((sample, i) => ({ ...sample, seq: sample.seq + i })));

const textEdit = fc.oneof(
  fc.tuple(fc.constant('delete'), fc.nat(), fc.nat({ max: 4 })),
  fc.tuple(fc.constant('insert'), fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })),
  fc.tuple(
    fc.constant('insert'),
    fc.nat(),
    fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', '"ax":1,', '"seq":', '"t":"', '\u0000'),
  ),
  fc.tuple(fc.constant('truncate'), fc.nat(), fc.constant(0)),
  fc.tuple(fc.constant('number'), fc.nat(), hostileNumber),
  fc.tuple(
    fc.constant('rename'),
    fc.nat(),
    fc.constantFrom('"aX"', '"Seq"', '"T"', '"ax"', '"seq"', '"t"', '"__proto__"', '"constructor"', '"samples"', '"type"', '""'),
  ),
);
type TextEdit = [string, number, string | number];

function applyEdit(text: string, [kind, at, arg]: TextEdit): string {
  const i = at % (text.length + 1);
  switch (kind) {
    case 'delete':
      return text.slice(0, i) + text.slice(i + 1 + (arg as number));
    case 'insert':
      return text.slice(0, i) + arg + text.slice(i);
    case 'truncate':
      return text.slice(0, i);
    case 'number': {
      const numbers = [...text.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)];
      if (numbers.length === 0) return text;
      const match = numbers[at % numbers.length];
      return text.slice(0, match.index) + arg + text.slice(match.index! + match[0].length);
    }
    default: {
      const names = [...text.matchAll(/"[^"]*"(?=:)/g)];
      if (names.length === 0) return text;
      const match = names[at % names.length];
      return text.slice(0, match.index) + arg + text.slice(match.index! + match[0].length);
    }
  }
}

const mutatedText = fc
  .tuple(baseSamples, fc.nat({ max: 2 }), fc.array(textEdit, { minLength: 1, maxLength: 3 }))
  .map(([samples, shape, edits]) => edits.reduce((text, edit) => applyEdit(text, edit as TextEdit), textFrame(samples, shape)));

const structuralText = fc.oneof(
  // biome-ignore format: a packed list of cases reads better than one a line
  fc.constantFrom(
    '{}', '[]', '""', '0', 'null', 'true', ' ', '', '{"samples":{}}', '{"samples":null}', '{"samples":[{}]}', '{"samples":[null]}',
    '{"samples":[[]]}', '{"type":"samples_batch"}', '{"type":"samples_batch","payload":null}',
    '{"type":"samples_batch","payload":{"samples":7}}', '{"type":"ack","seq":1}', '{"seq":1}', '{"__proto__":{"seq":1}}',
    '{"samples":[{"seq":1e400,"ax":1,"ay":1,"az":1}]}', '{"samples":[{"seq":1,"ax":1,"ay":1,"az":1},{"ax":1,"ay":1,"az":1}]}',
    '{"samples":[{"seq":2,"ax":1,"ay":1,"az":1},{"seq":2,"ax":1,"ay":1,"az":1}]}', '{"samples":[{"ax":1,"ay":1,"az":1,"aw":1}]}',
    '{"samples":[{"ax":1,"ay":1}]}',
  ),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes).toString()),
  // Nesting far deeper than any frame: the decoder must not recurse on it.
  fc
    .tuple(fc.integer({ min: 1, max: 50_000 }), fc.constantFrom('[', '{"samples":', '{"type":"samples_batch","payload":'))
    .map(([levels, open]) => open.repeat(levels)),
);

const binaryEdit = fc.oneof(
  fc.tuple(fc.constant('flip'), fc.nat(), fc.integer({ min: 1, max: 255 })),
  fc.tuple(fc.constant('header'), fc.nat({ max: 7 }), fc.nat({ max: 255 })),
  fc.tuple(fc.constant('resize'), fc.integer({ min: -16, max: 16 }), fc.constant(0)),
  fc.tuple(fc.constant('double'), fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity, -1, 1.5, 2 ** 53, -0, 1e308)),
);
type BinaryEdit = [string, number, number];

function applyBinaryEdit(bytes: Buffer, [kind, at, arg]: BinaryEdit): Buffer {
  const out = Buffer.from(bytes);
  if (kind === 'flip' && out.length > 0) out[at % out.length] ^= arg;
  if (kind === 'header' && at < out.length) out[at] = arg;
  if (kind === 'resize') return at >= 0 ? Buffer.concat([out, Buffer.alloc(at)]) : out.subarray(0, Math.max(0, out.length + at));
  if (kind === 'double' && out.length >= 16) out.writeDoubleLE(arg, 8 + 8 * (at % Math.floor((out.length - 8) / 8)));
  return out;
}

const binary = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc
    .tuple(baseSamples, fc.array(binaryEdit, { minLength: 1, maxLength: 3 }))
    .map(([samples, edits]) => edits.reduce((bytes, edit) => applyBinaryEdit(bytes, edit as BinaryEdit), binaryFrame(samples))),
  // A header announcing far more samples than it carries.
  fc.tuple(fc.nat({ max: 0xffff }), fc.nat()).map(([width, n]) => {
    const header = Buffer.alloc(8 + 8 * (n % 4));
    header.writeUInt8(1, 0);
    header.writeUInt16LE(width, 2);
    header.writeUInt32LE(n >>> 0, 4);
    return header;
  }),
);

const randomFrame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 40, arbitrary: mutatedText.map((text) => ({ kind: 'text' as const, text })) },
  { weight: 20, arbitrary: structuralText.map((text) => ({ kind: 'text' as const, text })) },
  { weight: 30, arbitrary: binary.map((bytes) => ({ kind: 'binary' as const, bytes })) },
  // Rare: most are not UTF-8, and each of those costs a reconnect.
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((bytes) => ({ kind: 'textBytes' as const, bytes: Buffer.from(bytes) })) },
);

function send(socket: RecordingSocket, frame: Frame): void {
  socket.socket.send(frame.kind === 'text' ? frame.text : frame.bytes, { binary: frame.kind === 'binary' });
}

function describeFrame(frame: Frame): string {
  return frame.kind === 'text'
    ? `text ${JSON.stringify(frame.text.slice(0, 200))}`
    : `${frame.kind} ${frame.bytes.subarray(0, 64).toString('hex')} (${frame.bytes.length} bytes)`;
}

/** A producer attached to the session: answered an empty batch with an ack (a refusal, 4409 while the last one lets go, is retried). */
async function attachProducer(url: string): Promise<RecordingSocket> {
  return eventually(
    async () => {
      const socket = new RecordingSocket(url);
      await socket.opened;
      socket.send({ samples: [] });
      const attached = await eventually(
        () => {
          if (socket.closed) return false;
          if (socket.lastAck === null) throw new Error('no answer to the empty batch yet');
          return true;
        },
        { intervalMs: 5 },
      );
      if (!attached) throw new Error(`producer refused: ${JSON.stringify(socket.closed)}`);
      return socket;
    },
    { timeoutMs: 10_000 },
  );
}

test('random frames on producer and viewer sockets store nothing, crash nothing, and leave a clean stream whole', async (t) => {
  const frameCount = fuzzRuns(1_500);
  const seed = fuzzSeed;
  t.diagnostic(`FUZZ_SEED=${seed} FUZZ_RUNS=${frameCount}`);
  const { baseUrl, wsUrl } = await startApp(t, {
    // Every rejected frame is answered, and the producer kept: the test counts the answers.
    INGEST_MAX_REJECTED_FRAMES_PER_MINUTE: '100000000',
    INGEST_MAX_SAMPLES_PER_S: '0',
    RATE_LIMIT_PER_MINUTE: '0',
    RATE_LIMIT_CREATE_PER_MINUTE: '0',
  });

  const fuzzed = await createSession(baseUrl);
  const clean = await createSession(baseUrl);
  const fuzzedIngest = ingestUrl(wsUrl, fuzzed.sessionId, fuzzed.ingestToken);
  let producer = await attachProducer(fuzzedIngest);
  /** Producers the server closed for a text frame that was not UTF-8. */
  const closedProducers: RecordingSocket[] = [];
  const producers = () => [...closedProducers, producer];
  const viewer = new RecordingSocket(liveUrl(wsUrl, fuzzed.sessionId, 0));
  const cleanProducer = new RecordingSocket(ingestUrl(wsUrl, clean.sessionId, clean.ingestToken));
  const cleanViewer = new RecordingSocket(liveUrl(wsUrl, clean.sessionId, 0));
  // Viewers that send what viewers never should; reopened if the server closes them.
  const noisy = [fuzzed.sessionId, clean.sessionId].map((id) => ({ id, socket: new RecordingSocket(liveUrl(wsUrl, id)) }));
  await Promise.all([viewer, cleanProducer, cleanViewer, ...noisy.map((n) => n.socket)].map((socket) => socket.opened));

  let fuzzing = true;
  const cleanSent: Sample[] = [];
  const streaming = (async () => {
    for (let seq = 1, frame = 0; fuzzing; seq += 20, frame++) {
      const samples = makeSamples(seq, 20);
      cleanSent.push(...samples);
      if (frame % 2 === 0) cleanProducer.send({ samples });
      else cleanProducer.socket.send(binaryFrame(samples));
      await cleanProducer.waitForAck(samples.at(-1)!.seq, 10_000);
    }
  })();

  const expected: Sample[] = [];
  let nextSeq = 1;
  /** Frames built to be valid, with seqs going on from the last, in every shape, some without seq. */
  function sendValid(index: number): void {
    const count = 1 + (index % 5);
    const gap = index % 3 === 0 ? 7 : 0;
    const samples = makeSamples(nextSeq + gap, count);
    nextSeq += gap + count;
    expected.push(...samples);
    const shape = index % 5;
    if (shape === 3) producer.socket.send(binaryFrame(samples));
    // Without seq, the server numbers them from the highest accepted + 1: the same seqs when there is no gap.
    else if (shape === 4 && gap === 0) producer.send({ samples: samples.map(({ seq: _, ...rest }) => rest) });
    else producer.send(textFrame(samples, shape));
  }

  const frames = fc.sample(randomFrame, { numRuns: frameCount, seed });
  let invalidSent = 0;
  let skipped = 0;
  let notUtf8Sent = 0;
  const burst = 25;
  for (let at = 0; at < frames.length; at += burst) {
    const sentNow: Frame[] = [];
    const notUtf8: Frame[] = [];
    for (const [i, frame] of frames.slice(at, at + burst).entries()) {
      if ((at + i) % 10 === 0) sendValid((at + i) / 10);
      // One frame in eight goes to a viewer socket instead, of either session.
      if ((at + i) % 8 === 7) {
        const target = noisy[(at + i) % 16 === 7 ? 0 : 1];
        if (target.socket.closed) {
          target.socket = new RecordingSocket(liveUrl(wsUrl, target.id));
          await target.socket.opened;
        }
        send(target.socket, frame);
        continue;
      }
      const verdict = classify(frame);
      if (verdict === 'not UTF-8') notUtf8.push(frame);
      if (verdict !== 'invalid') {
        if (verdict !== 'not UTF-8') skipped++;
        continue;
      }
      send(producer, frame);
      sentNow.push(frame);
      invalidSent++;
    }
    await eventually(
      () => {
        assert.equal(producer.closed, null, 'the fuzzed producer stays connected');
        const errors = producers().reduce((count, socket) => count + socket.ofType('error').length, 0);
        assert.equal(errors, invalidSent, `one error frame per rejected frame; this burst:\n${sentNow.map(describeFrame).join('\n')}`);
        assert.ok(Math.max(...producers().map((socket) => socket.lastAck ?? -1)) >= expected.at(-1)!.seq, `ack of ${expected.at(-1)!.seq}`);
      },
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    // Everything before is acked, so the producer may go: it resends nothing on reattaching.
    for (const frame of notUtf8) {
      send(producer, frame);
      notUtf8Sent++;
      assert.equal((await producer.waitForClose()).code, 1007, `closed for ${describeFrame(frame)}`);
      closedProducers.push(producer);
      producer = await attachProducer(fuzzedIngest);
    }
  }
  fuzzing = false;
  await streaming;
  t.diagnostic(
    `${invalidSent} rejected frames and ${notUtf8Sent} not UTF-8 sent to the producer, ` +
      `${skipped} random frames not certainly invalid left out, ${expected.length} valid samples`,
  );

  for (const error of producers().flatMap((socket) => socket.ofType('error'))) {
    assert.ok(error.code in frameErrors, `error code ${error.code}`);
  }
  assert.deepEqual(cleanProducer.ofType('error'), [], 'the clean producer got no error');
  // The server still answers, and stores exactly what was valid.
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
  const another = await createSession(baseUrl);
  assert.equal((await fetch(`${baseUrl}/api/v1/sessions/${another.sessionId}`)).status, 200);
  assert.deepStrictEqual((await getData(baseUrl, fuzzed.sessionId)).samples, expected);
  assert.deepStrictEqual((await getData(baseUrl, clean.sessionId)).samples, cleanSent);
  await eventually(
    () => {
      assert.deepStrictEqual(viewer.samples, expected);
      assert.deepStrictEqual(cleanViewer.samples, cleanSent);
    },
    { timeoutMs: 10_000 },
  );
  for (const socket of [producer, viewer, cleanProducer, cleanViewer, ...noisy.map((n) => n.socket)]) socket.close();
});

type UpgradeOutcome = { opened: true } | { closed: number; reason: string } | { refused: number; contentType: string };

/**
 * How the server answered an upgrade. A refusal is a close right after the upgrade, so it
 * arrives before the answer to a ping sent once open: a pong means the socket was kept.
 */
function upgradeOutcome(url: string): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => socket.ping());
    socket.once('pong', () => {
      socket.terminate();
      resolve({ opened: true });
    });
    socket.once('close', (code, reason) => resolve({ closed: code, reason: reason.toString() }));
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve({ refused: response.statusCode ?? 0, contentType: String(response.headers['content-type']) });
    });
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

test('random socket upgrades (any id, fromSeq and token, on every socket path) are kept or refused as catalogued', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t, { RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_CREATE_PER_MINUTE: '0' });
  const session = await createSession(baseUrl);
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  producer.send({ samples: makeSamples(1, 50) });
  await producer.waitForAck(50);
  const catalogued = new Set<number>(Object.values(closeCodes).map(({ code }) => code));
  const text = fc.oneof(
    // biome-ignore format: a packed list of cases reads better than one a line
    fc.constantFrom(
      '', '0', '1', '25', '50', '51', '9007199254740991', '9007199254740992', '-1', '1.5', ' ', '0x10', '1e3', 'null',
      session.ingestToken, `${session.ingestToken}x`,
    ),
    fc.string({ unit: 'binary', maxLength: 30 }),
  );
  const id = fc.oneof(fc.constant(session.sessionId), fc.uuid(), fc.string({ unit: 'binary', maxLength: 60 }).map(encodeURIComponent));
  const upgrade = fc
    .tuple(fc.constantFrom('live', 'ingest', 'ws'), id, fc.constantFrom('fromSeq', 'token'), text)
    .map(([path, sessionId, name, value]) => {
      const query = `?${name}=${encodeURIComponent(value)}`;
      return path === 'ws' ? `${wsUrl}/ws/${sessionId}${query}` : `${wsUrl}/api/v1/sessions/${sessionId}/${path}${query}`;
    });
  await fc.assert(
    fc.asyncProperty(upgrade, async (url) => {
      const outcome = await upgradeOutcome(url);
      if ('closed' in outcome) {
        assert.ok(
          catalogued.has(outcome.closed) && outcome.closed !== closeCodes.internal_error.code,
          `${url}: closed ${outcome.closed} ${outcome.reason}`,
        );
      } else if ('refused' in outcome) {
        assert.ok(outcome.refused >= 400 && outcome.refused < 500, `${url}: refused ${outcome.refused}`);
        assert.match(outcome.contentType, /^application\/problem\+json/);
      }
    }),
    fuzzParameters(Math.ceil(fuzzRuns(1_500) / 10)),
  );
  assert.equal(producer.closed, null, 'the producer of the session stays connected');
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
  producer.close();
});
