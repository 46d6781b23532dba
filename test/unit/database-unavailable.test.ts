import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DatabaseUnreachableError, isDatabaseUnavailable } from '../../src/storage/database.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

test('a lost or refused link, or a server that cannot serve now, is unavailable; a refused request is not', () => {
  const unavailable = [
    withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
    withCode('ECONNRESET'),
    withCode('ENOTFOUND'),
    withCode('08006', 'connection failure'),
    withCode('53300', 'sorry, too many clients already'),
    withCode('25006', 'cannot execute INSERT in a read-only transaction'),
    withCode('57P01', 'terminating connection due to administrator command'),
    withCode('57P03', 'the database system is starting up'),
    new Error('Connection terminated unexpectedly'),
    new Error('Connection terminated due to connection timeout'),
    new Error('timeout exceeded when trying to connect'),
    new DatabaseUnreachableError(withCode('ECONNREFUSED')),
  ];
  for (const error of unavailable)
    assert.equal(isDatabaseUnavailable(error), true, `${error.message} (${(error as { code?: string }).code})`);
  const refused = [
    withCode('23505', 'duplicate key value violates unique constraint'),
    withCode('57014', 'canceling statement due to statement timeout'),
    withCode('42P01', 'relation "x" does not exist'),
    // A protocol violation is a bug or a pooler refusing a startup parameter, not an outage.
    withCode('08P01', 'bind message supplies 1 parameters, but prepared statement requires 2'),
    // What pg says of a client this process ended itself.
    new Error('Connection terminated'),
    new Error('something else', { cause: withCode('ECONNREFUSED') }),
    'Connection terminated unexpectedly',
    null,
  ];
  for (const error of refused) assert.equal(isDatabaseUnavailable(error), false, String(error));
});
