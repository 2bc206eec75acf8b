// The library against a real server: whole downloads, verification against
// the manifest, refills by range, text delivered in order.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Download, MemoryStore } from '../../web/chunkcast.js';
import { FIXTURES, pseudoRandom, sha256hex, startProxy, startServer } from './helpers.mjs';

const big = pseudoRandom(4096 * 200 + 123, 7); // 201 chunks of 4 KiB
let srv;
before(async () => { srv = await startServer({ files: { 'big.bin': big } }); });
after(async () => { await srv?.stop(); });

/** Runs a download to its end and returns it with its bytes. */
async function fetchAll(name, opts = {}) {
  const dl = new Download(name, { base: srv.url, EventSource, backoffBase: 50, ...opts });
  dl.start();
  const { blob } = await dl.done;
  return { dl, bytes: Buffer.from(await blob.arrayBuffer()) };
}

test('every fixture downloads, verified, byte for byte', async () => {
  const names = readdirSync(FIXTURES).filter((n) => statSync(path.join(FIXTURES, n)).isFile());
  assert.ok(names.length >= 8);
  for (const name of names) {
    const want = readFileSync(path.join(FIXTURES, name));
    const { dl, bytes } = await fetchAll(name);
    assert.equal(sha256hex(bytes), sha256hex(want), name);
    const p = dl.progress();
    assert.equal(p.bytesVerified, want.length, name);
    assert.equal(p.chunksVerified, p.chunks, name);
    assert.equal(p.percent, 100, name);
    assert.equal(dl.state, 'done', name);
  }
});

test('progress reports bytes, chunk counts, speed and ETA as chunks arrive', async () => {
  const seen = [];
  const { dl } = await fetchAll('big.bin', { rate: 2_000_000, progressInterval: 20, onprogress: (p) => seen.push(p) });
  assert.ok(seen.length > 5, `${seen.length} progress reports`);
  const mid = seen.find((p) => p.chunksVerified > 20 && p.chunksVerified < 180 && p.bytesPerSecond > 0);
  assert.ok(mid, 'a progress report mid-way with a speed');
  assert.ok(mid.bytesPerSecond > 500_000 && mid.bytesPerSecond < 4_000_000, `speed ${mid.bytesPerSecond} near the 2 MB/s asked`);
  assert.ok(mid.eta > 0 && mid.eta < 2, `eta ${mid.eta}`);
  for (let k = 1; k < seen.length; k++) assert.ok(seen[k].bytesVerified >= seen[k - 1].bytesVerified);
  assert.equal(dl.progress().chunks, 201);
});

test('forged chunks (payload and event digest both rewritten) are caught by the manifest and refetched by range', async () => {
  const px = await startProxy(srv.url);
  try {
    for (const i of [3, 10, 11, 12]) await px.forge(i, 1);
    const statuses = [];
    const { dl, bytes } = await fetchAll('big.bin', { base: px.url, onchunk: (i, s) => statuses.push([i, s]) });
    assert.equal(px.corrupted, 4, 'the proxy forged four chunks');
    assert.equal(sha256hex(bytes), sha256hex(big));
    const p = dl.progress();
    assert.equal(p.chunksFailed, 4);
    assert.equal(p.chunksRefetched, 4);
    const ranges = px.eventRequests().filter((r) => r.line.includes('/events/chunk/')).map((r) => r.line.split(' ')[1].split('?')[0]);
    // Each forged chunk is refilled once, and neighbours known together share
    // a request (how many are known together depends on when the stream's
    // events reach the planner: 10-13 in one, or 10-11 then 11-13).
    const asked = ranges.flatMap((r) => {
      const [, a, b] = /chunk\/(\d+)\/(\d+)/.exec(r).map(Number);
      return Array.from({ length: b - a }, (_, k) => a + k);
    });
    assert.deepEqual(asked.sort((x, y) => x - y), [3, 10, 11, 12], ranges.join(', '));
    assert.ok(ranges.length < 4, `neighbouring failures go in one range request: ${ranges.join(', ')}`);
    assert.ok(statuses.some(([i, s]) => i === 11 && s === 'failed'));
    assert.ok(statuses.some(([i, s]) => i === 11 && s === 'refetched'));
  } finally {
    await px.close();
  }
});

