import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureTriage, failureKind } from '../../src/http/failures.ts';
import { DatabaseUnreachableError } from '../../src/storage/database.ts';

function recorder() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const counted: string[] = [];
  const log = {
    warn: (fields: Record<string, unknown>, message: string) => lines.push({ level: 'warn', fields, message }),
    error: (fields: Record<string, unknown>, message: string) => lines.push({ level: 'error', fields, message }),
  };
  const metrics = { databaseErrors: { labels: (operation: string) => ({ inc: () => counted.push(operation) }) } };
  return { lines, counted, log: log as never, triage: new FailureTriage(metrics as never) };
}

test('a database out of reach is an outage: a warn line with its cause and operation, counted under the operation', () => {
  for (const error of [
    Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    new Error('Connection terminated unexpectedly'),
  ]) {
    const { lines, counted, log, triage } = recorder();
    assert.equal(triage.record(error, log, 'producer_attach'), 'outage');
    assert.deepEqual(counted, ['producer_attach']);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 'warn');
    assert.equal(lines[0].fields.err, error);
    assert.equal(lines[0].fields.operation, 'producer_attach');
  }
});

test('anything else is a bug: an error line, and not counted as a database error', () => {
  for (const error of [new TypeError('x is undefined'), Object.assign(new Error('duplicate key'), { code: '23505' }), 'a thrown string']) {
    const { lines, counted, log, triage } = recorder();
    assert.equal(triage.record(error, log, 'request'), 'bug');
    assert.deepEqual(counted, []);
    assert.deepEqual(
      lines.map((line) => [line.level, line.message, line.fields.operation]),
      [['error', 'unhandled error', 'request']],
    );
  }
});

test('a connection that could not be opened is an outage', () => {
  const { counted, log, triage } = recorder();
  assert.equal(triage.record(new DatabaseUnreachableError(new Error('connect ECONNREFUSED')), log, 'upgrade'), 'outage');
  assert.deepEqual(counted, ['upgrade']);
});

test('failureKind tells an outage from a bug, with nothing to log or count', () => {
  assert.equal(failureKind(new DatabaseUnreachableError(new Error('connect ECONNREFUSED'))), 'outage');
  assert.equal(failureKind(new TypeError('x is undefined')), 'bug');
});
