import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { buildApp } from '../../src/app.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createTracing } from '../../src/observability/tracing.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { SessionState } from '../../src/sessions/session-state.ts';
import { BatchWriter } from '../../src/storage/batch-writer.ts';
import type { SampleStore } from '../../src/storage/sample-store.ts';
import { WriteQueue } from '../../src/storage/write-queue.ts';
import { startApp } from '../support/app.ts';
import { createSession, endSession, ingestUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: OtlpValue }>;
  status?: { code?: number };
}
interface OtlpExport {
  resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: OtlpValue }> }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
}

/** A local OTLP/HTTP receiver: takes JSON exports on POST /v1/traces and keeps them. */
async function startReceiver(t: { after(fn: () => Promise<void>): void }) {
  const bodies: string[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces' || !request.headers['content-type']?.startsWith('application/json')) {
        response.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      bodies.push((request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString());
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('receiver is not on TCP');
  const exports = () => bodies.map((body) => JSON.parse(body) as OtlpExport);
  return {
    url: `http://127.0.0.1:${address.port}`,
    bodies,
    spans: () => exports().flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))),
    serviceNames: () => exports().flatMap((e) => e.resourceSpans.map((r) => attribute(r.resource.attributes, 'service.name'))),
  };
}

function attribute(attributes: OtlpSpan['attributes'], key: string): string | number | boolean | undefined {
  const value = attributes.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.boolValue ?? value.doubleValue;
}

function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

const spanKindServer = 2;
const statusError = 2;

test('with OTEL_EXPORTER_OTLP_ENDPOINT set, requests and commits become spans, and log lines carry their trace id', async (t) => {
  const receiver = await startReceiver(t);
  const database = await freshDatabase();
  t.after(() => database.drop());
  const config = loadConfig({
    PORT: '0',
    DATABASE_URL: database.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: 'wavehouse-under-test',
  });
  const logs = logSink();
  const app = await buildApp(config, { log: createLogger('info', logs.stream) });
  const baseUrl = await app.listen();
  const wsUrl = baseUrl.replace(/^http/, 'ws');

  const session = await createSession(baseUrl, { channels: ['ax', 'ay', 'az'] });
  const incomingTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const incomingParentId = '00f067aa0ba902b7';
  const read = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`, {
    headers: { traceparent: `00-${incomingTraceId}-${incomingParentId}-01`, 'x-request-id': 'traced-read-1' },
  });
  assert.equal(read.status, 200);
  assert.equal((await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=csv&fromSeq=1`)).status, 200);
  assert.equal((await fetch(`${baseUrl}/no/such/route?secret=1`)).status, 404);

  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  producer.send({ samples: makeSamples(1, 50) });
  producer.send({ samples: makeSamples(51, 50) });
  await producer.waitForAck(100);
  producer.close();
  await producer.waitForClose();
  assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);

  await app.close(); // shuts the tracer provider down last, which exports what is buffered

  const spans = await eventually(() => {
    const all = receiver.spans();
    assert.ok(
      all.some((span) => span.name === 'POST /api/v1/sessions/:id/end'),
      'the last request is exported',
    );
    return all;
  });
  assert.ok(receiver.serviceNames().every((name) => name === 'wavehouse-under-test'));
  const http = (name: string) => {
    const found = spans.filter((span) => span.name === name);
    assert.equal(found.length, 1, `one span named ${name}; got ${spans.map((span) => span.name).join(', ')}`);
    const span = found[0];
    assert.equal(span.kind, spanKindServer);
    return { span, attr: (key: string) => attribute(span.attributes, key) };
  };

  const create = http('POST /api/v1/sessions');
  assert.equal(create.attr('http.request.method'), 'POST');
  assert.equal(create.attr('http.route'), '/api/v1/sessions');
  assert.equal(create.attr('url.path'), '/api/v1/sessions');
  assert.equal(create.attr('http.response.status_code'), 201);
  assert.notEqual(create.span.status?.code, statusError);

  const traced = http('GET /api/v1/sessions/:id');
  assert.equal(traced.span.traceId, incomingTraceId, 'the incoming traceparent is continued');
  assert.equal(traced.span.parentSpanId, incomingParentId);
  assert.equal(traced.attr('url.path'), `/api/v1/sessions/${session.sessionId}`);
  assert.equal(traced.attr('http.response.status_code'), 200);
  assert.notEqual(create.span.traceId, incomingTraceId, 'a request without traceparent starts its own trace');

  const data = http('GET /api/v1/sessions/:id/data');
  assert.equal(data.attr('url.path'), `/api/v1/sessions/${session.sessionId}/data`);
  assert.equal(data.attr('http.response.status_code'), 200);

  const missing = http('GET');
  assert.equal(missing.attr('http.route'), undefined);
  assert.equal(missing.attr('url.path'), '/no/such/route');
  assert.equal(missing.attr('http.response.status_code'), 404);

  const upgrade = http('GET /api/v1/sessions/:id/ingest');
  assert.equal(upgrade.attr('http.response.status_code'), 101);
  assert.equal(upgrade.attr('url.path'), `/api/v1/sessions/${session.sessionId}/ingest`);

  const end = http('POST /api/v1/sessions/:id/end');
  assert.equal(end.attr('http.response.status_code'), 200);

  const exported = receiver.bodies.join('\n');
  assert.ok(!exported.includes(session.ingestToken), 'the ingest token is in no span');
  for (const query of ['token=', 'format=csv', 'fromSeq=', 'secret=', '?'])
    assert.ok(!exported.includes(query), `"${query}" is in an exported span`);

  const commits = spans.filter((span) => span.name === 'wavehouse.commit');
  assert.ok(commits.length >= 1, 'at least one commit span');
  const committed = commits.reduce((sum, span) => sum + Number(attribute(span.attributes, 'wavehouse.commit.samples')), 0);
  assert.equal(committed, 100, 'the commit spans account for every sample');
  for (const commit of commits) {
    assert.ok(Number(attribute(commit.attributes, 'wavehouse.commit.samples')) >= 1);
    assert.ok(Number(attribute(commit.attributes, 'wavehouse.commit.chunk_rows')) >= 1);
    assert.equal(attribute(commit.attributes, 'wavehouse.commit.sessions'), 1);
    assert.ok(Number(attribute(commit.attributes, 'wavehouse.commit.attempts')) >= 1);
    assert.notEqual(commit.status?.code, statusError);
  }

  const readLines = logs.lines.filter((line) => line.reqId === 'traced-read-1');
  assert.ok(readLines.some((line) => line.msg === 'incoming request'));
  assert.ok(readLines.some((line) => line.msg === 'request completed'));
  for (const line of readLines) {
    assert.equal(line.traceId, incomingTraceId, `a line of the request without its trace id: ${JSON.stringify(line)}`);
    assert.equal(line.spanId, traced.span.spanId);
  }
  const createLines = logs.lines.filter((line) => line.reqId !== undefined && line.traceId === create.span.traceId);
  assert.ok(createLines.length >= 2, 'the create request logs under its own trace id');
});

