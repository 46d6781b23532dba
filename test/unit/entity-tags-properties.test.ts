/**
 * If-None-Match is untrusted input: the parser against a reference written from RFC 9110's
 * grammar as one regular expression, on arbitrary strings, on valid lists, and on valid lists
 * mutated a character at a time; and the tag itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { entityTag, ifNoneMatchHits, parseIfNoneMatch } from '../../src/http/entity-tags.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const etagc = '[\\x21\\x23-\\x7e\\x80-\\xff]';
const entityTagPattern = `(?:W/)?"${etagc}*"`;
const member = `(?:${entityTagPattern})?`;
/** `"*" / #entity-tag`, empty members allowed (RFC 9110, 5.6.1), optional whitespace around. */
const grammar = new RegExp(`^[ \\t]*(?:\\*|${member}(?:[ \\t]*,[ \\t]*${member})*)[ \\t]*$`);

function reference(value: string): string[] | '*' | null {
  if (!grammar.test(value)) return null;
  if (value.trim() === '*') return '*';
  return [...value.matchAll(new RegExp(entityTagPattern, 'g'))].map((match) => match[0].replace(/^W\//, ''));
}

const headerChar = fc.oneof(
  fc.constantFrom(' ', '\t', ',', '"', 'W', '/', '*', 'a', '\u00e9', '\x7f'),
  fc.integer({ min: 0x20, max: 0xff }).map((code) => String.fromCharCode(code)),
);
const opaque = fc.string({ unit: fc.integer({ min: 0x23, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 12 });
const validList = fc
  .array(fc.tuple(fc.boolean(), opaque, fc.constantFrom('', ' ', '\t', ' ,', ', ')), { maxLength: 5 })
  .map((members) => members.map(([weak, tag, gap]) => `${weak ? 'W/' : ''}"${tag}"${gap}`).join(','));

function mutate(value: string, at: number, replacement: string): string {
  const index = value.length === 0 ? 0 : at % (value.length + 1);
  return value.slice(0, index) + replacement + value.slice(index + 1);
}

test('If-None-Match is parsed as the grammar says, for arbitrary, valid and mutated values', () => {
  const values = fc.oneof(
    fc.string({ unit: headerChar, maxLength: 40 }),
    validList,
    fc.tuple(validList, fc.nat(), fc.string({ unit: headerChar, maxLength: 2 })).map(([value, at, by]) => mutate(value, at, by)),
  );
  fc.assert(
    fc.property(values, (value) => {
      assert.deepEqual(parseIfNoneMatch(value), reference(value));
    }),
    fuzzParameters(2_000),
  );
});

test('a tag is matched in a list, weakly, or by *, and never by a malformed value', () => {
  const tag = entityTag(['data', '[1]']);
  assert.match(tag, /^"[A-Za-z0-9_-]{22}"$/);
  assert.ok(ifNoneMatchHits(tag, tag));
  assert.ok(ifNoneMatchHits(`W/${tag}`, tag));
  assert.ok(ifNoneMatchHits(`"other", ${tag}`, tag));
  assert.ok(ifNoneMatchHits(' * ', tag));
  // U+00A0 is whitespace to String.trim(), not to the grammar (found by the property above).
  assert.equal(parseIfNoneMatch('\u00a0*'), null);
  assert.ok(!ifNoneMatchHits('*\u00a0', tag));
  assert.ok(!ifNoneMatchHits(undefined, tag));
  assert.ok(!ifNoneMatchHits(tag.slice(1, -1), tag));
  assert.ok(!ifNoneMatchHits(`${tag} junk`, tag));
  assert.ok(!ifNoneMatchHits(`*, ${tag}`, tag));
  assert.ok(!ifNoneMatchHits('"other"', tag));
});

test('tags differ when any part does, and not otherwise', () => {
  fc.assert(
    fc.property(fc.array(fc.string(), { maxLength: 4 }), fc.array(fc.string(), { maxLength: 4 }), (a, b) => {
      assert.equal(entityTag(a) === entityTag(b), JSON.stringify(a) === JSON.stringify(b));
    }),
    fuzzParameters(500),
  );
});
