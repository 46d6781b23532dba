/** The migration files: numbered 1, 2, 3... with no number twice and none skipped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadMigrations, statementsOf } from '../../src/storage/migrations.ts';

test('migrations are numbered one after another, each number once', async () => {
  const versions = (await loadMigrations()).map((migration) => migration.version);
  assert.deepEqual(
    versions,
    versions.map((_, i) => i + 1),
  );
});

test("a no-transaction file's statements end with `;` at a line's end, a DO block's body staying whole", () => {
  const sql = [
    '-- wavehouse: no transaction',
    'ALTER TABLE a ADD COLUMN b int;',
    '-- a comment;',
    'DO $$',
    'BEGIN',
    '  ALTER TABLE a RENAME TO c;',
    '  ALTER TABLE c RENAME TO a;',
    'END $$;',
    'SELECT 1;',
    '',
  ].join('\n');
  assert.deepEqual(
    statementsOf(sql).map((statement) => statement.replace(/--.*$/gm, '').trim()),
    ['ALTER TABLE a ADD COLUMN b int;', 'DO $$\nBEGIN\n  ALTER TABLE a RENAME TO c;\n  ALTER TABLE c RENAME TO a;\nEND $$;', 'SELECT 1;'],
  );
});