test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing is traced or sent, whatever the process environment holds', async (t) => {
  const receiver = await startReceiver(t);
  // Only the Config decides: the SDK would read this if it ran at all.
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  t.after(() => {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  });
  const { app, baseUrl, wsUrl } = await startApp(t);
  const session = await createSession(baseUrl);
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  producer.send({ samples: makeSamples(1, 20) });
  await producer.waitForAck(20);
  producer.close();
  await producer.waitForClose();
  const read = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`, {
    headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  });
  assert.equal(read.status, 200);
  await app.close();
  assert.deepEqual(receiver.bodies, []);
});

test('a commit retried after a failure is one span, with the failure as an event and on a log line with its trace id', async (t) => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const logs = logSink();
  let calls = 0;
  const store = {
    isCommitted: async () => false,
    commitChunks: async () => {
      if (calls++ === 0) throw new Error('connection reset by peer');
    },
  } as unknown as SampleStore;
  const counters = { committed: () => undefined, acked: () => undefined, failed: () => undefined };
  const queue = new WriteQueue({ maxQueuedBytes: 1024 * 1024 });
  const session = new SessionState({
    sessionId: '00000000-0000-4000-8000-000000000001',
    channels: ['ax'],
    lastCommittedSeq: -1,
    windowMaxBytes: 1 << 20,
  });
  const batch = SampleBatch.allocate(3, 1);
  batch.columns.set([1, 2, 3, 10, 20, 30, 0.1, 0.2, 0.3]);
  session.highestAcceptedSeq = 3;
  queue.push(session, batch, Date.now());
  const limits = { maxBatchAgeMs: 1, maxBatchSamples: 100_000, maxChunkSamples: 100 };
  const writer = new BatchWriter({
    queue,
    store,
    limits,
    log: createLogger('info', logs.stream),
    counters,
    tracer: provider.getTracer('test'),
  });
  writer.start();
  t.after(() => writer.drain(5_000));
  await eventually(() => assert.equal(session.committedSeq, 3));

  const [span, ...others] = exporter.getFinishedSpans();
  assert.deepEqual(others, []);
  assert.equal(span.name, 'wavehouse.commit');
  assert.deepEqual(span.attributes, {
    'wavehouse.commit.samples': 3,
    'wavehouse.commit.chunk_rows': 1,
    'wavehouse.commit.sessions': 1,
    'wavehouse.commit.attempts': 2,
  });
  assert.deepEqual(
    span.events.map((event) => event.name),
    ['exception'],
  );
  assert.notEqual(span.status.code, statusError, 'it did commit in the end');
  const failure = logs.lines.find((line) => line.msg === 'commit failed; retrying');
  assert.ok(failure);
  assert.equal(failure.traceId, span.spanContext().traceId);
  assert.equal(failure.spanId, span.spanContext().spanId);
});

test('with the collector not answering, shutdown waits its budget, says the spans not sent are dropped, and is done', async (t) => {
  const silent = createServer(() => undefined); // takes the export and never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    silent.closeAllConnections();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const { port } = silent.address() as { port: number };
  const logs = logSink();
  const tracing = createTracing({ otlpEndpoint: `http://127.0.0.1:${port}`, serviceName: 'wavehouse' }, createLogger('info', logs.stream), {
    shutdownMs: 200,
  });
  tracing.tracer.startSpan('work').end();
  await tracing.shutdown();
  const dropped = logs.lines.find((line) => line.msg === 'span export unfinished at shutdown; the spans not yet sent are dropped');
  assert.ok(dropped, JSON.stringify(logs.lines));
  assert.equal(dropped.waitedMs, 200);
});

test('OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL; OTEL_SERVICE_NAME defaults to wavehouse', () => {
  assert.deepEqual(loadConfig({}).tracing, { otlpEndpoint: null, serviceName: 'wavehouse' });
  assert.equal(
    loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector.example:4318' }).tracing.otlpEndpoint,
    'https://collector.example:4318',
  );
  for (const bad of ['collector:4318', 'grpc://collector:4317', 'not a url']) {
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: bad }),
      (error: unknown) =>
        error instanceof ConfigError && error.problems.some((problem) => problem.startsWith('OTEL_EXPORTER_OTLP_ENDPOINT:')),
      bad,
    );
  }
});
