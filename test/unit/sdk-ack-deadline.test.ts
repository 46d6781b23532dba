import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AckDeadline } from '../../src/sdk/ack-deadline.ts';

test('the first arm sets the deadline: later arms do not push it back, a clear cancels it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let expired = 0;
  const deadline = new AckDeadline(1_000, () => expired++);

  deadline.arm();
  t.mock.timers.tick(600);
  deadline.arm();
  t.mock.timers.tick(400);
  assert.equal(expired, 1, 'a send every 600 ms into a dead socket must not keep it alive');

  deadline.arm();
  t.mock.timers.tick(999);
  deadline.clear();
  t.mock.timers.tick(5_000);
  assert.equal(expired, 1, 'an ack in time clears the wait');

  deadline.arm();
  t.mock.timers.tick(1_000);
  assert.equal(expired, 2, 'armed again after it expired');
});
