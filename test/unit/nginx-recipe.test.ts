/**
 * The nginx recipe (deploy/nginx/wavehouse.conf) without nginx: docs/deployment.md shows it
 * as it is, its logs can hold no credential (the log format uses only variables known to
 * hold none, every access log names it, the error log is at crit), and the scale-out test's
 * rewrite of it changes only what a deployment changes. The integration test
 * (behind-nginx.test.ts) runs it in Debian's nginx and reads what it logged.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { recipeForTest, recipePath } from '../support/nginx.ts';

const recipe = await readFile(recipePath, 'utf8');

/** What nginx's log variables may name: none carries the query, a header that authenticates, or a cookie. */
const loggable = new Set([
  'remote_addr',
  'time_local',
  'time_iso8601',
  'msec',
  'request_method',
  'uri',
  'server_protocol',
  'status',
  'body_bytes_sent',
  'bytes_sent',
  'request_length',
  'request_time',
  'http_user_agent',
  'request_id',
  'connection',
  'upstream_addr',
  'upstream_status',
  'upstream_connect_time',
  'upstream_response_time',
]);

/** `log_format name 'part' 'part' ...;` as name -> the parts joined. */
function logFormats(text: string): Map<string, string> {
  const formats = new Map<string, string>();
  for (const [, name, body] of text.matchAll(/^\s*log_format\s+(\S+)\s+((?:'[^']*'\s*)+);/gm)) {
    formats.set(name!, [...body!.matchAll(/'([^']*)'/g)].map(([, part]) => part).join(''));
  }
  return formats;
}

test('docs/deployment.md shows the recipe exactly as deploy/nginx/wavehouse.conf has it', async () => {
  const doc = await readFile(new URL('../../docs/deployment.md', import.meta.url), 'utf8');
  assert.ok(
    doc.includes(`\`\`\`nginx\n${recipe}\`\`\`\n`),
    'the nginx block in docs/deployment.md differs from the file: copy the file in',
  );
});

test("the recipe's access log format logs no query string and no credential header", () => {
  const formats = logFormats(recipe);
  assert.ok(formats.size > 0, 'the recipe defines a log_format');
  for (const [name, format] of formats) {
    const variables = [...format.matchAll(/\$\{?([a-z_0-9]+)/g)].map(([, variable]) => variable!);
    assert.ok(variables.includes('uri'), `${name} logs the path`);
    for (const variable of variables)
      assert.ok(loggable.has(variable), `log_format ${name} logs $${variable}, which may hold a credential`);
  }
  const accessLogs = [...recipe.matchAll(/^\s*access_log\s+([^;]+);/gm)].map(([, args]) => args!.trim().split(/\s+/));
  assert.ok(accessLogs.length > 0, 'the recipe names its access log');
  for (const args of accessLogs) {
    assert.ok(args[0] === 'off' || formats.has(args[1] ?? ''), `access_log ${args.join(' ')} uses a format of the recipe, not combined`);
  }
});

test('the error log, which writes request lines beside upstream failures, is at crit', () => {
  const errorLogs = [...recipe.matchAll(/^\s*error_log\s+([^;]+);/gm)].map(([, args]) => args!.trim().split(/\s+/));
  assert.ok(errorLogs.length > 0, 'the recipe names its error log');
  for (const args of errorLogs) assert.ok(['crit', 'alert', 'emerg'].includes(args[1] ?? ''), `error_log ${args.join(' ')}`);
});

test('no sticky sessions: the upstream has no hash, ip_hash or sticky, and sockets are upgraded', () => {
  const upstream = /^upstream wavehouse \{([^}]*)\}/m.exec(recipe)?.[1] ?? '';
  assert.ok(upstream.includes('least_conn;'), upstream);
  assert.doesNotMatch(upstream, /\b(ip_hash|hash|sticky)\b/);
  assert.match(recipe, /proxy_set_header Upgrade +\$http_upgrade;/);
  assert.match(recipe, /proxy_set_header Connection +\$connection_upgrade;/);
});

test("the test's rewrite changes the upstream servers, the listener and the log paths, and nothing else", () => {
  const rewritten = recipeForTest(recipe, { upstreams: [7001, 7002], port: 7000, logDir: '/tmp/x' });
  const upstream = /^upstream wavehouse \{([^}]*)\}/m.exec(rewritten)?.[1] ?? '';
  assert.deepEqual(
    [...upstream.matchAll(/server (\S+);/g)].map(([, address]) => address),
    ['127.0.0.1:7001', '127.0.0.1:7002'],
  );
  assert.match(rewritten, /^ {4}listen 127\.0\.0\.1:7000;$/m);
  assert.doesNotMatch(rewritten, /ssl|\/var\/log/);
  assert.match(rewritten, /access_log \/tmp\/x\/wavehouse-access\.log wavehouse;/);
  const kept = (text: string) => text.split('\n').filter((line) => !/server 127|listen|ssl|_log /.test(line));
  assert.deepEqual(kept(rewritten), kept(recipe));
  assert.throws(() => recipeForTest(recipe.replace('listen 443 ssl;', 'listen 443 ssl http2;'), { upstreams: [1], port: 2, logDir: '/x' }));
});
