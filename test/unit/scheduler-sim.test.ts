/**
 * The scheduler simulation the demo replays: the same seed gives the same log, every task
 * finishes exactly once under every policy, and each record's metrics follow from its task.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { policies, quantumMs, simulate, standing, switchMs, taskSet } from '../../src/demo/scheduler-sim.ts';

describe('the scheduler simulation', () => {
  const tasks = taskSet(42, 200);

  test('a seed gives the same task set and the same logs', () => {
    assert.deepEqual(taskSet(42, 200), tasks);
    assert.notDeepEqual(taskSet(43, 200), tasks);
    for (const policy of policies) assert.deepEqual(simulate(policy, tasks), simulate(policy, taskSet(42, 200)));
  });

  for (const policy of policies) {
    test(`${policy}: each task finishes once, in time order, with metrics that follow from it`, () => {
      const records = simulate(policy, tasks);
      assert.deepEqual(
        records.map((r) => r.taskId).sort((a, b) => a - b),
        tasks.map((task) => task.id),
      );
      records.forEach((record, i) => {
        const task = tasks[record.taskId - 1];
        assert.equal(record.seq, i + 1);
        if (i > 0) assert.ok(record.finishMs > records[i - 1].finishMs);
        const dispatches = (record.energy - 3 * task.workMs) / 20;
        assert.equal(dispatches, policy === 'rr' ? Math.ceil(task.workMs / quantumMs) : 1);
        assert.ok(record.duration >= task.workMs + dispatches * switchMs);
        assert.equal(record.duration, record.finishMs - task.arrivalMs);
        assert.equal(record.cost, record.duration * task.weight);
        assert.equal(record.win, record.finishMs <= task.deadlineMs ? 1 : 0);
        for (const value of [record.duration, record.energy, record.cost]) assert.ok(Number.isSafeInteger(value));
      });
    });
  }

  test('shortest-job-first waits less on average than first-in-first-out on a loaded processor', () => {
    const mean = (policy: (typeof policies)[number]) => standing(simulate(policy, tasks), 'duration').avg;
    assert.ok(mean('sjf') < mean('fifo'), `sjf ${mean('sjf')} vs fifo ${mean('fifo')}`);
  });
});
