/**
 * Behind a proxy, the client is the address the trusted proxies saw, read from the right of
 * X-Forwarded-For; what the client wrote there itself (the leftmost entries, which nginx's
 * `$proxy_add_x_forwarded_for` passes on) never changes its address, on REST or on upgrades.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { startApp } from '../support/app.ts';
import { createSession, liveUrl, RecordingSocket } from '../support/clients.ts';
import { logLines } from '../support/log-lines.ts';

const someIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

describe('TRUST_PROXY', () => {
  test('true, which believed every hop, now means one proxy in front; nonsense is refused with the forms to use', () => {
    for (const value of ['true', 'TRUE', 'yes']) assert.equal(loadConfig({ TRUST_PROXY: value }).http.trustProxy, 1, value);
    for (const value of ['nonsense', '10.0.0.0/99', '101']) {
      assert.throws(
        () => loadConfig({ TRUST_PROXY: value }),
        (error: unknown) => error instanceof ConfigError && /TRUST_PROXY: .*(number of proxies.*CIDRs|at most 100)/.test(error.message),
        value,
      );
    }
    assert.equal(loadConfig({}).http.trustProxy, 0);
    assert.equal(loadConfig({ TRUST_PROXY: 'false' }).http.trustProxy, 0);
    assert.equal(loadConfig({ TRUST_PROXY: '2' }).http.trustProxy, 2);
    assert.deepEqual(loadConfig({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' }).http.trustProxy, ['127.0.0.1', '10.0.0.0/8']);
  });

  for (const [setting, proxies] of [
    ['1', []],
    ['true', []],
    ['127.0.0.1', []],
    // Two proxies on this host: the nearer one's entry is believed too, the client is left of it.
    ['127.0.0.1,::1,::ffff:127.0.0.1', ['127.0.0.1']],
  ] as const) {
    test(`with TRUST_PROXY=${setting}, a forged leftmost X-Forwarded-For does not escape the create rate limit`, async (t) => {
      const { baseUrl } = await startApp(t, { TRUST_PROXY: setting, RATE_LIMIT_CREATE_PER_MINUTE: '5' });
      const client = someIp();
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        const forwarded = [someIp(), client, ...proxies].join(', ');
        statuses.push((await fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: { 'x-forwarded-for': forwarded } })).status);
      }
      assert.deepEqual(statuses, [201, 201, 201, 201, 201, 429, 429]);
      const other = await fetch(`${baseUrl}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'x-forwarded-for': [client, someIp(), ...proxies].join(', ') },
      });
      assert.equal(other.status, 201, 'another client behind the same proxy has its own allowance');
    });
  }

  test('an untrusted peer cannot set its address at all', async (t) => {
    const { baseUrl } = await startApp(t, { TRUST_PROXY: '10.255.255.254', RATE_LIMIT_CREATE_PER_MINUTE: '2' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: { 'x-forwarded-for': someIp() } })).status);
    }
    assert.deepEqual(statuses, [201, 201, 429]);
  });

  for (const setting of ['1', '127.0.0.1']) {
    test(`with TRUST_PROXY=${setting}, a socket upgrade sees the client address REST sees`, async (t) => {
      const { lines, log } = logLines();
      const { baseUrl } = await startApp(t, { TRUST_PROXY: setting }, { log });
      const session = await createSession(baseUrl);
      const [forged, client] = [someIp(), someIp()];
      const headers = { 'x-forwarded-for': `${forged}, ${client}`, 'x-request-id': `rest-${client}` };
      await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`, { headers });
      const viewer = new RecordingSocket(liveUrl(baseUrl.replace(/^http/, 'ws'), session.sessionId), {
        ...headers,
        'x-request-id': `socket-${client}`,
      });
      t.after(() => viewer.close());
      await viewer.opened;

      const addressOf = (requestId: string) => {
        const line = lines.map((text) => JSON.parse(text)).find((entry) => entry.msg === 'incoming request' && entry.req?.id === requestId);
        assert.ok(line, `no incoming request line for ${requestId}`);
        return line.req.remoteAddress as string;
      };
      assert.equal(addressOf(`rest-${client}`), client);
      assert.equal(addressOf(`socket-${client}`), client);
    });
  }
});
