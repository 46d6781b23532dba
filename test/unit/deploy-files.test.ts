/**
 * The deployment files checked without Docker, Grafana or Cloud Build: every metric the
 * dashboard queries exists, .env.example and the compose file only use documented settings
 * and wire the services together, the Dockerfile's final stage runs as a non-root user with
 * a healthcheck on /health (run here against a stub server), and the Cloud Build deploy
 * script is run with a stand-in gcloud.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { createMetrics } from '../../src/observability/metrics.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFile(new URL(path, root), 'utf8');
const exists = (path: string) => existsSync(new URL(path, root));

/** The README's configuration table: variable name -> default cell. */
async function documentedSettings(): Promise<Map<string, string>> {
  const readme = await read('README.md');
  const rows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \|/gm)];
  assert.ok(rows.length > 20, 'README configuration table not found');
  return new Map(rows.map(([, name, defaultCell]) => [name!, defaultCell!.trim()]));
}

/** Compose-style interpolation of `${NAME:-default}` / `${NAME}` with an empty environment. */
const interpolate = (value: string) =>
  value.replace(/\$\{[A-Z0-9_]+(?::?-([^}]*))?\}/g, (_match, fallback: string | undefined) => fallback ?? '');

// ---- Grafana dashboard ---------------------------------------------------------------------

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
  gridPos: { h: number; w: number; x: number; y: number };
}

test('the Grafana dashboard only queries metrics the registry has, each the right way', async () => {
  const dashboard = JSON.parse(await read('deploy/grafana/dashboards/wavehouse.json')) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; type: string; definition?: string; query?: unknown }[] };
  };
  const registered = new Map((await createMetrics().registry.getMetricsAsJSON()).map((metric) => [metric.name, String(metric.type)]));

  // Panel queries, then template variable queries (label_values(...): names only, no rate rules).
  const exprs: { expr: string; series: boolean }[] = [];
  const ids = new Set<number>();
  for (const panel of dashboard.panels) {
    assert.ok(!ids.has(panel.id), `panel id ${panel.id} is used twice`);
    ids.add(panel.id);
    assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `panel "${panel.title}" is wider than the grid`);
    if (panel.type === 'row') continue;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable, written as Grafana reads it
    assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel "${panel.title}" data source`);
    assert.ok(panel.targets && panel.targets.length > 0, `panel "${panel.title}" has no query`);
    exprs.push(...panel.targets.map((target) => ({ expr: target.expr, series: true })));
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type === 'query') exprs.push({ expr: variable.definition ?? '', series: false });
  }
  assert.ok(exprs.length > 20);

  const used = new Set<string>();
  for (const { expr, series } of exprs) {
    if (expr.includes('histogram_quantile')) assert.match(expr, /by \(le\b/, `a quantile must aggregate by le: ${expr}`);
    for (const match of expr.matchAll(/\bwavehouse_[a-z0-9_]+/g)) {
      const name = match[0];
      used.add(name);
      const histogramPart = /^(.*)_(bucket|sum|count)$/.exec(name);
      const type =
        registered.get(name) ?? (histogramPart && registered.get(histogramPart[1]!) === 'histogram' ? 'histogram part' : undefined);
      assert.ok(type, `the dashboard queries ${name}, which src/observability/metrics.ts does not register`);
      const inRate = /\b(rate|irate|increase)\(\s*$/.test(expr.slice(0, match.index));
      if (!series) continue;
      if (type === 'counter' || type === 'histogram part') {
        assert.ok(inRate, `${name} is a ${type}: query it through rate() or increase(): ${expr}`);
      } else {
        assert.ok(!inRate, `${name} is a ${type}: rate() of it means nothing: ${expr}`);
      }
    }
  }
  for (const name of [
    'wavehouse_ingest_samples_total',
    'wavehouse_ingest_rejected_frames_total',
    'wavehouse_sockets_open',
    'wavehouse_write_queue_samples',
    'wavehouse_write_queue_bytes',
    'wavehouse_write_commit_duration_seconds_bucket',
    'wavehouse_ack_latency_seconds_bucket',
    'wavehouse_write_batch_samples_bucket',
    'wavehouse_live_slow_viewers_closed_total',
    'wavehouse_database_errors_total',
    'wavehouse_http_request_duration_seconds_bucket',
    'wavehouse_http_request_duration_seconds_count',
    'wavehouse_process_process_cpu_seconds_total',
    'wavehouse_process_process_resident_memory_bytes',
    'wavehouse_process_nodejs_eventloop_lag_p99_seconds',
    'wavehouse_connector_polls_total',
    'wavehouse_connector_upstream_duration_seconds_bucket',
    'wavehouse_connector_records_total',
    'wavehouse_connector_breaker_state',
    'wavehouse_connector_seconds_since_success',
  ]) {
    assert.ok(used.has(name), `the dashboard does not show ${name}`);
  }
});

test('Grafana is provisioned with the Prometheus of the compose file and the dashboard folder it mounts', async () => {
  const compose = parseYaml(await read('docker-compose.yml'));
  const datasources = parseYaml(await read('deploy/grafana/provisioning/datasources/prometheus.yml'));
  const providers = parseYaml(await read('deploy/grafana/provisioning/dashboards/wavehouse.yml'));
  const prometheus = parseYaml(await read('deploy/prometheus.yml'));

  assert.equal(datasources.datasources[0].type, 'prometheus');
  assert.equal(datasources.datasources[0].url, 'http://prometheus:9090');
  assert.ok(compose.services.prometheus, 'compose has no prometheus service');

  const grafanaMounts: string[] = compose.services.grafana.volumes;
  const dashboardsMount = grafanaMounts.find((mount) => mount.startsWith('./deploy/grafana/dashboards:'));
  assert.ok(dashboardsMount, 'compose does not mount deploy/grafana/dashboards into Grafana');
  assert.equal(dashboardsMount.split(':')[1], providers.providers[0].options.path);
  assert.ok(grafanaMounts.some((mount) => mount.startsWith('./deploy/grafana/provisioning:/etc/grafana/provisioning')));

  const wavehouseJob = prometheus.scrape_configs.find((job: { job_name: string }) => job.job_name === 'wavehouse');
  assert.equal(wavehouseJob.metrics_path, '/metrics');
  assert.deepEqual(wavehouseJob.static_configs[0].targets, ['wavehouse:8080']);
  assert.ok((compose.services.prometheus.volumes as string[]).some((mount) => mount.startsWith('./deploy/prometheus.yml:')));
});

// ---- .env.example --------------------------------------------------------------------------

test('.env.example sets only settings the README documents, with their documented defaults', async () => {
  const documented = await documentedSettings();
  const active: Record<string, string> = {};
  const all: Record<string, string> = {};
  for (const line of (await read('.env.example')).split('\n')) {
    const assignment = /^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (!assignment) continue;
    const [, commented, name, value] = assignment as unknown as [string, string | undefined, string, string];
    assert.ok(documented.has(name), `.env.example sets ${name}, which the README's configuration table does not list`);
    assert.ok(!(name in all), `.env.example sets ${name} twice`);
    all[name] = value;
    if (!commented) active[name] = value;
    // A commented line shows the default: it must be the README's, where that is a literal.
    const literalDefault = /^`([^`]*)`$/.exec(documented.get(name)!);
    if (commented && literalDefault) assert.equal(value, literalDefault[1], `.env.example's default for ${name}`);
  }
  assert.ok('DATABASE_URL' in active);
  for (const name of documented.keys()) assert.ok(name in all, `.env.example does not show ${name}, which the README documents`);
  // Both as shipped and with every commented line switched on, the configuration loads.
  loadConfig(active);
  loadConfig(all);
});

