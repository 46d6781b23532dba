import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionKeyOf } from '../../src/http/connection-cap.ts';

test('an IPv4 client, mapped into IPv6 or not, is counted by its address', () => {
  assert.equal(connectionKeyOf('203.0.113.7'), '203.0.113.7');
  assert.equal(connectionKeyOf('::ffff:203.0.113.7'), '::ffff:203.0.113.7');
  assert.notEqual(connectionKeyOf('203.0.113.7'), connectionKeyOf('203.0.113.8'));
});

test('an IPv6 client is counted by its /64, however the address is written', () => {
  const spellings = ['2001:db8:a:b::1', '2001:db8:a:b:ffff:ffff:ffff:ffff', '2001:0DB8:000a:b:0:0:0:2', '2001:db8:a:b::9%eth0'];
  for (const address of spellings) assert.equal(connectionKeyOf(address), '2001:db8:a:b::/64', address);
  assert.notEqual(connectionKeyOf('2001:db8:a:c::1'), connectionKeyOf('2001:db8:a:b::1'));
  assert.equal(connectionKeyOf('::1'), '0:0:0:0::/64');
  assert.equal(connectionKeyOf('2001:db8::1'), '2001:db8:0:0::/64');
});
