/**
 * No file of src/ runs over 300 lines without saying why. A long file is usually two parts
 * that could be read apart; when it is not, its header comment (the comment it starts with)
 * says so on a line of its own, starting `Longer than 300 lines because`, followed by the
 * reason. Splitting the file, or giving it its reason, makes this pass.
 *
 * No line of the code we write runs over 140 characters, the width Biome formats to: the
 * tracked .ts (and .mjs) files of src/, test/, bench/ and scripts/, and the .js of public/.
 * Biome cannot break a long string, test name or comment, so those are split or reworded
 * by hand.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const maxLines = 300;
const maxLineLength = 140;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const src = path.join(root, 'src');

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

/** The tracked files whose lines are held to the width, as paths relative to the root. */
function widthCheckedFiles(): string[] {
  const patterns = ['src/*.ts', 'src/*.mjs', 'test/*.ts', 'bench/*.ts', 'scripts/*.ts', 'public/*.js'];
  const out = execFileSync('git', ['ls-files', '-z', '--', ...patterns], { cwd: root, encoding: 'utf8' });
  // A file deleted but not yet staged is still listed.
  return out.split('\0').filter((file) => file !== '' && existsSync(path.join(root, file)));
}

test(`no line of the code in src/, test/, bench/, scripts/ or public/ is over ${maxLineLength} characters`, async () => {
  const files = widthCheckedFiles();
  assert.ok(files.includes('test/unit/file-length.test.ts'), 'git ls-files lists the tracked files');
  const long: string[] = [];
  for (const file of files) {
    const lines = (await readFile(path.join(root, file), 'utf8')).split('\n');
    for (const [i, line] of lines.entries()) {
      // Characters, not UTF-16 units: an emoji in a string counts once.
      const length = [...line].length;
      if (length > maxLineLength) long.push(`${file}:${i + 1}: ${length} characters`);
    }
  }
  assert.deepEqual(long, [], `split these lines, or reword them, to at most ${maxLineLength} characters`);
});
