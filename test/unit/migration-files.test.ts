/** The migration files: numbered 1, 2, 3... with no number twice and none skipped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadMigrations } from '../../src/storage/migrations.ts';

test('migrations are numbered one after another, each number once', async () => {
  const versions = (await loadMigrations()).map((migration) => migration.version);
  assert.deepEqual(
    versions,
    versions.map((_, i) => i + 1),
  );
});
