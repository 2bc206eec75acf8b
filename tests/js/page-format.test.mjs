// The page's numbers for people (web/page/format.js): plurals, speeds
// without raw floats, ETAs, percentages that never say 100% early.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { changedText, formatEta, formatPercent, formatSpeed, plural, retryDeadline, stateText } from '../../web/page/format.js';

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

test('a change of version says how many chunks were kept, and whether the rest is still being fetched', () => {
  assert.equal(changedText({ kept: 3998, total: 4000, stored: false }, false), 'The file changed on the server: kept 3998 of 4000 chunks, fetching the rest.');
  assert.equal(changedText({ kept: 3998, total: 4000, stored: false }, true), 'The file changed on the server: kept 3998 of 4000 chunks, fetched the rest.');
  assert.equal(changedText({ kept: 0, total: 1, stored: true }, false), 'The copy stored here was of an older version: nothing received could be kept, downloading the new version.');
  assert.equal(changedText({ kept: 7, total: 7, stored: false }, true), 'The file changed on the server: kept all 7 chunks of the new version.');
});
