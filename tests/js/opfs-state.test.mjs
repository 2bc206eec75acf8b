// The OPFS store's record of which chunks are on disk (web/lib/store/state.js):
// two alternating slots, so a torn write never loses the last good record.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { countBits, newest, parseRecord, stateSlots } from '../../web/lib/store/state.js';

const rec = (seq, bitmap = 'Aw==') => JSON.stringify({ seq, version: 'v1', size: 10, chunks: 3, bitmap });

test('the newest record wins, and the next write goes to the other slot', () => {
  assert.deepEqual(newest([rec(4), rec(5)]), { record: JSON.parse(rec(5)), slot: 1, next: 0 });
  assert.deepEqual(newest([rec(7), rec(6)]), { record: JSON.parse(rec(7)), slot: 0, next: 1 });
});

test('a torn newest slot falls back to the other one instead of losing everything', () => {
  const torn = rec(9).slice(0, 25);
  const { record, next } = newest([rec(8), torn]);
  assert.equal(record?.seq, 8);
  assert.equal(next, 1, 'the torn slot is the one overwritten next');
  assert.equal(newest(['', rec(1)]).record?.seq, 1, 'an emptied slot (truncated, not yet written)');
});

test('nothing valid means no record, and the first write goes to slot 0', () => {
  assert.deepEqual(newest(['', '']), { record: null, slot: -1, next: 0 });
  assert.deepEqual(newest(['{"seq":"x"}', 'garbage']), { record: null, slot: -1, next: 0 });
  assert.equal(parseRecord('{"version":"v"}'), null);
});

test('slot names and bit counts', () => {
  assert.deepEqual(stateSlots('a%2Ebin'), ['a%2Ebin.state0', 'a%2Ebin.state1']);
  assert.equal(countBits(Uint8Array.from([0b1011, 0xff, 0])), 11);
});
