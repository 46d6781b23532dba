/**
 * Reading a roles claim by name (claimAt in src/access/oidc-verifier.ts), for any claims and
 * any name: a claim whose own name holds dots and one reached by a dotted path are both found,
 * and nothing throws or reads what an object inherits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { claimAt } from '../../src/access/oidc-verifier.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const name = fc.string({ unit: fc.constantFrom(...'ab.:/_'), minLength: 1, maxLength: 12 });
const part = fc.string({ unit: fc.constantFrom(...'ab:/_'), minLength: 1, maxLength: 6 });
const claims = fc.dictionary(name, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });

describe('claimAt', () => {
  test('a claim named with dots is found at the top level by its whole name', () => {
    fc.assert(
      fc.property(claims, name, fc.uniqueArray(fc.string(), { minLength: 1 }), (others, claim, roles) => {
        assert.deepEqual(claimAt({ ...others, [claim]: roles }, claim), roles);
      }),
      fuzzParameters(2_000),
    );
  });

  test('a claim nested under names without dots is found by the names joined with dots', () => {
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), (path, value) => {
        const nested = path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value);
        assert.deepEqual(claimAt(nested as object, path.join('.')), value);
      }),
      fuzzParameters(2_000),
    );
  });

  test('any claims and any name give a value or undefined, never an inherited one, and never throw', () => {
    fc.assert(
      fc.property(claims, fc.oneof(name, fc.constantFrom('toString', '__proto__', 'constructor.name', 'a.length')), (payload, claim) => {
        const value = claimAt(JSON.parse(JSON.stringify(payload)), claim);
        if (value !== undefined) assert.notEqual(typeof value, 'function');
      }),
      fuzzParameters(2_000),
    );
  });
});
