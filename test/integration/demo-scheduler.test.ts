/**
 * `wavehouse demo scheduler`'s core against the real server: every policy's log replayed into
 * its stream over HTTP ingest with a fast clock, then each stream holds its log exactly once and
 * the cross-session leaderboard (GET /aggregate?keyPrefix=scheduler/) equals the one computed
 * offline from the simulation. Exactly, sums and averages included: every metric is a whole
 * number, so float64 sums are exact in whatever order the server merges its roll-ups.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leaderboard, leaderboardText, openStreams, replay, type SchedulerDemoOptions } from '../../src/demo/scheduler-demo.ts';
import { metricChannels, policies, simulate, standing, taskSet } from '../../src/demo/scheduler-sim.ts';
import { readData } from '../../src/sdk/rest.ts';
import type { AccessCredential } from '../../src/sdk/types.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { startApp } from '../support/app.ts';

const fixed = (key: string): AccessCredential => ({ token: async () => key, renew: async () => null, close: () => undefined });

test('the scheduler demo stores each log once, and its leaderboard is the offline one', { timeout: 60_000 }, async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t);
  const { key } = await createKey(databaseUrl, { name: 'demo', role: 'admin' });
  const options: SchedulerDemoOptions = {
    baseUrl,
    credential: fixed(key),
    seed: 7,
    tasks: 120,
    // About 30 s of simulated time in about 1 s: several rounds of pushes, each committed, even
    // when a round's pushes take a few hundred ms (in 100 ms, two rounds covered it all in CI).
    speed: 30,
    tickMs: 20,
    startT: Date.UTC(2026, 0, 1),
    signal: new AbortController().signal,
  };
  const streams = await openStreams(options);
  let rounds = 0;
  await replay(options, streams, async () => {
    rounds++;
  });
  assert.ok(rounds > 2, `pushed over ${rounds} rounds`);

  const tasks = taskSet(options.seed, options.tasks);
  for (const stream of streams) {
    const records = simulate(stream.policy, tasks);
    const stored = [];
    for await (const sample of readData(baseUrl, stream.sessionId, { credential: options.credential })) stored.push(sample);
    assert.deepEqual(
      stored,
      records.map(({ seq, finishMs, duration, energy, cost, win }) => ({ seq, t: options.startT + finishMs, duration, energy, cost, win })),
      stream.policy,
    );
  }

  for (const channel of metricChannels) {
    const answer = await call(
      `${baseUrl}/api/v1/aggregate?keyPrefix=scheduler/&channel=${channel}&fn=count,min,max,sum,avg,first,last`,
      'GET',
      bearer(key),
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const byKey = new Map(answer.body.rows.map((row: { key: string }) => [row.key, row]));
    assert.equal(byKey.size, policies.length);
    for (const policy of policies) {
      const offline = standing(simulate(policy, tasks), channel);
      assert.deepEqual(byKey.get(`scheduler/${policy}`), {
        sessionId: streams.find((s) => s.policy === policy)!.sessionId,
        key: `scheduler/${policy}`,
        count: offline.count,
        values: {
          count: offline.count,
          min: offline.min,
          max: offline.max,
          sum: offline.sum,
          avg: offline.avg,
          first: offline.first,
          last: offline.last,
        },
      });
    }
  }

  const rows = await leaderboard(baseUrl, { credential: options.credential });
  assert.deepEqual(
    rows.map((row) => row.policy),
    [...policies].sort((a, b) => standing(simulate(b, tasks), 'win').avg - standing(simulate(a, tasks), 'win').avg || a.localeCompare(b)),
  );
  assert.match(leaderboardText(rows), /^policy\s+tasks\s+on time/);
  for (const policy of policies) assert.match(leaderboardText(rows), new RegExp(`^${policy}\\s+120\\s`, 'm'));

  // A rerun with the seed resumes: its streams are full, so it sends nothing more.
  const again = await openStreams(options);
  assert.deepEqual(
    again.map((s) => s.sent),
    policies.map(() => options.tasks),
  );
  await assert.rejects(openStreams({ ...options, seed: 8 }), /scheduler\/(fifo|sjf|rr|edf) holds another run \(seed 7, 120 tasks\)/);
});
