// The page's numbers for people (web/page/format.js): plurals, speeds
// without raw floats, ETAs, percentages that never say 100% early.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatEta, formatPercent, formatSpeed, plural, retryDeadline, stateText } from '../../web/page/format.js';

test('plurals', () => {
  assert.equal(plural(1, 'reconnect'), '1 reconnect');
  assert.equal(plural(0, 'reconnect'), '0 reconnects');
  assert.equal(plural(2, 'chunk'), '2 chunks');
});

test('speeds are rounded, never raw floats', () => {
  assert.equal(formatSpeed(1022.4407778138101), '1022 B/s');
  assert.equal(formatSpeed(0), '0 B/s');
  assert.equal(formatSpeed(-3), '0 B/s');
  assert.equal(formatSpeed(8.06 * 1024 * 1024), '8.06 MiB/s');
});

test('ETAs and percentages', () => {
  assert.equal(formatEta(null), '—');
  assert.equal(formatEta(Infinity), '—');
  assert.equal(formatEta(34.2), '35\u00a0s', 'a number never wraps away from its unit');
  assert.equal(formatEta(125), '2\u00a0min 5\u00a0s');
  assert.equal(formatPercent(99.99), '99.9%');
  assert.equal(formatPercent(100), '100.0%');
});

test('a retry delay becomes a countdown in whole seconds', () => {
  const at = retryDeadline('the stream stopped; retrying in 2.4 s (attempt 3)');
  assert.ok(at !== null);
  assert.equal(stateText('reconnecting', '', at), 'Connection lost: reconnecting in 3 s…');
  assert.equal(stateText('reconnecting', 'connection lost; reconnecting', null), 'Connection lost: reconnecting…');
  // The library's message is shown as it is: a name stays as spelled.
  assert.equal(stateText('weird', 'x.bin did something', null), 'x.bin did something');
});
