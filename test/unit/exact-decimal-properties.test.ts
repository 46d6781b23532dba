import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { nearestOfDigits, nearestQuotient } from '../../src/ingest/exact-decimal.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const billion = 1_000_000_000n;

/** What JSON.parse (and Number) give for M / 10^k: the double nearest to it, ties to even. */
function expected(m: bigint, k: number): number {
  return Number(`${m}e-${k}`);
}

function quotient(m: bigint, k: number): number {
  return nearestQuotient(Number(m / billion), Number(m % billion), k);
}

const divisors = fc.integer({ min: 1, max: 22 });

describe('exact decimal quotients', () => {
  test('any M in [2^53, 10^19) over any 10^k up to 10^22 is the double JSON.parse gives', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 2n ** 53n, max: 10n ** 19n - 1n }), divisors, (m, k) => {
        assert.ok(Object.is(quotient(m, k), expected(m, k)), `${m}e-${k}`);
      }),
      fuzzParameters(20_000),
    );
  });

  test('a quotient exactly halfway between two doubles goes to the even one', () => {
    // Y * 2^(e - k) with Y odd of 54 bits lies halfway between two doubles; times 10^k it is
    // the integer M = Y * 5^k * 2^e, below 10^19 only for k <= 4.
    const halfway = fc
      .tuple(fc.bigInt({ min: 2n ** 52n, max: 2n ** 53n - 1n }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 8 }))
      .map(([half, k, e]) => ({ m: (half * 2n + 1n) * 5n ** BigInt(k) * 2n ** BigInt(e), k }))
      .filter(({ m }) => m < 10n ** 19n);
    fc.assert(
      fc.property(halfway, ({ m, k }) => {
        assert.ok(Object.is(quotient(m, k), expected(m, k)), `${m}e-${k}`);
      }),
      fuzzParameters(5_000),
    );
    // 9007199254740993 / 10 * 10: 2^53 + 1, halfway between 2^53 and 2^53 + 2.
    assert.equal(quotient(90071992547409930n, 1), 2 ** 53);
    assert.equal(quotient(90071992547409950n, 1), 2 ** 53 + 4);
  });

  test('an M within one of a halfway point times 10^k is rounded to the side it lies on', () => {
    // The hardest cases: M / 10^k differs from a halfway point by at most 10^-k.
    const nearHalfway = fc
      .tuple(
        fc.bigInt({ min: 2n ** 52n, max: 2n ** 53n - 1n }),
        divisors,
        fc.double({ min: 53, max: 63, noNaN: true }),
        fc.integer({ min: -1, max: 1 }),
      )
      .map(([half, k, bits, offset]) => {
        const scaled = (half * 2n + 1n) * 10n ** BigInt(k);
        const shift = Math.round(bits - 53.5 - k * Math.log2(10));
        const m = shift >= 0 ? scaled << BigInt(shift) : (scaled + (1n << BigInt(-shift - 1))) >> BigInt(-shift);
        return { m: m + BigInt(offset), k };
      })
      .filter(({ m }) => m >= 2n ** 53n && m < 10n ** 19n);
    fc.assert(
      fc.property(nearHalfway, ({ m, k }) => {
        assert.ok(Object.is(quotient(m, k), expected(m, k)), `${m}e-${k}`);
      }),
      fuzzParameters(20_000),
    );
  });

  test("a number's text gives its digits, whatever its sign, point, leading zeros and exponent part", () => {
    const texts: Array<[string, number]> = [
      ['0.10000000149011612', 17],
      ['-8.2548909634703577', 16],
      ['0.000012345678901234567', 21],
      ['1234567890123456789e-3', 3],
      ['12345678901234567.0E+0', 1],
    ];
    for (const [text, k] of texts) {
      const bytes = Buffer.from(`[${text},`);
      assert.ok(Object.is(nearestOfDigits(bytes, 1, bytes.length - 1, k), Math.abs(JSON.parse(text))), text);
    }
  });
});
