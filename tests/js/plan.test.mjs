// Gap planning (web/lib/plan.js), a pure function: from the chunks' states,
// what the download asks the server for next. No server needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CHUNK, MAX_NEED, MAX_RANGE, plan } from '../../web/chunkcast.js';

const { MISSING: M, VERIFIED: V, QUEUED: Q, INFLIGHT: F } = CHUNK;
const idle = { streaming: false, ranges: 0, parallel: 4, batch: 64, busy: false };
const states = (/** @type {number[]} */ xs) => Uint8Array.from(xs);

test('a fresh download streams the whole file with neither from= nor need=', () => {
  assert.deepEqual(plan(states([M, M, M]), idle), { ranges: [], stream: { first: 0 }, stuck: false });
});

test('one missing tail is asked for with from=', () => {
  assert.deepEqual(plan(states([V, V, M, M]), idle).stream, { first: 2, from: 2 });
});

test('scattered gaps are asked for with need=, inclusive runs', () => {
  assert.deepEqual(plan(states([M, V, M, M, V, M, V]), idle).stream, { first: 0, need: '0,2-3,5' });
  // A gap that ends before the last chunk is not a tail.
  assert.deepEqual(plan(states([V, M, M, V]), idle).stream, { first: 1, need: '1-2' });
});

test('failed chunks are refilled by range in runs of at most `batch`, `parallel` requests at most', () => {
  const s = states([Q, Q, Q, Q, Q, V, Q, V, Q, Q]);
  assert.deepEqual(plan(s, { ...idle, batch: 2, parallel: 10 }).ranges, [[0, 2], [2, 4], [4, 5], [6, 7], [8, 10]]);
  assert.deepEqual(plan(s, { ...idle, batch: 2, parallel: 3, ranges: 1 }).ranges, [[0, 2], [2, 4]]);
  assert.deepEqual(plan(s, { ...idle, parallel: 2, ranges: 2 }).ranges, []);
  // Chunks in flight are not asked for again.
  assert.deepEqual(plan(states([F, F, Q, F]), idle).ranges, [[2, 3]]);
});

test("the server's limits from the manifest cap range batches and need lists", () => {
  const s = states([Q, Q, Q, Q, Q]);
  assert.deepEqual(plan(s, { ...idle, batch: 64, parallel: 10, maxRange: 2 }).ranges, [[0, 2], [2, 4], [4, 5]]);
  // A manifest without `max_range` means the server's default, 256.
  assert.equal(MAX_RANGE, 256);
  assert.deepEqual(plan(new Uint8Array(600).fill(Q), { ...idle, batch: 1000, parallel: 10 }).ranges, [[0, 256], [256, 512], [512, 600]]);
  const gaps = states([M, V, M, V, M, V, M, V]);
  assert.deepEqual(plan(gaps, { ...idle, maxNeed: 3 }).stream, { first: 0, need: '0,2' });
});

test('nothing is refilled while the event stream is open, and nothing streamed twice', () => {
  const p = plan(states([Q, M, M]), { ...idle, streaming: true });
  assert.deepEqual(p, { ranges: [], stream: null, stuck: false });
});

test('missing chunks wait while received ones are still being verified; refills do not', () => {
  const p = plan(states([Q, M, M]), { ...idle, busy: true });
  assert.deepEqual(p, { ranges: [[0, 1]], stream: null, stuck: false });
});

test('refills and the stream for the rest go out together', () => {
  assert.deepEqual(plan(states([Q, V, M]), idle), { ranges: [[0, 1]], stream: { first: 2, from: 2 }, stuck: false });
});

test('all verified, or only refills in flight: nothing to do, not stuck', () => {
  assert.deepEqual(plan(states([V, V]), idle), { ranges: [], stream: null, stuck: false });
  assert.deepEqual(plan(states([V, F]), { ...idle, ranges: 1 }), { ranges: [], stream: null, stuck: false });
});

test('chunks marked in flight with no request left are reported stuck', () => {
  assert.equal(plan(states([V, F]), idle).stuck, true);
});

test('a need= list too long for a URL is cut at a run boundary; the rest waits for the next stream', () => {
  const n = 20000;
  const s = new Uint8Array(n).map((_, i) => (i % 2 ? V : M));
  const p = plan(s, idle);
  // As long as the server takes (its MAX_NEED_LEN, 8192; tests/js/range.test.mjs
  // checks the server's boundary), and filled up to it.
  assert.equal(MAX_NEED, 8192);
  assert.ok(p.stream?.need && p.stream.need.length <= MAX_NEED && p.stream.need.length > MAX_NEED - 8, `${p.stream?.need?.length} characters`);
  assert.match(p.stream.need, /^0,2,4,.*\d$/);
});
