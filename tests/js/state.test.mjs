// A download's one state and its transitions (web/lib/state.js): an illegal
// transition is a bug and throws, instead of leaving a download in a state
// nothing resumes from.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { canMove, checkMove, LIVE, RUNNING, TERMINAL } from '../../web/lib/state.js';

test('a live download may move between live states, pause, verify, fail, change or close', () => {
  for (const from of LIVE) for (const to of [...LIVE, 'paused', 'verifying', 'error', 'changed', 'closed']) assert.ok(canMove(from, to), `${from} -> ${to}`);
});

test('nothing leaves an ended state except by restart (idle), resume after an error, or close', () => {
  assert.deepEqual([...TERMINAL].sort(), ['closed', 'done', 'error']);
  for (const from of TERMINAL) {
    for (const to of [...LIVE, 'paused', 'verifying', 'manifest']) {
      const allowed = from === 'error' && to === 'resuming';
      assert.equal(canMove(from, to), allowed, `${from} -> ${to}`);
    }
    assert.ok(canMove(from, 'idle'), `${from} -> idle (restart)`);
  }
  assert.equal(canMove('done', 'error'), false, 'a late failure does not undo a verified result');
  assert.equal(canMove('closed', 'closed'), false);
});

test('paused only resumes, fails or closes (a change waits for resume); verifying only ends', () => {
  assert.deepEqual([...LIVE].filter((s) => canMove('paused', s)), ['resuming']);
  assert.equal(canMove('paused', 'changed'), false);
  assert.equal(canMove('paused', 'verifying'), false);
  assert.deepEqual(['done', 'error', 'closed', 'streaming', 'paused'].map((s) => canMove('verifying', s)), [true, true, true, false, false]);
});

test('an illegal transition throws an internal error naming both states', () => {
  assert.throws(() => checkMove('done', 'streaming'), (e) => e.code === 'internal' && /done -> streaming/.test(e.message));
  assert.doesNotThrow(() => checkMove('streaming', 'stalled'));
});

test('changed (moving to a new version) opens storage again, or fails, or closes', () => {
  assert.deepEqual(['opening', 'error', 'closed', 'streaming', 'paused', 'done'].map((s) => canMove('changed', s)), [true, true, true, false, false, false]);
});

test('running is the live states plus fetching the manifest, moving to a new version and proving the whole file: never idle, paused or ended', () => {
  assert.deepEqual([...RUNNING].filter((s) => !LIVE.has(s)).sort(), ['changed', 'manifest', 'verifying']);
  for (const s of LIVE) assert.ok(RUNNING.has(s), s);
  for (const s of ['idle', 'paused', ...TERMINAL]) assert.equal(RUNNING.has(s), false, s);
  // A running download may always be closed.
  for (const s of RUNNING) assert.ok(canMove(s, 'closed'), `${s} -> closed`);
});