// ---- docker-compose.yml --------------------------------------------------------------------

test('the compose file wires Wavehouse to PostgreSQL and Redis and passes only documented settings', async () => {
  const documented = await documentedSettings();
  const compose = parseYaml(await read('docker-compose.yml'));
  const services = compose.services;
  for (const name of ['wavehouse', 'postgres', 'redis', 'prometheus', 'grafana']) {
    assert.ok(services[name], `compose has no ${name} service`);
  }

  const wavehouse = services.wavehouse;
  const env: Record<string, string> = Object.fromEntries(
    Object.entries(wavehouse.environment as Record<string, unknown>).map(([key, value]) => [key, interpolate(String(value))]),
  );
  for (const name of Object.keys(env)) assert.ok(documented.has(name), `compose sets ${name}, which the README does not document`);
  // Every other setting is passed through from the environment, as docs/deployment.md says (the
  // embedded database's data directory has no use beside the compose PostgreSQL).
  for (const name of documented.keys()) {
    if (name !== 'WAVEHOUSE_DATA_DIR') assert.ok(name in env, `compose does not pass ${name} through`);
  }
  assert.equal(env.HOST, '0.0.0.0');

  const database = new URL(env.DATABASE_URL!);
  const postgres = Object.fromEntries(
    Object.entries(services.postgres.environment as Record<string, string>).map(([key, value]) => [key, interpolate(value)]),
  );
  assert.equal(database.hostname, 'postgres');
  assert.equal(database.username, postgres.POSTGRES_USER);
  assert.equal(decodeURIComponent(database.password), postgres.POSTGRES_PASSWORD);
  assert.equal(database.pathname, `/${postgres.POSTGRES_DB}`);
  assert.equal(new URL(env.REDIS_URL!).hostname, 'redis');
  assert.equal(wavehouse.depends_on.postgres.condition, 'service_healthy');
  assert.equal(wavehouse.depends_on.redis.condition, 'service_healthy');
  assert.ok(services.postgres.healthcheck && services.redis.healthcheck);
  assert.ok(wavehouse.build, 'compose builds the image from the Dockerfile');
  // The configuration the container gets loads (empty pass-through values take the defaults).
  const config = loadConfig(env);

  // Docker must wait out the drain: SHUTDOWN_GRACE_MS plus the 5 s serve.ts allows to close.
  assert.equal(wavehouse.stop_signal ?? 'SIGTERM', 'SIGTERM');
  const grace = /^(\d+)s$/.exec(wavehouse.stop_grace_period);
  assert.ok(grace, 'stop_grace_period in seconds');
  assert.ok(Number(grace[1]) * 1000 > config.shutdownGraceMs + 5_000, 'stop_grace_period is shorter than the shutdown grace');

  for (const service of Object.values(services) as { volumes?: string[] }[]) {
    for (const mount of service.volumes ?? []) {
      if (mount.startsWith('./')) assert.ok(exists(mount.split(':')[0]!), `compose mounts ${mount.split(':')[0]}, which does not exist`);
    }
  }
});

