import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeCodes } from '../../src/contract/errors.ts';
import { closeMeaning, fatalCode } from '../../src/sdk/reconnecting-socket.ts';

test('every close code of the contract means something to a client, by its contract name', () => {
  const fatal: string[] = [];
  for (const [name, { code }] of Object.entries(closeCodes)) {
    const meaning = closeMeaning(code);
    assert.equal(meaning.name, name);
    if (meaning.outcome === 'fatal') fatal.push(`${code} ${name}`);
  }
  assert.deepEqual(fatal.sort(), [
    '1008 policy_violation',
    '1009 message_too_big',
    '4401 invalid_token',
    '4403 forbidden',
    '4404 session_not_found',
  ]);
  assert.deepEqual(closeMeaning(1000), { outcome: 'ended', name: 'normal' });
  assert.deepEqual(closeMeaning(4409), { outcome: 'retry', name: 'producer_conflict' });
});

test('codes outside the contract are network trouble: retry', () => {
  for (const code of [1001, 1006, 4000]) assert.deepEqual(closeMeaning(code), { outcome: 'retry', name: null });
});

test('a 4401 for an expired token renews it; any other 4401 is fatal', () => {
  assert.deepEqual(closeMeaning(4401, 'credential_expired'), { outcome: 'renew', name: 'invalid_token' });
  for (const reason of ['credential_revoked', 'invalid_credential', 'missing_credential', '']) {
    assert.deepEqual(closeMeaning(4401, reason), { outcome: 'fatal', name: 'invalid_token' }, reason);
  }
  assert.deepEqual(closeMeaning(4403, 'credential_expired'), { outcome: 'fatal', name: 'forbidden' });
  assert.deepEqual(closeMeaning(1013, 'identity provider unavailable; retry'), { outcome: 'retry', name: 'try_again_later' });
});

test("a fatal 4401 or 4403 is the error of the refusal its reason names, when the refusal's status is the close's", () => {
  assert.equal(fatalCode('invalid_token', 'credential_revoked'), 'credential_revoked');
  assert.equal(fatalCode('invalid_token', 'credential_expired: no newer token to be had'), 'credential_expired');
  assert.equal(fatalCode('forbidden', 'outside_key_prefix'), 'outside_key_prefix');
  assert.equal(fatalCode('invalid_token', closeCodes.invalid_token.reason), 'invalid_token', "an ingest socket's refusal");
  assert.equal(fatalCode('invalid_token', 'outside_key_prefix'), 'invalid_token', 'a 403 refusal does not name a 4401');
  assert.equal(fatalCode('forbidden', 'credential_revoked'), 'forbidden', 'a 401 refusal does not name a 4403');
  for (const reason of ['', 'toString', 'not_found', 'rate_limited'])
    assert.equal(fatalCode('invalid_token', reason), 'invalid_token', reason);
  assert.equal(fatalCode('session_not_found', 'credential_revoked'), 'session_not_found', 'only access closes name a refusal');
  assert.equal(fatalCode('policy_violation', 'invalid_request'), 'policy_violation');
});
