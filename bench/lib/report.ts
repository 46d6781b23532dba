/** The bench's output: one summary table (figure, limit, ratio, bar, verdict) and per-section detail tables. */
import { type CpuUse, formatCpu } from './procfs.ts';
import type { Summary } from './stats.ts';

export interface Figure {
  section: string;
  figure: string;
  value: string;
  /** The limit measured in the same run, formatted; '' when the bar is absolute. */
  limit?: string;
  ratio?: string;
  bar: string;
  /** null: reported without a bar. */
  pass: boolean | null;
  /**
   * Busy cores of other tenants during the measurements the figure rests on (the most of
   * them): well above 0 means the shared box depressed this figure.
   */
  otherCores?: number;
}

/** The most "other" load over some measurements (undefined ones ignored). */
export function otherLoad(...uses: Array<{ otherCores: number } | undefined>): number | undefined {
  const values = uses.filter((u): u is { otherCores: number } => u !== undefined).map((u) => u.otherCores);
  return values.length > 0 ? Math.max(...values) : undefined;
}

export interface DetailTable {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  notes?: string[];
}

export interface SectionResult {
  figures: Figure[];
  details: DetailTable[];
  /** Compact machine-readable numbers for results/*.json. */
  data: Record<string, unknown>;
}

export interface Context {
  quick: boolean;
  /** Epoch ms by which the whole run must be done; sections that can stop early check it. */
  deadlineAt: number;
  databaseName: string;
  databaseUrl: string;
  /** `--private`: the ingest and fan-out sections start their server with AUTH_MODE=private. */
  authMode: 'open' | 'private';
  log(message: string): void;
}

export const mps = (samplesPerS: number) => `${(samplesPerS / 1e6).toFixed(2)} M/s`;
export const ms = (value: number) => (Number.isFinite(value) ? `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms` : 'n/a');
export const pct = (ratio: number) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)} %` : 'n/a');
export const times = (ratio: number) => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : 'n/a');
export const verdict = (pass: boolean | null) => (pass === null ? '' : pass ? 'PASS' : 'FAIL');

/** A paced run's cells in a detail table: achieved rate, p50, p99, max, failures, CPU. */
export function pacedCells(run: { achievedRate: number; latency: Summary; failures: number; cpu: CpuUse }): Array<string | number> {
  return [
    `${run.achievedRate.toFixed(0)}/s`,
    ms(run.latency.p50),
    ms(run.latency.p99),
    ms(run.latency.max),
    run.failures,
    formatCpu(run.cpu),
  ];
}

export function cpuCells(use: CpuUse | undefined, roles: readonly string[]): string[] {
  return roles.map((role) => (use && role in use.cores ? use.cores[role].toFixed(2) : '')).concat(use ? [use.otherCores.toFixed(2)] : ['']);
}

export function renderTable(columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(columns), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

export function renderSummary(figures: readonly Figure[]): string {
  return renderTable(
    ['section', 'figure', 'value', 'limit (same run)', 'ratio', 'bar', 'result', 'other load'],
    figures.map((f) => [
      f.section,
      f.figure,
      f.value,
      f.limit ?? '',
      f.ratio ?? '',
      f.bar,
      verdict(f.pass),
      f.otherCores === undefined ? '' : f.otherCores.toFixed(2),
    ]),
  );
}

export function renderDetail(table: DetailTable): string {
  const notes = (table.notes ?? []).map((note) => `  ${note}`).join('\n');
  return `${table.title}\n${renderTable(table.columns, table.rows)}${notes ? `\n${notes}` : ''}`;
}
