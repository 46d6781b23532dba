/** The settings and calls the connector tests share. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Answer, bearer, call } from './access.ts';
import { eventually } from './eventually.ts';

/** Polls as fast as a test wants, retries at once, and a breaker that does not open unless a test asks. */
export function connectorSettings(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    CONNECTOR_SECRET_KEY: randomBytes(32).toString('base64'),
    CONNECTOR_MIN_POLL_INTERVAL_MS: '10',
    CONNECTOR_CLAIM_INTERVAL_MS: '200',
    CONNECTOR_TIMEOUT_MS: '400',
    CONNECTOR_MAX_ATTEMPTS: '2',
    CONNECTOR_RETRY_BASE_MS: '5',
    CONNECTOR_RETRY_MAX_MS: '20',
    CONNECTOR_BREAKER_FAILURES: '1000',
    CONNECTOR_MAX_BODY_BYTES: String(1024 * 1024),
    ...overrides,
  };
}

export interface ThingSpeakConnector {
  id: string;
  get(): Promise<Answer>;
}

export async function createThingSpeakConnector(
  baseUrl: string,
  key: string,
  config: Record<string, unknown>,
  pollIntervalS = 0.05,
): Promise<ThingSpeakConnector> {
  const created = await call(`${baseUrl}/api/v1/connectors`, 'POST', bearer(key), {
    kind: 'thingspeak',
    name: 'a channel',
    config,
    pollIntervalS,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id: string = created.body.id;
  return { id, get: () => call(`${baseUrl}/api/v1/connectors/${id}`, 'GET', bearer(key)) };
}

/** The stored samples of the connector's one stream, once it has one. */
export async function storedSamples(
  baseUrl: string,
  key: string,
  connector: ThingSpeakConnector,
): Promise<Array<Record<string, number | null>>> {
  const { body } = await eventually(async () => {
    const answer = await connector.get();
    assert.equal(answer.body.sessions.length, 1);
    return answer;
  });
  const data = await call(`${baseUrl}/api/v1/sessions/${body.sessions[0].sessionId}/data`, 'GET', bearer(key));
  assert.equal(data.status, 200);
  return data.body.samples;
}

/** What the stand-in's addEntries wrote for entries 1..last of a channel with `fields` fields, as stored samples. */
export function expectedSamples(last: number, channels: string[]): Array<Record<string, number | null>> {
  return Array.from({ length: last }, (_, i) => {
    const seq = i + 1;
    const sample: Record<string, number | null> = { seq, t: Date.UTC(2024, 4, 1, 10, 0, 0) + seq * 1_000 };
    channels.forEach((channel, f) => {
      sample[channel] = f === 1 && seq % 3 === 0 ? null : seq * (f + 1);
    });
    return sample;
  });
}

export async function metricsText(baseUrl: string): Promise<string> {
  return (await fetch(`${baseUrl}/metrics`)).text();
}
