import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { startApp } from '../support/app.ts';

const metricsText = /^# HELP wavehouse_/m;

describe('/metrics', () => {
  test('with METRICS_TOKEN set, only its bearer reads the metrics; anything else is a 401 asking for a bearer token', async (t) => {
    const token = randomBytes(32).toString('hex');
    const { baseUrl } = await startApp(t, { METRICS_TOKEN: token });
    const refusals: Array<[string, Record<string, string>]> = [
      ['no Authorization', {}],
      ['a wrong token', { authorization: `Bearer ${randomBytes(32).toString('hex')}` }],
      ['a prefix of the token', { authorization: `Bearer ${token.slice(0, -1)}` }],
      ['the token as Basic credentials', { authorization: `Basic ${Buffer.from(`prometheus:${token}`).toString('base64')}` }],
      ['the token without its scheme', { authorization: token }],
    ];
    for (const [what, headers] of refusals) {
      const response = await fetch(`${baseUrl}/metrics`, { headers });
      assert.equal(response.status, 401, what);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer\b/, what);
      assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8', what);
      const body = (await response.json()) as { status: number; code: string };
      assert.equal(body.status, 401, what);
      assert.doesNotMatch(JSON.stringify(body), /wavehouse_/, `${what}: no metric leaks in the refusal`);
    }

    const response = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await response.text(), metricsText);
  });

  test('without METRICS_TOKEN, the metrics are public, as before', async (t) => {
    const { baseUrl } = await startApp(t);
    const response = await fetch(`${baseUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('www-authenticate'), null);
    assert.match(await response.text(), metricsText);
  });
});