// ---- Dockerfile ----------------------------------------------------------------------------

/** Instructions with continuation lines joined and comments dropped. */
function dockerInstructions(text: string): { keyword: string; args: string }[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const keyword = line.split(/\s/, 1)[0]!;
      return { keyword: keyword.toUpperCase(), args: line.slice(keyword.length).trim() };
    });
}

test('the Dockerfile is multi-stage, and its final stage runs tsx as a non-root user with a /health healthcheck', async () => {
  const instructions = dockerInstructions(await read('Dockerfile'));
  const stages = instructions.filter((instruction) => instruction.keyword === 'FROM');
  assert.ok(stages.length >= 2, 'expected a multi-stage build');
  const final = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

  const users = final.filter((instruction) => instruction.keyword === 'USER');
  assert.ok(users.length > 0, 'the final stage sets no USER');
  assert.ok(!/^(root|0)(:|$)/.test(users.at(-1)!.args), 'the final stage runs as root');

  const healthcheck = final.find((instruction) => instruction.keyword === 'HEALTHCHECK');
  assert.ok(healthcheck, 'the final stage has no HEALTHCHECK');
  assert.match(healthcheck.args, /\/health\b/);
  assert.equal(final.find((instruction) => instruction.keyword === 'STOPSIGNAL')?.args, 'SIGTERM');
  const cmd = final.find((instruction) => instruction.keyword === 'CMD');
  assert.deepEqual(JSON.parse(cmd!.args), ['node', '--import', 'tsx', 'src/main.ts']);
  assert.ok(instructions.some((instruction) => instruction.keyword === 'RUN' && /npm ci\b.*--omit=dev/.test(instruction.args)));

  // Every file the image copies from the context exists and is not kept out by .dockerignore.
  const ignored = (await read('.dockerignore'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  for (const copy of instructions.filter((instruction) => instruction.keyword === 'COPY' && !instruction.args.includes('--from='))) {
    const sources = copy.args
      .split(/\s+/)
      .filter((word) => !word.startsWith('--'))
      .slice(0, -1);
    for (const source of sources) {
      assert.ok(exists(source), `the Dockerfile copies ${source}, which does not exist`);
      assert.ok(!ignored.includes(source), `the Dockerfile copies ${source}, which .dockerignore leaves out`);
    }
  }

  // The healthcheck command itself, against a stub answering /health with 200, then 503.
  const [, script] = JSON.parse(healthcheck.args.replace(/^(--\S+\s+)*CMD\s+/, '')).slice(1) as string[];
  let status = 200;
  const seen: string[] = [];
  const stub = http.createServer((request, response) => {
    seen.push(request.url!);
    response.writeHead(status).end();
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  try {
    const env = { ...process.env, PORT: String((stub.address() as AddressInfo).port) };
    await run(process.execPath, ['-e', script!], { env });
    status = 503;
    await assert.rejects(run(process.execPath, ['-e', script!], { env }), 'a 503 must fail the healthcheck');
    assert.deepEqual(seen, ['/health', '/health']);
  } finally {
    stub.close();
  }
});

// ---- cloudbuild.yaml -----------------------------------------------------------------------

// biome-ignore format: a packed list of cases reads better than one a line
const cloudBuildBuiltins = new Set([
  'PROJECT_ID', 'PROJECT_NUMBER', 'BUILD_ID', 'LOCATION', 'TRIGGER_NAME', 'COMMIT_SHA', 'REVISION_ID', 'SHORT_SHA',
  'REPO_NAME', 'REPO_FULL_NAME', 'BRANCH_NAME', 'TAG_NAME', 'REF_NAME', 'TRIGGER_BUILD_CONFIG_PATH', 'SERVICE_ACCOUNT_EMAIL',
  'SERVICE_ACCOUNT',
]);

interface CloudBuild {
  substitutions: Record<string, string>;
  steps: { id: string; name: string; entrypoint?: string; args: string[] }[];
}

/** What Cloud Build does to a string before a step sees it. */
function substitute(text: string, values: Record<string, string>): string {
  // A `$` that is not `$$` is always a substitution to Cloud Build: a shell variable must be `$$name`.
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$/g, (match, braced?: string, bare?: string) => {
    if (match === '$$') return '$';
    const name = braced ?? bare;
    assert.ok(
      name !== undefined && name in values,
      `cloudbuild.yaml uses ${match}, which is neither a substitution nor a built-in (escape a shell $ as $$)`,
    );
    return values[name]!;
  });
}

async function deployScript(overrides: Record<string, string>): Promise<string[]> {
  const build = parseYaml(await read('cloudbuild.yaml')) as CloudBuild;
  const deploy = build.steps.find((step) => step.id === 'deploy')!;
  const values = { ...build.substitutions, PROJECT_ID: 'my-project', BUILD_ID: 'b1', ...overrides };
  const args = deploy.args.map((arg) => substitute(arg, values));
  // A stand-in gcloud that prints its arguments, one a line.
  const script = `gcloud() { printf '%s\\n' "$@"; }\n${args.at(-1)}`;
  const { stdout } = await run('bash', [...args.slice(0, -1), script]);
  return stdout.trim().split('\n');
}

test('cloudbuild.yaml builds, pushes and deploys to Cloud Run with the database URL from a secret', async () => {
  const build = parseYaml(await read('cloudbuild.yaml')) as CloudBuild;
  assert.deepEqual(
    build.steps.map((step) => step.id),
    ['build', 'push', 'deploy'],
  );
  const text = JSON.stringify(build.steps) + JSON.stringify((build as unknown as { images: string[] }).images);
  // Cloud Build rejects a substitution that is declared and not used, and one used and not declared.
  for (const name of Object.keys(build.substitutions)) assert.ok(text.includes(name), `substitution ${name} is never used`);
  substitute(text, { ...build.substitutions, ...Object.fromEntries([...cloudBuildBuiltins].map((name) => [name, 'x'])) });

  const single = await deployScript({});
  assert.deepEqual(single.slice(0, 3), ['run', 'deploy', 'wavehouse']);
  for (const flag of ['--timeout=3600', '--session-affinity', '--max-instances=1', '--port=8080', '--no-cpu-throttling']) {
    assert.ok(single.includes(flag), `deploy lacks ${flag}`);
  }
  assert.ok(single.includes('--set-secrets=DATABASE_URL=wavehouse-database-url:latest'), single.join(' '));
  assert.ok(single.includes('--image=europe-west1-docker.pkg.dev/my-project/wavehouse/wavehouse:b1'));
  // Cloud Run kills 10 s after SIGTERM: the drain has to fit.
  const grace = single.find((arg) => arg.startsWith('--update-env-vars='))!;
  assert.ok(Number(/SHUTDOWN_GRACE_MS=(\d+)/.exec(grace)![1]) <= 8_000);

  // Several instances need Redis; with its secret it is passed, with VPC egress to reach it.
  await assert.rejects(deployScript({ _MAX_INSTANCES: '3' }), /needs _REDIS_URL_SECRET/);
  const scaled = await deployScript({
    _MAX_INSTANCES: '3',
    _REDIS_URL_SECRET: 'wavehouse-redis-url',
    _NETWORK: 'default',
    _SUBNET: 'default',
  });
  assert.ok(
    scaled.includes('--set-secrets=DATABASE_URL=wavehouse-database-url:latest,REDIS_URL=wavehouse-redis-url:latest'),
    scaled.join(' '),
  );
  assert.ok(scaled.includes('--network=default') && scaled.includes('--max-instances=3'));
});
