import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { closeCodes, frameErrors, problems } from '../../src/contract/errors.ts';

const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = doc.split('\n').filter((line) => line.startsWith('| '));

test('every REST problem is documented with its status', () => {
  for (const [code, { status }] of Object.entries(problems)) {
    assert.ok(
      rows.some((row) => row.startsWith(`| \`${code}\` | ${status} |`)),
      `docs/errors.md lacks ${code} (${status})`,
    );
  }
});

test('every socket error code is documented', () => {
  for (const code of Object.keys(frameErrors)) {
    assert.ok(
      rows.some((row) => row.startsWith(`| \`${code}\` |`)),
      `docs/errors.md lacks ${code}`,
    );
  }
});

test('every close code is documented with its number', () => {
  for (const [name, { code }] of Object.entries(closeCodes)) {
    assert.ok(
      rows.some((row) => row.startsWith(`| ${code} | \`${name}\` |`)),
      `docs/errors.md lacks ${code} ${name}`,
    );
  }
});