test('refills keep to the batch size and the in-flight bound', async () => {
  const px = await startProxy(srv.url);
  try {
    for (let i = 20; i < 40; i++) await px.forge(i, 1);
    const { bytes } = await fetchAll('big.bin', { base: px.url, batch: 4, parallel: 2 });
    assert.equal(sha256hex(bytes), sha256hex(big));
    const ranges = px.eventRequests().filter((r) => r.line.includes('/events/chunk/'));
    // The 20 failed chunks are refilled once each, at most 4 per request
    // (so at least 5 requests; one more when the first refill is planned
    // before every failure has come in).
    const asked = [];
    for (const r of ranges) {
      const [, a, b] = /chunk\/(\d+)\/(\d+)/.exec(r.line).map(Number);
      assert.ok(b - a <= 4, r.line);
      for (let i = a; i < b; i++) asked.push(i);
    }
    asked.sort((x, y) => x - y);
    assert.deepEqual(asked, Array.from({ length: 20 }, (_, k) => 20 + k), ranges.map((r) => r.line).join('\n'));
    assert.ok(ranges.length >= 5);
    assert.ok(px.maxInFlightRanges <= 2, `${px.maxInFlightRanges} range requests in flight`);
    assert.ok(px.maxInFlightRanges >= 1);
  } finally {
    await px.close();
  }
});

test('a chunk that keeps failing verification ends the download with a clear error', async () => {
  const px = await startProxy(srv.url);
  try {
    await px.forge(5, 1000);
    const errors = [];
    const dl = new Download('big.bin', { base: px.url, EventSource, maxChunkFailures: 3, backoffBase: 20, onerror: (e) => errors.push(e) });
    dl.start();
    await assert.rejects(dl.done, (e) => e.code === 'corrupt' && /chunk 5 failed verification 3 times/.test(e.message));
    assert.equal(errors.length, 1);
    assert.equal(dl.state, 'error');
  } finally {
    await px.close();
  }
});

test('text is delivered in order, from storage, the stream and refetches alike', async () => {
  const want = readFileSync(path.join(FIXTURES, 'story.txt'), 'utf8');
  const store = new MemoryStore();
  await fetchAll('story.txt', { store });
  const chunks = store.chunks.size;
  assert.equal(chunks, 6);
  for (const i of [0, 2, 4, 5]) store.chunks.delete(i); // 1 and 3 stay "on disk"
  const px = await startProxy(srv.url);
  try {
    await px.forge(2, 1); // 2 fails and arrives after 4 and 5
    const pieces = [];
    const { dl } = await fetchAll('story.txt', { base: px.url, store, ontext: (t, info) => pieces.push({ t, ...info }) });
    assert.equal(px.corrupted, 1);
    assert.equal(dl.progress().chunksRefetched, 1);
    assert.deepEqual(pieces.map((p) => p.i), [0, 1, 2, 3, 4, 5]);
    assert.equal(pieces.map((p) => p.t).join(''), want);
    let off = 0;
    for (const p of pieces) { assert.equal(p.offset, off); off += Buffer.byteLength(p.t); }
  } finally {
    await px.close();
  }
});

test('UTF-8 text whose characters straddle chunk boundaries arrives whole', async () => {
  const want = readFileSync(path.join(FIXTURES, 'utf8-boundaries.txt'), 'utf8');
  const pieces = [];
  await fetchAll('utf8-boundaries.txt', { ontext: (t) => pieces.push(t) });
  assert.ok(pieces.length > 1);
  for (const p of pieces) assert.ok(!p.includes('\uFFFD'));
  assert.equal(pieces.join(''), want);
});

test('a missing file fails with not_found', async () => {
  const dl = new Download('no-such-file.bin', { base: srv.url, EventSource });
  dl.start();
  await assert.rejects(dl.done, (e) => e.code === 'not_found');
});

test("the timing a download reports splits a store's put into its own work (`put`) and the wait it asks for (`putWait`)", async () => {
  // A store whose put takes 4 ms of the caller's time, then asks it to wait
  // 15 ms more (as OPFS does while its worker catches up).
  class SlowStore extends MemoryStore {
    puts = 0;
    /** @param {any[]} items */
    put(items) {
      this.puts++;
      const until = performance.now() + 4;
      while (performance.now() < until) { /* the store's own work */ }
      super.put(items);
      return new Promise((resolve) => setTimeout(resolve, 15));
    }
  }
  const store = new SlowStore();
  const stats = {};
  const { bytes } = await fetchAll('big.bin', { store, stats });
  assert.equal(sha256hex(bytes), sha256hex(big));
  assert.ok(store.puts >= 1);
  assert.ok(stats.put >= 4 * store.puts - 0.01, `put ${stats.put} ms over ${store.puts} puts: at least 4 ms each`);
  assert.ok(stats.putWait >= 14 * store.puts, `putWait ${stats.putWait} ms over ${store.puts} puts: at least 15 ms each`);
  assert.ok(stats.put < stats.putWait, 'the wait is not counted as the store\'s own work');
});
