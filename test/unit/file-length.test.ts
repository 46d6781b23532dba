/**
 * No file of src/ runs over 300 lines without saying why. A long file is usually two parts
 * that could be read apart; when it is not, its header comment (the comment it starts with)
 * says so on a line of its own, starting `Longer than 300 lines because`, followed by the
 * reason. Splitting the file, or giving it its reason, makes this pass.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const maxLines = 300;
const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** The comment a file starts with: a block comment, or a run of line comments. */
function headerComment(text: string): string {
  return /^\s*(\/\*[\s\S]*?\*\/|(?:\/\/.*\n\s*)+)/.exec(text)?.[1] ?? '';
}

const reason = /^\s*(\*|\/\/)\s*Longer than 300 lines because \S/m;

function lineCount(text: string): number {
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

test(`every src/ file over ${maxLines} lines says at its top why it is longer`, async () => {
  const unexplained: string[] = [];
  const files = (await readdir(src, { recursive: true })).filter((file) => /\.(ts|js|mjs)$/.test(file)).sort();
  for (const file of files) {
    const text = await readFile(path.join(src, file), 'utf8');
    const lines = lineCount(text);
    if (lines > maxLines && !reason.test(headerComment(text))) unexplained.push(`src/${file.split(path.sep).join('/')}: ${lines} lines`);
  }
  assert.deepEqual(unexplained, [], 'split these, or start a line of their header comment with "Longer than 300 lines because"');
});

test('the reason is found in a header comment, and only there', () => {
  const long = (header: string) => `${header}\nexport const x = 1;\n`;
  assert.match(headerComment(long('/**\n * A store.\n *\n * Longer than 300 lines because it is one table.\n */')), reason);
  assert.match(headerComment(long('// A store.\n// Longer than 300 lines because it is one table.')), reason);
  assert.doesNotMatch(headerComment(long('/** A store. */\n// Longer than 300 lines because it is one table.')), reason);
  assert.doesNotMatch(headerComment(long('/** A store; longer than 300 lines because it is one table. */')), reason);
  assert.doesNotMatch(headerComment(long('/**\n * Longer than 300 lines because\n */')), reason);
});
