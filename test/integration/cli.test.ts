/**
 * The `wavehouse` command line, run as a child process (`node bin/wavehouse.mjs ...`) against
 * the real server: simulate streams a session that export then writes in every format (Parquet
 * read back by DuckDB); export
 * never leaves a file that looks complete when it is not (unknown id, unreachable server, a
 * connection cut mid-body, a body that ends short); tail prints what a producer sends.
 * Every failure is one line on stderr and a non-zero exit code.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { encodeParquetBody } from '../../src/export/parquet-body.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { Producer } from '../../src/sdk/producer.ts';
import type { Sample } from '../../src/sdk/types.ts';
import { startApp } from '../support/app.ts';
import { type Run, runCli, startCli } from '../support/cli.ts';
import { createSession, endSession } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { expectedSample, storeSamplesDirectly } from '../support/export-streams.ts';
import { readParquetFile } from '../support/parquet-reader.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

/** A failure as the CLI promises it: exit code 1 and exactly one line on stderr. */
function assertFailedWith(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0], /^wavehouse: /);
  assert.match(lines[0], pattern);
}

async function tempDir(t: Pick<TestContext, 'after'>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wavehouse-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A port with nothing listening on it (taken, then let go). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function fetchBytes(url: string): Promise<Buffer> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  return Buffer.from(await response.arrayBuffer());
}

/** A Parquet body of `count` samples of one channel `ax`, as the server writes it. */
async function parquetOf(count: number): Promise<Buffer> {
  const batch = SampleBatch.allocate(count, 1);
  for (let i = 0; i < count; i++) [batch.columns[i], batch.columns[count + i], batch.columns[2 * count + i]] = [i + 1, i, 0.5];
  const pieces: Buffer[] = [];
  for await (const piece of encodeParquetBody({ sessionId: 'x', channels: ['ax'], nullable: false }, Readable.from([batch])))
    pieces.push(piece);
  return Buffer.concat(pieces);
}

