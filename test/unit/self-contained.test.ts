/**
 * The repository stands alone: a clone holds everything its files refer to.
 *
 * Files once pointed at the workspace around the checkout (the design and the machine's
 * limits, in a `shared` folder beside it), which no clone has: a reader of a fresh clone
 * followed dead links, and comments cited a source nobody else could read. Their content now
 * lives in docs/architecture.md and docs/performance.md. This fails when that comes back:
 * - a tracked text file names that shared folder by a relative path;
 * - a tracked text file holds a relative Markdown link that leaves the repository root;
 * - README.md or docs/*.md link a relative path that is not a file or folder of the repository,
 *   or a `#heading` that the Markdown file it names does not have.
 *
 * "Of the repository" means tracked by git (`git ls-files`) and present on disk: a link to a file
 * that exists only in this checkout (ignored, or not yet added) would be dead in a clone too.
 * bench/results/ (recorded runs, kept as they were written) and package-lock.json are skipped.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Built from parts so that this file does not name the folder it looks for.
const sharedFolder = ['..', 'shared', ''].join('/');

function isSkipped(file: string): boolean {
  return file.startsWith('bench/results/') || file === 'package-lock.json';
}

/** Tracked files that are still on disk, as paths relative to the root with `/` separators. */
function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  // A file deleted but not yet staged is not in the tree either; a submodule is not a file.
  return out.split('\0').filter((file) => file !== '' && existsSync(path.join(root, file)) && statSync(path.join(root, file)).isFile());
}

/** The file's text, or null for a binary file (a NUL byte in it), which holds no links. */
function readText(file: string): string | null {
  const bytes = readFileSync(path.join(root, file));
  return bytes.includes(0) ? null : bytes.toString('utf8');
}

/**
 * Markdown's code (fenced blocks and inline spans) blanked out, keeping every offset: what is
 * shown as code is not a link, whatever it looks like.
 */
function withoutCode(markdown: string): string {
  return withoutCodeBlocks(markdown).replace(/(`+)(?!`)[\s\S]*?[^`]\1(?!`)/g, blank);
}

function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/^( {0,3})(`{3,}|~{3,})[^\n]*\n[\s\S]*?(?:^ {0,3}\2[^\n]*$|(?![\s\S]))/gm, blank);
}

function blank(text: string): string {
  return text.replace(/[^\n]/g, ' ');
}

interface Link {
  target: string;
  line: number;
}

/** Inline links `[text](target "title")` and, in Markdown, reference definitions `[label]: target`. */
function markdownLinks(text: string, markdown: boolean): Link[] {
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  const links: Link[] = [];
  const inline = /\[(?:[^[\]\n]|\[[^[\]\n]*\])*\]\(\s*(<[^>\n]*>|[^\s()]+)/g;
  for (const match of text.matchAll(inline)) links.push({ target: match[1], line: lineOf(match.index ?? 0) });
  if (markdown) {
    const definition = /^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)/gm;
    for (const match of text.matchAll(definition)) links.push({ target: match[1], line: lineOf(match.index ?? 0) });
  }
  return links.map((link) => ({ ...link, target: link.target.replace(/^<|>$/g, '') }));
}

/** The repository path a link names, relative to the root (may start with `..`), or null for a URL or an anchor of the same page. */
function resolveLink(file: string, target: string): string | null {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(target) || target.startsWith('//') || target.startsWith('#')) return null;
  const pathPart = target.replace(/[?#].*$/, '');
  if (pathPart === '') return null;
  let decoded = pathPart;
  try {
    decoded = decodeURI(pathPart);
  } catch {
    // Not percent-encoded after all: taken as written.
  }
  // On GitHub a leading `/` is the repository's root.
  const base = decoded.startsWith('/') ? root : path.dirname(path.join(root, file));
  return path.relative(root, path.join(base, decoded)).split(path.sep).join('/');
}

function decodedFragment(fragment: string): string {
  try {
    return decodeURIComponent(fragment);
  } catch {
    return fragment;
  }
}

function leavesRoot(relative: string): boolean {
  return relative === '..' || relative.startsWith('../') || path.isAbsolute(relative);
}

const files = trackedFiles().filter((file) => !isSkipped(file));
const texts = new Map<string, string>();
for (const file of files) {
  const text = readText(file);
  if (text !== null) texts.set(file, text);
}

test('the repository has tracked text files to check', () => {
  // Guards against a check that passes because git listed nothing (run outside a checkout).
  assert.ok(texts.has('README.md') && texts.size > 50, `only ${texts.size} text files found under ${root}`);
});

test('no tracked file names the workspace outside the repository', () => {
  const offenders: string[] = [];
  for (const [file, text] of texts) {
    text.split('\n').forEach((line, index) => {
      if (line.includes(sharedFolder)) offenders.push(`${file}:${index + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(
    offenders,
    [],
    `files refer to ${sharedFolder}, which a clone does not have; refer to the repository's own docs instead`,
  );
});

test('no relative Markdown link leaves the repository root', () => {
  const offenders: string[] = [];
  for (const [file, text] of texts) {
    const markdown = file.endsWith('.md');
    for (const { target, line } of markdownLinks(markdown ? withoutCode(text) : text, markdown)) {
      const resolved = resolveLink(file, target);
      if (resolved !== null && leavesRoot(resolved)) offenders.push(`${file}:${line}: ${target}`);
    }
  }
  assert.deepEqual(offenders, [], 'links that point outside the repository, dead in any clone');
});

/**
 * The anchors of a Markdown file's headings, as GitHub makes them: lower case, punctuation
 * dropped (letters, digits, `-`, `_` and spaces kept), spaces as `-`, and `-1`, `-2`... after a
 * repeat; plus any explicit `id="..."` or `name="..."`.
 */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of withoutCodeBlocks(markdown).matchAll(/^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$/gm)) {
    const text = match[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  for (const match of markdown.matchAll(/\b(?:id|name)="([^"]+)"/g)) anchors.add(match[1]);
  return anchors;
}

test('every relative link in README.md and docs/*.md names a file or folder of the repository, and its heading if it names one', () => {
  const present = new Set(files);
  // Folders of tracked files: a link may name a folder (deploy/, say).
  for (const file of files) {
    for (let dir = path.posix.dirname(file); dir !== '.'; dir = path.posix.dirname(dir)) present.add(dir);
  }
  present.add('');
  const docs = [...texts.keys()].filter((file) => file === 'README.md' || /^docs\/[^/]+\.md$/.test(file));
  assert.ok(docs.includes('README.md') && docs.length > 1);
  const offenders: string[] = [];
  for (const file of docs) {
    for (const { target, line } of markdownLinks(withoutCode(texts.get(file) ?? ''), true)) {
      // `#heading` alone is a heading of this same file.
      const resolved = target.startsWith('#') ? file : resolveLink(file, target);
      if (resolved === null) continue;
      const normalised = resolved.replace(/\/+$/, '');
      if (!present.has(normalised)) {
        offenders.push(`${file}:${line}: ${target}`);
        continue;
      }
      const fragment = /#(.+)$/.exec(target)?.[1];
      if (
        fragment !== undefined &&
        normalised.endsWith('.md') &&
        !headingAnchors(readFileSync(path.join(root, normalised), 'utf8')).has(decodedFragment(fragment))
      ) {
        offenders.push(`${file}:${line}: ${target} (no such heading)`);
      }
    }
  }
  assert.deepEqual(offenders, [], 'links to files or headings that are not in the repository');
});
