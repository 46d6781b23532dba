/**
 * `npm run bench`: Wavehouse's figures, each beside its limit measured in the same run
 * (the machine is shared and noisy, so only ratios from one run compare; see "The machine's
 * limits" in docs/performance.md), with the issue's bars and an honest PASS/FAIL.
 *
 *   npm run bench                        every section (under 10 minutes)
 *   npm run bench -- --only ingest       one section or a comma list: ingest (both),
 *                                        ingest-json, ingest-binary, http-ingest, fanout, fanout-nginx, rest, read-cache,
 *                                        auth, aggregate, export, export-parquet, compress, retention, memory,
 *                                        connectors
 *   npm run bench -- --quick             a short smoke run (shorter steps, fewer viewers)
 *   npm run bench -- --private           ingest and fan-out with the server in private mode
 *                                        (AUTH_MODE=private), to set beside an open-mode run
 *                                        with bench/compare.ts
 *
 * It creates a fresh database `wavehouse_bench_<random>` on the local PostgreSQL
 * (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres), starts the
 * server as a child process against it for each section, and drops it at the end.
 * Results: printed, and written to bench/results/<timestamp>.json; a full run with no
 * failed section also replaces bench/results/latest.json (partial, quick or failed runs
 * never do, so latest.json is always one whole run).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { killStartedChildren } from './lib/children.ts';
import { type BenchDatabase, createDatabase, serverVersion } from './lib/db.ts';
import { boxBusyCores, openFileLimit } from './lib/procfs.ts';
import { type Context, type Figure, renderDetail, renderSummary, type SectionResult } from './lib/report.ts';
import { aggregateSection } from './sections/aggregate.ts';
import { authSection } from './sections/auth.ts';
import { compressSection } from './sections/compress.ts';
import { connectorsSection } from './sections/connectors.ts';
import { exportSection } from './sections/export.ts';
import { exportParquetSection } from './sections/export-parquet.ts';
import { fanoutSection } from './sections/fanout.ts';
import { fanoutNginxSection } from './sections/fanout-nginx.ts';
import { httpIngestSection } from './sections/http-ingest.ts';
import { ingestSection } from './sections/ingest.ts';
import { memorySection } from './sections/memory.ts';
import { readCacheSection } from './sections/read-cache.ts';
import { restSection } from './sections/rest.ts';
import { retentionSection } from './sections/retention.ts';

// In this order; fan-out last, because its search for the most viewers may use whatever
// time is left (it checks the deadline before each step).
const sections: Record<string, (ctx: Context) => Promise<SectionResult>> = {
  'ingest-json': (ctx) => ingestSection(ctx, 'json'),
  'ingest-binary': (ctx) => ingestSection(ctx, 'binary'),
  'http-ingest': httpIngestSection,
  memory: memorySection,
  rest: restSection,
  'read-cache': readCacheSection,
  auth: authSection,
  aggregate: aggregateSection,
  export: exportSection,
  'export-parquet': exportParquetSection,
  compress: compressSection,
  retention: retentionSection,
  connectors: connectorsSection,
  'fanout-nginx': fanoutNginxSection,
  fanout: fanoutSection,
};
const aliases: Record<string, string[]> = { ingest: ['ingest-json', 'ingest-binary'] };
/** The sections whose server can run in private mode: the auth section compares the modes itself. */
const privateModeSections = ['ingest-json', 'ingest-binary', 'fanout'];

/** The whole run must end by itself well within 10 minutes; past this, it stops and reports what it has. */
const hardDeadlineMs = 570_000;

