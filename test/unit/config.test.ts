import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

test("defaults match README.md's settings", () => {
  const config = loadConfig({});
  assert.equal(config.http.host, '127.0.0.1');
  assert.equal(config.http.port, 8080);
  assert.equal(config.http.corsOrigins, '*');
  assert.equal(config.database.url, null);
  assert.equal(config.ingest.maxFrameBytes, 1024 * 1024);
  assert.equal(config.ingest.maxFrameSamples, 10_000);
  assert.equal(config.ingest.hardMaxFrameBytes, 16 * 1024 * 1024);
  assert.equal(config.ingest.maxSamplesPerS, 50_000);
  assert.equal(config.live.maxBufferedBytes, 4 * 1024 * 1024);
  assert.equal(config.sessions.legacyTokenlessEnd, false);
  assert.equal(config.sessions.maxMetadataBytes, 4096);
  assert.equal(config.pingIntervalMs, 15_000);
  assert.equal(config.http.maxViewers, 10_000);
});

test('every bad variable is named in one error', () => {
  try {
    loadConfig({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://x',
      LEGACY_TOKENLESS_END: 'maybe',
      CORS_ORIGINS: 'example.org',
      INGEST_MAX_SAMPLES_PER_S: '-1',
    });
    assert.fail('expected a ConfigError');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    const named = error.problems.map((problem) => problem.split(':')[0]).sort();
    assert.deepEqual(named, ['CORS_ORIGINS', 'DATABASE_URL', 'INGEST_MAX_SAMPLES_PER_S', 'LEGACY_TOKENLESS_END', 'PORT']);
  }
});

test('settings parse from their environment variables', () => {
  const config = loadConfig({
    PORT: '0',
    CORS_ORIGINS: 'https://a.example, https://b.example',
    LEGACY_TOKENLESS_END: 'true',
    INGEST_MAX_SAMPLES_PER_S: '0',
  });
  assert.equal(config.http.port, 0);
  assert.deepEqual(config.http.corsOrigins, ['https://a.example', 'https://b.example']);
  assert.equal(config.sessions.legacyTokenlessEnd, true);
  assert.equal(config.ingest.maxSamplesPerS, 0);
});

test('a per-producer rate below the frame size is refused, since no full frame could ever pass', () => {
  assert.throws(
    () => loadConfig({ INGEST_MAX_SAMPLES_PER_S: '500' }),
    (error: unknown) => error instanceof ConfigError && /INGEST_MAX_SAMPLES_PER_S/.test(error.message),
  );
  assert.equal(loadConfig({ INGEST_MAX_SAMPLES_PER_S: '500', INGEST_MAX_FRAME_SAMPLES: '500' }).ingest.maxSamplesPerS, 500);
});

test('writer lanes must leave the pool connections for creates and reads', () => {
  assert.equal(loadConfig({}).writer.lanes, 4);
  assert.throws(
    () => loadConfig({ WRITE_LANES: '3', DATABASE_POOL_SIZE: '4' }),
    (error: unknown) => error instanceof ConfigError && /WRITE_LANES/.test(error.message),
  );
  assert.equal(loadConfig({ WRITE_LANES: '2', DATABASE_POOL_SIZE: '4' }).writer.lanes, 2);
});

test('roll-ups are kept at least as long as samples, so no aggregate reads empty where samples remain', () => {
  for (const env of [{ ROLLUP_RETENTION_DAYS: '30' }, { RETENTION_DAYS: '30', ROLLUP_RETENTION_DAYS: '29' }]) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => error instanceof ConfigError && /ROLLUP_RETENTION_DAYS/.test(error.message),
    );
  }
  for (const env of [{}, { RETENTION_DAYS: '30' }, { RETENTION_DAYS: '30', ROLLUP_RETENTION_DAYS: '30' }]) {
    const { retention } = loadConfig(env);
    assert.ok(retention.rollupDays === 0 || retention.rollupDays >= retention.days);
  }
  assert.deepEqual(loadConfig({}).retention, { days: 0, rollupDays: 0, aheadDays: 7, intervalMs: 600_000 });
  assert.throws(() => loadConfig({ PARTITIONS_AHEAD_DAYS: '0' }), /PARTITIONS_AHEAD_DAYS/);
});
