/** Null values of a nullable session, end to end: socket (JSON and binary) in, live, stored, every /data format, the SDK. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Producer, readData } from '../../src/sdk/index.ts';
import { startApp } from '../support/app.ts';
import { binaryFrame, createSession, ingestUrl, liveUrl, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

const sent = [
  { seq: 1, t: 10, a: null, b: 1.5 },
  { seq: 2, t: 11, a: -0.25, b: null },
  { seq: 3, t: 12, a: null, b: null },
];

test('a nullable session takes nulls from JSON and binary frames, shows them live and stores them exactly', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t);
  const session = await createSession(baseUrl, { channels: ['a', 'b'], nullable: true });
  assert.equal((await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json()).nullable, true);
  const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
  t.after(() => viewer.close());
  await viewer.opened;
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  t.after(() => producer.close());
  await producer.opened;
  producer.send({ samples: sent.slice(0, 2) });
  // A binary frame marks a null with NaN; 0 stays 0.
  producer.socket.send(
    binaryFrame([
      [3, 12, Number.NaN, Number.NaN],
      [4, 13, 0, Number.NaN],
    ]),
  );
  await producer.waitForAck(4);
  assert.deepEqual(producer.ofType('error'), []);
  const expected = [...sent, { seq: 4, t: 13, a: 0, b: null }];
  await eventually(() => assert.deepEqual(viewer.samples, expected));

  const data = (format: string) => fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=${format}`).then((r) => r.text());
  assert.deepEqual(JSON.parse(await data('json')).samples, expected);
  assert.deepEqual(
    (await data('ndjson'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line)),
    expected,
  );
  assert.equal(await data('csv'), 'seq,t,a,b\n1,10,,1.5\n2,11,-0.25,\n3,12,,\n4,13,0,\n');
  const read = [];
  for await (const sample of readData(baseUrl, session.sessionId)) read.push(sample);
  assert.deepEqual(read, expected);
  const latest = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/latest`).then((r) => r.json());
  assert.deepEqual(latest.sample, expected[3]);
});

test('a session that is not nullable refuses a null in either encoding and stores nothing of the frame', async (t) => {
  const { baseUrl, wsUrl } = await startApp(t);
  const session = await createSession(baseUrl, { channels: ['a', 'b'] });
  assert.equal((await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json()).nullable, false);
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  t.after(() => producer.close());
  await producer.opened;
  producer.send({ samples: sent.slice(0, 1) });
  producer.socket.send(binaryFrame([[2, 11, Number.NaN, 1]]));
  producer.send({ samples: [{ seq: 3, t: 12, a: 1, b: 2 }] });
  await producer.waitForAck(3);
  assert.deepEqual(
    producer.ofType('error').map((frame) => frame.code),
    ['invalid_frame', 'invalid_frame'],
  );
  const stored = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data`).then((r) => r.json());
  assert.deepEqual(stored.samples, [{ seq: 3, t: 12, a: 1, b: 2 }]);
  for (const nullable of ['yes', 1, null]) {
    const answer = await fetch(`${baseUrl}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nullable }),
    });
    assert.equal(answer.status, 400);
  }
});

test('the SDK producer sends nulls to a nullable session, and refuses to start on one that is not', async (t) => {
  const { baseUrl } = await startApp(t);
  const nullable = await createSession(baseUrl, { channels: ['a', 'b'], nullable: true });
  const producer = new Producer({
    baseUrl,
    sessionId: nullable.sessionId,
    token: nullable.ingestToken,
    channels: ['a', 'b'],
    nullable: true,
  });
  producer.push(sent.map(({ t: at, a, b }) => ({ t: at, a, b })));
  await producer.end();
  const read = [];
  for await (const sample of readData(baseUrl, nullable.sessionId)) read.push(sample);
  assert.deepEqual(read, sent);
  assert.throws(() => new Producer({ baseUrl, sessionId: nullable.sessionId, token: 'x', channels: ['a', 'b'] }).push({ a: null, b: 1 }));

  const strict = await createSession(baseUrl, { channels: ['a', 'b'] });
  const refused = new Producer({ baseUrl, sessionId: strict.sessionId, token: strict.ingestToken, channels: ['a', 'b'], nullable: true });
  const failure = new Promise<{ code: string }>((resolve) => refused.on('error', resolve));
  refused.push({ a: null, b: 1 });
  assert.equal((await failure).code, 'not_nullable');
  refused.close();
});

test('HTTP ingest takes nulls as JSON null and empty CSV fields in a nullable session, and refuses them elsewhere', async (t) => {
  const { baseUrl } = await startApp(t);
  const post = (session: { sessionId: string; ingestToken: string }, type: string, body: string) =>
    fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/samples`, {
      method: 'POST',
      headers: { 'content-type': type, authorization: `Bearer ${session.ingestToken}` },
      body,
    });
  const nullable = await createSession(baseUrl, { channels: ['a', 'b'], nullable: true });
  assert.equal((await post(nullable, 'text/csv', 'seq,t,a,b\n1,10,,1.5\n2,11,-0.25,\n')).status, 200);
  assert.equal((await post(nullable, 'application/json', JSON.stringify({ samples: [sent[2]] }))).status, 200);
  const stored = await fetch(`${baseUrl}/api/v1/sessions/${nullable.sessionId}/data`).then((r) => r.json());
  assert.deepEqual(stored.samples, sent);

  const strict = await createSession(baseUrl, { channels: ['a', 'b'] });
  const refused = await post(strict, 'text/csv', 'seq,t,a,b\n1,10,,1.5\n');
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).code, 'invalid_frame');
});