function parseArgs(argv: readonly string[]) {
  let only: string[] | null = null;
  let quick = false;
  let authMode: Context['authMode'] = 'open';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--private') authMode = 'private';
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!value) throw new Error('--only needs a section name');
      only = value.split(',').flatMap((name) => aliases[name] ?? [name]);
      const unknown = only.filter((name) => !(name in sections));
      if (unknown.length > 0) {
        throw new Error(
          `unknown section(s) ${unknown.join(', ')}; known: ${[...Object.keys(aliases), ...Object.keys(sections)].join(', ')}`,
        );
      }
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(
        `usage: npm run bench -- [--quick] [--private] [--only ${[...Object.keys(aliases), ...Object.keys(sections)].join('|')}[,...]]\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (authMode === 'private') {
    const open = (only ?? []).filter((name) => !privateModeSections.includes(name));
    if (open.length > 0) throw new Error(`--private runs ${privateModeSections.join(', ')} only, not ${open.join(', ')}`);
    only ??= privateModeSections;
  }
  return { only, quick, authMode };
}

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

/** Which code was measured: the commit, and whether src/ had uncommitted changes (read-only git). */
function codeVersion(): { commit: string; srcDirty: boolean | null } {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src').length > 0 };
  } catch {
    return { commit: 'unknown', srcDirty: null };
  }
}

async function main(): Promise<number> {
  const { only, quick, authMode } = parseArgs(process.argv.slice(2));
  const selected = only ?? Object.keys(sections);
  const full = only === null && !quick;
  const startedAt = new Date();
  const log = (message: string) =>
    process.stderr.write(`[bench ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);

  let database: BenchDatabase | null = null;
  const figures: Figure[] = [];
  const details: string[] = [];
  const data: Record<string, unknown> = {};
  const failures: Record<string, string> = {};

  const finish = async (aborted: string | null) => {
    killStartedChildren();
    await database?.drop().catch((error: unknown) => log(`could not drop ${database?.name}: ${String(error)}`));
    const output = [
      `Wavehouse bench ${startedAt.toISOString()}${quick ? ' (quick)' : ''}${authMode === 'private' ? ' (private mode)' : ''}` +
        `${only ? ` (only ${selected.join(', ')})` : ''}`,
      `box busy before start: ${data.boxBusyCoresBeforeStart ?? '?'} of ${os.availableParallelism()} cores; ` +
        'CPU columns are cores used over each measured window ("other" = busy cores no bench process accounts for)',
      '',
      ...details.flatMap((d) => [d, '']),
      ...Object.entries(failures).map(([name, error]) => `SECTION ${name} FAILED: ${error}\n`),
      aborted ? `ABORTED: ${aborted}\n` : '',
      'Summary ("other load": busy cores of other tenants during the measurements a figure rests on; ' +
        'well above 0, the shared box depressed it)',
      renderSummary(figures),
      '',
    ].join('\n');
    process.stdout.write(output);
    const result = {
      startedAt: startedAt.toISOString(),
      durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
      quick,
      authMode,
      sections: selected,
      code: codeVersion(),
      machine: {
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        postgres: await serverVersion().catch(() => 'unknown'),
        openFileLimit: openFileLimit(),
      },
      summary: figures,
      data,
      failures,
      aborted,
    };
    mkdirSync(resultsDir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    const mode = authMode === 'private' ? '-private' : '';
    const suffix = full ? '' : `-${quick ? 'quick' : 'partial'}${mode}${only ? `-${selected.join('+')}` : ''}`;
    const file = `${resultsDir}${stamp}${suffix}.json`;
    const json = `${JSON.stringify(result, null, 2)}\n`;
    writeFileSync(file, json);
    // latest.json is always one whole, clean run.
    const clean = full && !aborted && Object.keys(failures).length === 0;
    if (clean) writeFileSync(`${resultsDir}latest.json`, json);
    log(`wrote ${file}${clean ? ' and bench/results/latest.json' : ''}`);
  };

  const watchdog = setTimeout(() => {
    log('hard deadline reached; stopping');
    finish('hard deadline of the run reached').finally(() => process.exit(1));
  }, hardDeadlineMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      finish(`interrupted by ${signal}`).finally(() => process.exit(130));
    });
  }

  database = await createDatabase();
  // The figures are whole-box figures: say how busy the box was before we added any load.
  const idleBusy = await boxBusyCores(2_000);
  data.boxBusyCoresBeforeStart = idleBusy;
  log(
    `database ${database.name}${database.checkpointed ? '' : ' (no CHECKPOINT after creating it: not allowed)'}; ` +
      `open-file limit ${openFileLimit()}; box busy before start: ${idleBusy} cores` +
      (idleBusy > 0.3 ? ' (NOT QUIET: other tenants are loading the box; figures will be low)' : ''),
  );
  // Sections wind down 20 s before the watchdog, leaving time to stop servers and drop the database.
  const ctx: Context = {
    quick,
    deadlineAt: startedAt.getTime() + hardDeadlineMs - 20_000,
    databaseName: database.name,
    databaseUrl: database.url,
    authMode,
    log,
  };
  for (const name of selected) {
    log(`section ${name}`);
    try {
      const result = await sections[name](ctx);
      figures.push(...result.figures);
      details.push(...result.details.map(renderDetail));
      data[name] = result.data;
    } catch (error) {
      failures[name] = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`section ${name} failed: ${failures[name]}`);
      killStartedChildren();
    }
  }
  clearTimeout(watchdog);
  await finish(null);
  return Object.keys(failures).length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killStartedChildren();
    process.exit(1);
  },
);
