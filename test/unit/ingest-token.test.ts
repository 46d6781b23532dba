import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashToken, newIngestToken, tokenMatches } from '../../src/sessions/ingest-token.ts';

test('ingest tokens are 256 bits in base64url, each one new, across refills of the random pool', () => {
  const tokens = Array.from({ length: 1_000 }, () => newIngestToken());
  assert.equal(new Set(tokens.map(({ token }) => token)).size, tokens.length);
  for (const { token, hash } of tokens) {
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    assert.deepEqual(hash, hashToken(token));
  }
});

test('a token matches its own hash only', () => {
  const [first, second] = [newIngestToken(), newIngestToken()];
  assert.equal(tokenMatches(first.token, first.hash), true);
  assert.equal(tokenMatches(second.token, first.hash), false);
  assert.equal(tokenMatches(first.token, first.hash.subarray(1)), false);
});
