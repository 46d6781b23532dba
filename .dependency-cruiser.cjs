/**
 * Which src/ folder may import which (`npm run deps`, run in CI before the tests).
 *
 * Arrows run one way, along the data flow (docs/architecture.md, "Layout"): the edges (http,
 * ingest, live) call the application (sessions), which calls storage and fan-out; samples/
 * and contract/ are at the bottom and import nothing of ours. Each part below lists the only
 * parts it may import, with the reason; importing any other part of src/ fails, and so does
 * any import cycle, between files or between folders. Type-only imports count the same: a
 * cycle of types is still two parts that cannot be understood one without the other.
 *
 * A new folder goes into this table, with its directions and the reason for them, before
 * its first import passes.
 */

/** The parts of src/, each a path pattern. */
const parts = {
  samples: '^src/samples/',
  contract: '^src/contract/',
  config: '^src/config\\.ts$',
  lifecycle: '^src/lifecycle\\.ts$',
  deadlines: '^src/deadlines\\.ts$',
  rounds: '^src/rounds\\.ts$',
  observability: '^src/observability/',
  aggregates: '^src/aggregates/',
  storage: '^src/storage/',
  fanout: '^src/fanout/',
  sessions: '^src/sessions/',
  access: '^src/access/',
  export: '^src/export/',
  reads: '^src/reads/',
  ingest: '^src/ingest/',
  live: '^src/live/',
  connectors: '^src/connectors/',
  maintenance: '^src/maintenance/',
  http: '^src/http/',
  app: '^src/app\\.ts$',
  serve: '^src/serve\\.ts$',
  main: '^src/main\\.ts$',
  sdk: '^src/sdk/',
  demo: '^src/demo/',
  cli: '^src/cli/(?!(serve|keys|demo)-command\\.ts$)',
  'serve-command': '^src/cli/serve-command\\.ts$',
  'keys-command': '^src/cli/keys-command\\.ts$',
  'demo-command': '^src/cli/demo-command\\.ts$',
};

/** What every server part may use: the sample representation, the contract, settings, logs and metrics, bounded waits, rounds. */
const leaves = ['samples', 'contract', 'config', 'observability', 'deadlines', 'rounds'];

