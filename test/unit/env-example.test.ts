/**
 * The settings are declared once, in src/config.ts: .env.example is written from the
 * declaration, and the README's configuration table lists the same settings with the same
 * defaults.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { envExample } from '../../scripts/env-example.ts';
import { loadConfig, settingSections } from '../../src/config.ts';

const root = new URL('../../', import.meta.url);
const declared = new Map(settingSections.flatMap(({ settings }) => Object.entries(settings)));

test('.env.example is what the declared settings write (run npm run env-example)', async () => {
  assert.equal(await readFile(new URL('.env.example', root), 'utf8'), envExample());
});

test("the README's configuration table lists every declared setting, and no other, with its default", async () => {
  const readme = await readFile(new URL('README.md', root), 'utf8');
  const rows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \|/gm)].map(([, name, cell]) => [name!, cell!.trim()] as const);
  assert.deepEqual(rows.map(([name]) => name).sort(), [...declared.keys()].sort());
  for (const [name, cell] of rows) {
    const setting = declared.get(name)!;
    // A cell that is one literal is the default; (unset) is no default; the rest explain one.
    const literal = /^`([^`]*)`$/.exec(cell);
    if (literal) assert.equal(literal[1], String(setting.default), `the README's default of ${name}`);
    if (cell === '(unset)') assert.equal(setting.default, null, `the README's default of ${name}`);
  }
});

test('the declared defaults are the defaults the configuration loads with', () => {
  const defaults = Object.fromEntries(
    [...declared].filter(([, setting]) => setting.default !== null).map(([name, setting]) => [name, String(setting.default)]),
  );
  assert.deepEqual(loadConfig(defaults), loadConfig({}));
});
