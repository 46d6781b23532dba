/** The secrets' format (src/access/key-format.ts) and how a presented credential is classified (bearer.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bearerText, classifyCredential, maxCredentialLength, parseAuthorization, socketCredential } from '../../src/access/bearer.ts';
import { hashSecret, isApiKey, isRefreshToken, newApiKey, newRefreshToken, sameHash } from '../../src/access/key-format.ts';

describe('key format', () => {
  test('keys are wh_ and 32 random bytes in base64url, each one new, stored as their SHA-256', () => {
    const keys = Array.from({ length: 1_000 }, () => newApiKey());
    assert.equal(new Set(keys.map(({ secret }) => secret)).size, keys.length);
    for (const { secret, hash } of keys) {
      assert.match(secret, /^wh_[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(secret.slice(3), 'base64url').length, 32);
      assert.equal(isApiKey(secret), true);
      assert.equal(hash.length, 32);
      assert.deepEqual(hash, hashSecret(secret));
    }
  });

  test('a key is wh_ and 32 to 256 base64url characters', () => {
    assert.equal(isApiKey(`wh_${'a'.repeat(32)}`), true);
    assert.equal(isApiKey(`wh_${'a'.repeat(256)}`), true);
    for (const bad of [
      `wh_${'a'.repeat(31)}`,
      `wh_${'a'.repeat(257)}`,
      `WH_${'a'.repeat(43)}`,
      `wh_${'a'.repeat(42)}=`,
      `wh_${'a'.repeat(42)}+`,
      `whr_${'a'.repeat(43)}`,
      '',
    ]) {
      assert.equal(isApiKey(bad), false, bad);
    }
  });

  test('refresh tokens are whr_ and 43 base64url characters, never taken for a key', () => {
    const { secret } = newRefreshToken();
    assert.match(secret, /^whr_[A-Za-z0-9_-]{43}$/);
    assert.equal(isRefreshToken(secret), true);
    assert.equal(isApiKey(secret), false);
    assert.equal(isRefreshToken(newApiKey().secret), false);
  });

  test('hashes compare in full: a different or shorter hash never matches', () => {
    const { secret, hash } = newApiKey();
    assert.equal(sameHash(hashSecret(secret), hash), true);
    assert.equal(sameHash(hashSecret(newApiKey().secret), hash), false);
    assert.equal(sameHash(hash.subarray(1), hash), false);
  });
});

describe('bearer credentials', () => {
  const key = newApiKey().secret;
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

  test('a key, a JWT and any other token are told apart by their shape', () => {
    assert.deepEqual(parseAuthorization(`Bearer ${key}`), { kind: 'api-key', text: key });
    assert.deepEqual(parseAuthorization(`bearer   ${jwt}  `), { kind: 'jwt', text: jwt });
    assert.deepEqual(parseAuthorization('Bearer ingest-token_43charsxxxxxxxxxxxxxxxxxxxxx'), {
      kind: 'opaque',
      text: 'ingest-token_43charsxxxxxxxxxxxxxxxxxxxxx',
    });
    assert.deepEqual(parseAuthorization('Bearer a.b.'), { kind: 'jwt', text: 'a.b.' });
  });

  test('no header is absent; a header that is not one bearer credential is malformed, never absent', () => {
    assert.equal(parseAuthorization(undefined), 'absent');
    for (const header of [
      '',
      'Bearer',
      'Bearer ',
      `Basic ${key}`,
      `Bearer ${key} extra`,
      'Bearer a,b',
      'Bearer =abc',
      `Bearer wh_${'a'.repeat(10)}`,
      `Bearer ${'a'.repeat(maxCredentialLength + 1)}`,
    ]) {
      assert.equal(parseAuthorization(header), 'malformed', header.slice(0, 40));
    }
  });

  test('the text after Bearer is any one token, classified or not (what METRICS_TOKEN is compared to)', () => {
    assert.deepEqual(bearerText('Bearer metrics-token-0123456789abcdef'), { text: 'metrics-token-0123456789abcdef' });
    assert.deepEqual(bearerText('bearer\t wh_not-a-key '), { text: 'wh_not-a-key' });
    assert.equal(parseAuthorization('Bearer wh_not-a-key'), 'malformed');
    assert.equal(bearerText(undefined), 'absent');
    for (const header of [
      '',
      'Bearer',
      'Bearer  ',
      'Basic abc',
      'Bearer a b',
      'Bearer\u00a0abc',
      'Bearerabc',
      `Bearer ${'a'.repeat(9000)}`,
    ]) {
      assert.equal(bearerText(header), 'malformed', header.slice(0, 40));
    }
  });

  test('a socket takes the header first, then ?access_token=; an empty one is malformed', () => {
    assert.deepEqual(socketCredential(undefined, key), { kind: 'api-key', text: key });
    assert.deepEqual(socketCredential(`Bearer ${jwt}`, key), { kind: 'jwt', text: jwt });
    assert.equal(socketCredential(undefined, null), 'absent');
    assert.equal(socketCredential(undefined, ''), 'malformed');
    assert.equal(classifyCredential('a b'), 'malformed');
  });
});
