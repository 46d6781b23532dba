/**
 * When a poll puts the next one: an interval after it started when it succeeded, so that a slow
 * poll does not stretch the period; after a failure, the wait counts from its end.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { ConnectorKind, PollOutcome } from '../../src/connectors/connector-kind.ts';
import { type ConnectorPollParts, pollConnector } from '../../src/connectors/connector-poll.ts';
import type { StreamIntake } from '../../src/connectors/stream-intake.ts';
import { UpstreamError } from '../../src/connectors/upstream-error.ts';
import type { ConnectorCounters } from '../../src/observability/metrics.ts';
import type { ConnectorRecord } from '../../src/storage/connector-repository.ts';

const record: ConnectorRecord = {
  id: '6f1c1d3e-0000-4000-8000-000000000001',
  kind: 'fake',
  name: 'a connector',
  config: {},
  secrets: null,
  secretNames: [],
  pollIntervalS: 1,
  paused: false,
  createdAt: new Date(),
  streams: [],
  credits: null,
  lastPollAt: null,
  lastSuccessAt: null,
  lastError: null,
  failingSince: null,
  breaker: 'closed',
  breakerOpenSince: null,
  lastRecordAt: null,
  nextPollAt: null,
};

const kind = { kind: 'fake', streamKeys: () => ['fake/1'] } as unknown as ConnectorKind<unknown>;
const outcome: PollOutcome = {
  spec: { key: 'fake/1', channels: ['a'], mapping: [] },
  records: [],
  discards: { invalidValues: 0, invalidRecords: 0 },
  more: false,
};
const counters = { polled() {}, stored() {}, discarded() {}, upstreamAttempt() {} } as unknown as ConnectorCounters;

/** Parts whose one stream takes `ms` to poll, then answers or fails as `answer` does. */
function partsTaking(ms: number, answer: () => PollOutcome): ConnectorPollParts {
  const intake = {
    async run() {
      await sleep(ms);
      return { outcome: answer(), stored: 0 };
    },
  } as unknown as StreamIntake;
  return { intake, secretKey: null, counters, log: pino({ level: 'silent' }), addStream: async () => undefined };
}

const closed = () => ({ state: 'closed' as const, openSince: null, lastFailure: null });
const poll = (parts: ConnectorPollParts, pollIntervalS = 1) =>
  pollConnector({ ...record, pollIntervalS }, kind, async () => '', closed, parts);

describe('the next poll', () => {
  test('after a slow poll that succeeded comes an interval after its start', async () => {
    const polled = await poll(partsTaking(300, () => outcome));
    assert.equal(polled.status.lastError, null);
    assert.equal(polled.status.nextPollAt!.getTime(), polled.status.lastPollAt!.getTime() + 1_000);
  });

  test('after a poll longer than the interval comes at once', async () => {
    const polled = await poll(
      partsTaking(100, () => outcome),
      0.05,
    );
    assert.equal(polled.status.nextPollAt!.getTime(), polled.status.lastSuccessAt!.getTime());
  });

  test('after a failure waits the interval from its end', async () => {
    const polled = await poll(
      partsTaking(300, () => {
        throw new UpstreamError('the upstream answered 500', true);
      }),
    );
    assert.match(polled.status.lastError ?? '', /answered 500/);
    assert.ok(polled.status.nextPollAt!.getTime() >= polled.status.lastPollAt!.getTime() + 1_300);
  });
});
