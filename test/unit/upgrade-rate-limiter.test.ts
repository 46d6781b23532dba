import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UpgradeRateLimiter } from '../../src/http/upgrade-rate-limiter.ts';

function clock(startMs = 1_000_000) {
  const time = { now: startMs };
  return { time, nowMs: () => time.now };
}

test('a client gets perMinute attempts a window, then the seconds to the next one; other clients are counted apart', () => {
  const { time, nowMs } = clock();
  const limiter = new UpgradeRateLimiter(2, nowMs);
  assert.equal(limiter.take('a'), null);
  assert.equal(limiter.take('a'), null);
  assert.equal(limiter.take('a'), 60);
  assert.equal(limiter.take('b'), null);
  time.now += 30_500;
  assert.equal(limiter.take('a'), 30);
  time.now += 29_499;
  assert.equal(limiter.take('a'), 1, 'never 0: Retry-After 0 would invite an immediate retry');
  time.now += 1;
  assert.equal(limiter.take('a'), null, 'a new window');
  assert.equal(limiter.take('a'), null);
  assert.equal(limiter.take('a'), 60);
});

test('0 is no limit', () => {
  const limiter = new UpgradeRateLimiter(0, clock().nowMs);
  for (let i = 0; i < 1_000; i++) assert.equal(limiter.take('a'), null);
});

test('its memory is bounded: past 100,000 clients in a window, more go uncounted, and the counted ones stay limited', () => {
  const { time, nowMs } = clock();
  const limiter = new UpgradeRateLimiter(1, nowMs);
  assert.equal(limiter.take('counted'), null);
  for (let i = 1; i < 100_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}-${i}`);
  for (let i = 0; i < 5; i++) assert.equal(limiter.take('late-comer'), null);
  assert.equal(limiter.take('counted'), 60);
  time.now += 60_000;
  assert.equal(limiter.take('late-comer'), null);
  assert.equal(limiter.take('late-comer'), 60, 'counted again once the window has emptied');
});