/** part: [the parts it may import, why]. */
const allowed = {
  samples: [[], 'the batch, its text and its live frame are bytes every layer shares: no I/O, nothing of ours'],
  contract: [[], 'the public contract, declared once: the server and its clients both build on it, so it can know nothing of either'],
  config: [[], 'the environment read once into a Config, which every part is handed'],
  deadlines: [[], 'waiting with a bound (a promise within a time, a poll until a deadline): plain timers, nothing of ours'],
  rounds: [[], 'upkeep in rounds on a timer (a sweep, a purge, retention, compression): plain timers, nothing of ours'],
  lifecycle: [['deadlines'], 'the start/close shape and the stack that closes parts in reverse: it knows no part, the parts fit it without importing it'],
  observability: [['config', 'deadlines'], 'logger, metrics and tracing serve every part, configured by Config'],
  aggregates: [
    leaves,
    'bucket summaries and the aggregate answers built from them: computation over samples, which the writer (roll-ups) and the read routes share',
  ],
  storage: [
    [...leaves, 'aggregates'],
    'PostgreSQL stores samples, not sessions: the writer acks a session through the QueuedSession port it declares (write-queue.ts), which SessionState implements; it keeps roll-ups as bucket summaries (aggregates)',
  ],
  fanout: [leaves, 'the hub and the broker carry encoded live frames, whoever made them'],
  sessions: [
    [...leaves, 'storage', 'fanout'],
    'the application: the coordinator hands each accepted batch to the hub and to the write queue, and the session records come from storage',
  ],
  access: [
    [...leaves, 'storage'],
    'who is calling and what they may do (keys, tokens, scopes, audit): its records are in storage, and the edges ask it before they act',
  ],
  export: [leaves, 'the /data body in JSON, NDJSON or CSV, written from batches; the route reads them from storage'],
  reads: [
    leaves,
    'the read cache keeps answers as bytes under keys the routes make: it knows no route, no session and no storage, only its LRU and Redis',
  ],
  ingest: [
    [...leaves, 'sessions', 'storage'],
    'the producer socket and its route, and HTTP ingest (edges): it checks the token of a session storage found, hands decoded batches to the coordinator, and stops reading while the write queue is full (backpressure, principle 2)',
  ],
  live: [
    [...leaves, 'sessions', 'fanout'],
    'the viewer socket and its route (an edge) take the recent window from the coordinator and subscribe to the hub; the stored history comes through ports live/ declares, which app.ts fills from storage',
  ],
  connectors: [
    [...leaves, 'sessions', 'storage', 'access'],
    'pull sources (an edge, as ingest is): a connector is a producer, so its records go through the coordinator (sessions) like any batch; its own record and its streams are in storage, and its changes go to the audit trail (access)',
  ],
  maintenance: [
    [...leaves, 'lifecycle', 'storage', 'access'],
    'jobs that keep the stored data in bounds (partitions ahead, retention, purging deleted sessions): they run SQL through storage, in batches, elected across instances by its advisory locks or sharing the work by row locks, and write what they removed to the audit trail (access)',
  ],
  http: [
    [...leaves, 'ingest', 'live', 'export', 'aggregates', 'reads', 'sessions', 'storage', 'access', 'connectors'],
    'the server and its routes, the outermost edge: they hand sockets to the ingest and live routes, call the coordinator, read sessions and data from storage (answers cached by reads), and ask access who is calling',
  ],
  app: [
    [
      ...leaves,
      'lifecycle',
      'aggregates',
      'storage',
      'fanout',
      'sessions',
      'access',
      'export',
      'reads',
      'ingest',
      'live',
      'connectors',
      'maintenance',
      'http',
    ],
    'the composition root builds and wires every part of the server',
  ],
  serve: [['app', 'config', 'observability'], 'runs the app as a process: listens, and shuts down on a signal'],
  main: [['serve', 'config'], '`npm start`: reads the environment and serves it'],
  sdk: [['contract'], 'the client talks to the server over the network: it knows the contract, nothing else (and only its types, below)'],
  demo: [
    ['sdk'],
    'the demos (upstream stand-ins, a simulation) feed a running service as any client does, over the network through the SDK; a stand-in plays the upstream and knows nothing of the server',
  ],
  cli: [
    ['sdk', 'contract', 'demo', 'serve-command', 'keys-command', 'demo-command'],
    'the client commands are built on the SDK, and talk to a server over the network; the demos print what they run',
  ],
  'serve-command': [['cli', 'serve', 'config'], '`wavehouse serve` runs the same serve(config) as `npm start`, its options laid over the environment'],
  'demo-command': [
    ['cli', 'sdk', 'config', 'app', 'storage', 'keys-command'],
    '`wavehouse demo` runs the service as serve does (app) and makes its admin key as keys create does (storage, keys-command); the demo itself is a client (cli)',
  ],
  'keys-command': [
    ['cli', 'config', 'access', 'storage'],
    '`wavehouse keys create` makes the first admin key where no key exists to call the API with: straight in the database the service uses (storage), through the same ApiKeys as POST /keys (access)',
  ],
};

const anyPart = Object.values(parts).join('|');

/** One rule per part: importing a part of src/ outside its list is an error. */
const directionRules = Object.entries(allowed).map(([part, [may, why]]) => ({
  name: `${part}-imports-only-what-it-may`,
  comment: `${part} may import ${may.length > 0 ? may.join(', ') : 'nothing of ours'}: ${why}`,
  severity: 'error',
  from: { path: parts[part] },
  to: { path: '^src/', pathNot: [parts[part], ...may.map((target) => parts[target])].join('|') },
}));

module.exports = {
  forbidden: [
    ...directionRules,
    {
      name: 'sdk-takes-only-contract-types',
      comment:
        'the SDK bundles for browsers on its own: a value import from the contract would pull TypeBox into every client; channels.ts and errors.ts import nothing, so their values may go in (the default channels, and the close codes whose meaning the SDK decides in one table)',
      severity: 'error',
      from: { path: parts.sdk },
      to: { path: parts.contract, pathNot: '^src/contract/(channels|errors)\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'sessions-takes-its-collaborators',
      comment: 'the coordinator knows the hub and the write queue only as types: app.ts alone builds the parts (a local or a Redis broker, how many lanes) and hands them in',
      severity: 'error',
      from: { path: parts.sessions },
      to: { path: [parts.storage, parts.fanout].join('|'), dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-unnamed-part',
      comment: 'every file of src/ belongs to a part named above, so that its directions are decided, not left open',
      severity: 'error',
      from: { path: '^src/', pathNot: anyPart },
      to: {},
    },
    {
      name: 'no-folder-cycle',
      comment: 'folders that import each other in a circle are one part in two places: neither can be read, tested or changed alone',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-file-cycle',
      comment: 'files that import each other in a circle depend on the order they are loaded in',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    // Type-only imports are dependencies too (see the top of this file).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
  },
};