describe('wavehouse CLI', () => {
  test('simulate streams a heartbeat-shaped session that export writes exactly, in every format', async (t) => {
    const { baseUrl } = await startApp(t);
    const simulated = await runCli(t, ['simulate', '--url', baseUrl, '--rate', '200', '--duration', '1']);
    assert.equal(simulated.code, 0, simulated.stderr);
    const sessionId = /^session\s+(\S+)$/m.exec(simulated.stdout)?.[1];
    assert.ok(sessionId, `a session line in: ${simulated.stdout}`);
    assert.match(simulated.stdout, new RegExp(`^viewer\\s+${baseUrl}/view/${sessionId}$`, 'm'));
    assert.match(simulated.stdout, /^rate\s+200 Hz x 3 channels \(ax, ay, az\)/m);
    assert.match(simulated.stdout, /session ended with 200 stored/);

    const session = (await (await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`)).json()) as {
      status: string;
      sampleCount: number;
      lastSeq: number;
      sampleRateHz: number;
    };
    assert.equal(session.status, 'ended');
    assert.equal(session.sampleCount, 200);
    assert.equal(session.lastSeq, 200);
    assert.equal(session.sampleRateHz, 200);

    const dir = await tempDir(t);
    for (const format of ['csv', 'ndjson', 'json', 'parquet'] as const) {
      const file = path.join(dir, `session.${format}`);
      const exported = await runCli(t, ['export', sessionId, '--format', format, '-o', file, '--url', baseUrl]);
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stderr, new RegExp(`exported 200 samples .* to ${file.replace(/[.\\]/g, '\\$&')}`));
      // Passed through as the server encodes it, byte for byte.
      assert.ok((await readFile(file)).equals(await fetchBytes(`${baseUrl}/api/v1/sessions/${sessionId}/data?format=${format}`)), format);
    }
    assert.deepEqual((await readdir(dir)).sort(), ['session.csv', 'session.json', 'session.ndjson', 'session.parquet']);

    const lines = (await readFile(path.join(dir, 'session.csv'), 'utf8')).split('\n');
    assert.equal(lines[0], 'seq,t,ax,ay,az');
    assert.equal(lines.at(-1), '', 'the last line ends with \\n');
    const rows = lines.slice(1, -1).map((line) => line.split(',').map(Number));
    assert.deepEqual(
      rows.map((row) => row[0]),
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    // The sample clock: exactly 5 ms apart at 200 Hz.
    for (let i = 1; i < rows.length; i++) assert.ok(Math.abs(rows[i][1] - rows[i - 1][1] - 5) < 1e-6, `t step at ${i}`);
    // A chest on its back: gravity on z, and at least one heartbeat (the AO peak) on top of it.
    const az = rows.map((row) => row[4]);
    const mean = az.reduce((sum, value) => sum + value, 0) / az.length;
    assert.ok(Math.abs(mean - 9.79) < 0.05, `az mean ${mean}`);
    assert.ok(Math.max(...az) - Math.min(...az) > 0.08, `az peak to peak ${Math.max(...az) - Math.min(...az)}`);

    const json = JSON.parse(await readFile(path.join(dir, 'session.json'), 'utf8')) as { samples: Sample[] };
    const ndjson = (await readFile(path.join(dir, 'session.ndjson'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Sample);
    assert.deepEqual(ndjson, json.samples);
    assert.equal(json.samples.length, 200);
    const parquet = await readParquetFile(path.join(dir, 'session.parquet'));
    assert.deepEqual(
      parquet.values[0],
      rows.map((row) => BigInt(row[0])),
    );
    assert.deepEqual(
      parquet.values.slice(1),
      [1, 2, 3, 4].map((c) => json.samples.map((sample) => sample[['t', 'ax', 'ay', 'az'][c - 1]])),
    );
  });

  test('simulate --session takes its token from $WAVEHOUSE_TOKEN, a file or stdin, never needing it on the command line', async (t) => {
    const { baseUrl } = await startApp(t);
    const { sessionId, ingestToken } = await createSession(baseUrl);
    const dir = await tempDir(t);
    // 20 samples a run; --keep-open leaves the session open for the next one.
    const simulate = ['simulate', '--url', baseUrl, '--session', sessionId, '--rate', '100', '--duration', '0.2', '--keep-open'];
    const lastSeq = async () => ((await (await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`)).json()) as { lastSeq: number }).lastSeq;
    const assertStreamed = async (run: Run, expectedLastSeq: number, label: string) => {
      assert.equal(run.code, 0, `${label}: ${run.stderr}`);
      assert.match(run.stdout, /^sent 20 samples/m, label);
      assert.ok(!run.stdout.includes(ingestToken), `${label}: a token that was given is not echoed`);
      assert.equal(await lastSeq(), expectedLastSeq, label);
    };

    const viaEnv = await runCli(t, simulate, { env: { WAVEHOUSE_TOKEN: ingestToken } });
    await assertStreamed(viaEnv, 20, 'WAVEHOUSE_TOKEN');
    assert.equal(viaEnv.stderr, '');

    const file = path.join(dir, 'token');
    await writeFile(file, `${ingestToken}\nnot part of the token\n`);
    await chmod(file, 0o600);
    // The file beats the environment.
    const viaFile = await runCli(t, [...simulate, '--token-file', file], { env: { WAVEHOUSE_TOKEN: 'wrong-token' } });
    await assertStreamed(viaFile, 40, '--token-file');
    assert.equal(viaFile.stderr, '', 'no warning for a file only its owner can read');

    await assertStreamed(await runCli(t, [...simulate, '--token-file', '-'], { stdin: `  ${ingestToken}  \n` }), 60, '--token-file -');

    await chmod(file, 0o644);
    const readable = await runCli(t, [...simulate, '--token-file', file]);
    await assertStreamed(readable, 80, 'a file others can read');
    assert.match(readable.stderr, /^wavehouse: warning: token file \S+ is readable by other users \(mode 0644\)/m);

    // The token from the environment is the one sent: the server refuses a wrong one.
    assertFailedWith(await runCli(t, simulate, { env: { WAVEHOUSE_TOKEN: 'wrong-token' } }), /invalid_token/);
    assertFailedWith(
      await runCli(t, [...simulate, '--token-file', path.join(dir, 'absent')], { env: { WAVEHOUSE_TOKEN: ingestToken } }),
      /cannot read token file \S+absent: no such file/,
    );
    const none = await runCli(t, simulate);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /--session needs its ingest token .*--token-file <path>, \$WAVEHOUSE_TOKEN or --token/);
    // --token=<value>: a token may start with '-' (1 in 64 do), which parseArgs refuses as a separate argument.
    const both = await runCli(t, [...simulate, `--token=${ingestToken}`, '--token-file', file]);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /give --token or --token-file, not both/);
    assert.equal(await lastSeq(), 80, 'the refused runs sent nothing');
  });

  test('export of an unknown or malformed session id fails clearly and writes nothing', async (t) => {
    const { baseUrl } = await startApp(t);
    const dir = await tempDir(t);
    const file = path.join(dir, 'out.csv');
    const unknownId = crypto.randomUUID();

    assertFailedWith(
      await runCli(t, ['export', unknownId, '-o', file, '--url', baseUrl]),
      new RegExp(`no session ${unknownId} at ${baseUrl}`),
    );
    assertFailedWith(await runCli(t, ['export', 'not-a-uuid', '-o', file, '--url', baseUrl]), /not a session id: "not-a-uuid"/);
    assert.deepEqual(await readdir(dir), []);
  });

  test('export against an unreachable server fails clearly and writes nothing', async (t) => {
    const dir = await tempDir(t);
    const url = `http://127.0.0.1:${await closedPort()}`;
    assertFailedWith(
      await runCli(t, ['export', crypto.randomUUID(), '-o', path.join(dir, 'out.ndjson'), '--url', url]),
      new RegExp(`cannot reach ${url}: connection refused \\(ECONNREFUSED\\)`),
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('an export cut off mid-body (the server gone) leaves no complete-looking file', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    await storeSamplesDirectly(databaseUrl, session.sessionId, 1, 300_000);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(baseUrl).port) });
    t.after(() => proxy.close());
    const proxiedUrl = `http://127.0.0.1:${proxy.port}`;
    const dir = await tempDir(t);

    // The connection dies when the server sends the row of seq 150,000: half way.
    const middle = Buffer.from('\n150000,');
    let cut = proxy.cutWhenServerSends(middle);
    const file = path.join(dir, 'big.csv');
    const run = await runCli(t, ['export', session.sessionId, '-o', file, '--url', proxiedUrl]);
    await cut;
    assertFailedWith(run, /export failed after \d+ of 300000 samples: .*big\.csv\.partial was removed/);
    assert.deepEqual(await readdir(dir), []);

    // Asked to, it keeps what it got, under the name that says it is partial.
    proxy.restore();
    cut = proxy.cutWhenServerSends(middle);
    const kept = await runCli(t, ['export', session.sessionId, '-o', file, '--keep-partial', '--url', proxiedUrl]);
    await cut;
    assertFailedWith(kept, /the incomplete output is in .*big\.csv\.partial/);
    assert.deepEqual(await readdir(dir), ['big.csv.partial']);
    const partial = await readFile(path.join(dir, 'big.csv.partial'), 'utf8');
    assert.ok(partial.startsWith('seq,t,ax,ay,az\n1,'));
    assert.ok(!partial.includes('\n150000,'), 'nothing from the cut-off chunk on');
  });

  test('an export whose body ends cleanly but short is refused, as is one that ends mid-record', async (t) => {
    // A stand-in server: the session says 1,000 samples; the body brings fewer.
    const sessionId = crypto.randomUUID();
    const parquetAnswers = [await parquetOf(500), (await parquetOf(1_000)).subarray(0, 20_000)];
    const sockets = new Set<Socket>();
    const server = http.createServer((request, response) => {
      if (request.url === `/api/v1/sessions/${sessionId}`) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            sessionId,
            status: 'ended',
            channels: ['ax'],
            sampleCount: 1_000,
            lastSeq: 1_000,
            viewerUrl: `/view/${sessionId}`,
          }),
        );
        return;
      }
      const format = new URL(request.url!, 'http://x').searchParams.get('format');
      response.writeHead(200, { 'content-type': 'text/plain' });
      if (format === 'parquet') {
        // First a whole file of 500 samples, then the first 20,000 bytes of one of 1,000 (no footer).
        response.end(parquetAnswers.shift());
      } else if (format === 'csv') {
        response.end(`seq,t,ax\n${Array.from({ length: 500 }, (_, i) => `${i + 1},${i},0.5\n`).join('')}`);
      } else {
        response.end(`${Array.from({ length: 1_000 }, (_, i) => `{"seq":${i + 1},"t":${i},"ax":0.5}`).join('\n')}\n{"seq":1001,"t`);
      }
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = await tempDir(t);

    assertFailedWith(
      await runCli(t, ['export', sessionId, '-o', path.join(dir, 'short.csv'), '--url', url]),
      /the body ended after 500 of 1000 samples/,
    );
    assertFailedWith(
      await runCli(t, ['export', sessionId, '-o', path.join(dir, 'torn.ndjson'), '--url', url]),
      /the body ended mid-record/,
    );
    assertFailedWith(
      await runCli(t, ['export', sessionId, '-o', path.join(dir, 'short.parquet'), '--url', url]),
      /the body ended after 500 of 1000 samples/,
    );
    assertFailedWith(
      await runCli(t, ['export', sessionId, '-o', path.join(dir, 'torn.parquet'), '--url', url]),
      /the body ended mid-record/,
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('tail prints the samples a producer sends, as NDJSON, and exits when the session ends', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    // Started, and connected, before anything is stored: "from now on" is from the first sample.
    const tail = startCli(t, ['tail', session.sessionId, '--url', baseUrl]);
    await eventually(() => assert.match(tail.stderr(), /^tailing session \S+ from seq 0$/m), { timeoutMs: 15_000 });

    const producer = new Producer({ baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    t.after(() => producer.close());
    const sent = Array.from({ length: 300 }, (_, i) => expectedSample(i + 1));
    sent[4] = { ...sent[4], ay: -0 };
    // Ten at a time, as a sensor would, so that tail sees them arrive live.
    for (let i = 0; i < sent.length; i += 10) producer.push(sent.slice(i, i + 10));
    await eventually(() => assert.ok(tail.stdout().split('\n').length > 300, 'tail printed every sample'), { timeoutMs: 15_000 });
    await producer.end({ timeoutMs: 10_000 });

    const run = await tail.done;
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    // Parsed values compare with Object.is, so -0 must have been printed as -0.
    assert.deepEqual(
      lines.map((line) => JSON.parse(line) as Sample),
      sent,
    );
    assert.ok(
      lines.some((line) => line.includes(':-0,') || line.endsWith(':-0}')),
      'a -0 printed with its sign',
    );

    const fromSeq = await runCli(t, ['tail', session.sessionId, '--from-seq', '291', '--url', baseUrl]);
    assert.equal(fromSeq.code, 0, fromSeq.stderr);
    assert.deepEqual(
      fromSeq.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Sample),
      sent.slice(290),
    );

    assertFailedWith(await runCli(t, ['tail', crypto.randomUUID(), '--url', baseUrl]), /no session .* at /);
  });
});
