/**
 * The one budget every property test runs with, so that `npm test` stays fast and
 * `npm run fuzz` runs the same properties for as long as asked.
 *
 * - FUZZ_RUNS: cases per property (unset: the property's own CI budget).
 * - FUZZ_SEED: the seed to replay; a failure's report prints the seed it ran with.
 * - FUZZ_PATH: with FUZZ_SEED, replays just the shrunk counterexample the report names,
 *   instead of running up to it again.
 *
 * The seed is chosen here rather than by fast-check so that a long run prints it before it
 * starts: a run killed by a timeout or a hang reports nothing, yet can still be replayed.
 */
import type fc from 'fast-check';

function integerFrom(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, not ${text}`);
  return value;
}

const runs = integerFrom('FUZZ_RUNS');
const seed = integerFrom('FUZZ_SEED') ?? (Math.random() * 2 ** 31) | 0;
const path = process.env.FUZZ_PATH || undefined;

if (runs !== undefined) console.log(`fuzzing ${process.argv[1]}: FUZZ_RUNS=${runs} FUZZ_SEED=${seed}`);

/**
 * fast-check's parameters for a property whose CI budget is `ciRuns` cases. The failed
 * assertion goes into the report's message: node:test's reporters do not print an error's
 * cause, which is where fast-check puts it otherwise.
 */
export function fuzzParameters<T>(ciRuns: number): fc.Parameters<T> {
  return { numRuns: fuzzRuns(ciRuns), seed, path, includeErrorInReport: true };
}

/** Cases for a test whose CI budget is `ciRuns` (for generators sampled with fc.sample, outside fc.assert). */
export function fuzzRuns(ciRuns: number): number {
  return runs ?? ciRuns;
}

export const fuzzSeed = seed;

/**
 * Runs `decode`, letting through only a throw of `refusal`: a decoder of untrusted bytes may
 * refuse them, with its own error, and do nothing else.
 */
export function decodesOrRefuses(decode: () => unknown, refusal: abstract new (...args: never[]) => Error): void {
  try {
    decode();
  } catch (error) {
    if (!(error instanceof refusal)) throw error;
  }
}
