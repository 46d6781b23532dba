import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { connectionConfig, keepalive, withClient } from '../../src/storage/database.ts';
import { ProducerLocks } from '../../src/storage/producer-locks.ts';
import { freshDatabase } from '../support/database.ts';

const run = promisify(execFile);

/** What a backend reports for each of `names`, in the settings' base units, asked on the connection itself. */
async function settings(config: Parameters<typeof withClient>[0], names: string[]): Promise<Record<string, number>> {
  return withClient(config, async (client) => {
    const { rows } = await client.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [
      names,
    ]);
    return Object.fromEntries(rows.map((row) => [row.name, Number(row.setting)]));
  });
}

/**
 * The seconds left on the keepalive timer of the server's socket towards `clientPort`, as the
 * kernel reports it (`ss -o`): with the OS default this is about 2 h, with the settings sent it
 * is at most their idle time.
 */
async function serverKeepaliveTimerS(serverPort: number, clientPort: number): Promise<number> {
  // Right after traffic the socket may show its retransmission timer (`timer:(on,...)`) instead,
  // until the peer's ACK comes: looked at again for up to 3 s.
  let stdout = '';
  let match: RegExpExecArray | null = null;
  for (let attempt = 0; attempt < 30 && match === null; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    ({ stdout } = await run('ss', ['-tnoH', 'state', 'established', `( sport = :${serverPort} and dport = :${clientPort} )`]));
    match = /timer:\(keepalive,(?:(\d+)min)?(?:([\d.]+)sec)?(?:([\d.]+)ms)?/.exec(stdout);
  }
  assert.ok(match, `no keepalive timer on the server's socket: ${stdout}`);
  const [, min = '0', sec = '0', ms = '0'] = match;
  return Number(min) * 60 + Number(sec) + Number(ms) / 1000;
}

describe('database connections and dead peers', () => {
  test("every connection asks its backend for keepalive probes and a connection check, over the URL's own options", async (t) => {
    const { url, drop } = await freshDatabase();
    t.after(drop);
    const withOptions = new URL(url);
    withOptions.searchParams.set('options', '-c tcp_keepalives_idle=7200 -c tcp_user_timeout=0 -c work_mem=8MB');

    const config = connectionConfig(withOptions.toString());
    assert.equal(config.keepAlive, true);
    assert.equal(config.keepAliveInitialDelayMillis, keepalive.clientIdleMs);
    assert.deepEqual(
      await settings(config, [
        'tcp_keepalives_idle',
        'tcp_keepalives_interval',
        'tcp_keepalives_count',
        'tcp_user_timeout',
        'client_connection_check_interval',
        'work_mem',
      ]),
      {
        tcp_keepalives_idle: keepalive.idleS,
        tcp_keepalives_interval: keepalive.intervalS,
        tcp_keepalives_count: keepalive.count,
        tcp_user_timeout: keepalive.tcpUserTimeoutMs,
        client_connection_check_interval: keepalive.clientCheckIntervalMs,
        work_mem: 8 * 1024,
      },
    );
  });

  test("the lock connection's backend probes a silent client after the idle time, not the OS's 2 h", async (t) => {
    const { url, drop } = await freshDatabase();
    const locks = new ProducerLocks({ url, log: pino({ level: 'silent' }), onLost: () => undefined });
    t.after(async () => {
      await locks.close();
      await drop();
    });
    const server = new URL(url);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(server.hostname))
      return t.skip('the server socket is only visible on a local server');
    if (
      !(await run('ss', ['-V']).then(
        () => true,
        () => false,
      ))
    )
      return t.skip('ss (iproute2) is not installed');

    assert.equal(await locks.tryAcquire(randomUUID()), true);
    const clientPort = await withClient(url, async (client) => {
      const { rows } = await client.query<{ port: number }>(
        "SELECT client_port AS port FROM pg_stat_activity WHERE application_name = 'wavehouse-locks' AND datname = current_database()",
      );
      assert.equal(rows.length, 1);
      return rows[0].port;
    });
    const left = await serverKeepaliveTimerS(Number(server.port || 5432), clientPort);
    assert.ok(left <= keepalive.idleS, `the first probe is due in ${left} s, later than the ${keepalive.idleS} s idle time`);
  });
});
