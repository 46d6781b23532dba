import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

test('a headers timeout longer than the request timeout is refused: the headers are part of the request', () => {
  assert.deepEqual(problemsOf({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }), [
    'HTTP_HEADERS_TIMEOUT_MS: must be at most HTTP_REQUEST_TIMEOUT_MS',
  ]);
  assert.deepEqual(problemsOf({ HTTP_HEADERS_TIMEOUT_MS: '10000', HTTP_REQUEST_TIMEOUT_MS: '10000' }), []);
});

test('the connection cap per address is off behind a reverse proxy unless set: every connection comes from the proxy', () => {
  const direct = loadConfig({}).http.maxConnectionsPerIp;
  assert.ok(direct > loadConfig({}).http.maxSocketsPerIp, 'a client at its WebSocket cap can still make REST requests');
  assert.equal(loadConfig({ TRUST_PROXY: '1' }).http.maxConnectionsPerIp, 0);
  assert.equal(loadConfig({ TRUST_PROXY: '1', HTTP_MAX_CONNECTIONS_PER_IP: '5000' }).http.maxConnectionsPerIp, 5000);
  assert.equal(loadConfig({ HTTP_MAX_CONNECTIONS_PER_IP: '0' }).http.maxConnectionsPerIp, 0);
});

test('a METRICS_TOKEN too short to be safe, or that cannot travel in a bearer header, is refused', () => {
  assert.deepEqual(problemsOf({ METRICS_TOKEN: 'a'.repeat(32) }), []);
  for (const token of ['secret', 'has a space in it, quite long', 'quoted"0123456789abcdef']) {
    assert.deepEqual(
      problemsOf({ METRICS_TOKEN: token }).map((problem) => problem.split(':')[0]),
      ['METRICS_TOKEN'],
      token,
    );
  }
});
