/**
 * Two bench results side by side, figure by figure: typically an open-mode run and a
 * `--private` one of the same sections, taken one after the other on a quiet box.
 *
 *   node --import tsx bench/compare.ts bench/results/<open>.json bench/results/<private>.json
 *
 * For each figure both runs have, it prints both values, their ratio (of the first number of
 * each, when both are in the same unit), each run's verdict and the other tenants' load. Runs
 * on a shared box differ by several percent with nothing changed: read a ratio beside the
 * spread of two runs of the same mode, not beside 1.
 */
import { readFileSync } from 'node:fs';
import { type Figure, renderTable, times, verdict } from './lib/report.ts';

interface Result {
  startedAt: string;
  authMode?: 'open' | 'private';
  quick: boolean;
  summary: Figure[];
  data: { boxBusyCoresBeforeStart?: number };
}

/** The first number of a value and its unit (`1.58 M/s` -> 1.58, `M/s`); null when it has none. */
function leadingNumber(value: string): { number: number; unit: string } | null {
  const match = /^([+-]?\d+(?:\.\d+)?)\s*([^\s/]*(?:\/s)?)/.exec(value);
  return match ? { number: Number(match[1]), unit: match[2] } : null;
}

function ratioOf(a: string, b: string): string {
  const [x, y] = [leadingNumber(a), leadingNumber(b)];
  if (x === null || y === null || x.unit !== y.unit || x.number === 0) return '';
  return times(y.number / x.number);
}

function load(file: string): Result {
  return JSON.parse(readFileSync(file, 'utf8')) as Result;
}

function main(): number {
  const files = process.argv.slice(2);
  if (files.length !== 2) {
    process.stderr.write('usage: node --import tsx bench/compare.ts <first.json> <second.json>\n');
    return 2;
  }
  const [a, b] = files.map(load);
  const label = (result: Result) =>
    `${result.startedAt} (${result.authMode ?? 'open'} mode${result.quick ? ', quick' : ''}; ` +
    `box busy before start ${result.data.boxBusyCoresBeforeStart ?? '?'} cores)`;
  const key = (figure: Figure) => `${figure.section}\u0000${figure.figure}`;
  const second = new Map(b.summary.map((figure) => [key(figure), figure]));
  const rows = a.summary.flatMap((first) => {
    const other = second.get(key(first));
    if (other === undefined) return [];
    const otherLoadOf = (figure: Figure) => (figure.otherCores === undefined ? '' : figure.otherCores.toFixed(2));
    return [
      [
        first.section,
        first.figure,
        first.value,
        other.value,
        ratioOf(first.value, other.value),
        verdict(first.pass),
        verdict(other.pass),
        `${otherLoadOf(first)} / ${otherLoadOf(other)}`,
      ],
    ];
  });
  process.stdout.write(
    `A: ${label(a)}\nB: ${label(b)}\n\n` +
      `${renderTable(['section', 'figure', 'A', 'B', 'B / A', 'A result', 'B result', 'other load A / B'], rows)}\n`,
  );
  return 0;
}

process.exitCode = main();
