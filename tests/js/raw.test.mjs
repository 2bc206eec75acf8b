// The worker transport's raw path (web/lib/transport/raw.js) in Node, against
// a real server (its /files endpoint, and its /events for what raw hands
// back), with the real ChunkSink hashing through Node's WebCrypto; its puts
// land in a buffer standing in for the OPFS worker (tests/browser/raw.test.mjs
// runs the whole path in Chromium). Faults on the wire come from the
// /files-aware proxy (files-proxy.mjs); a file changed on the server is a
// file rewritten under the server's root.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { checkManifest } from '../../web/chunkcast.js';
import { RawState, RawStream, askedRuns, eventsUrlFor, filesUrl, parseContentRange } from '../../web/lib/transport/raw.js';
import { ChunkSink } from '../../web/lib/transport/sink.js';
import { startFilesProxy } from './files-proxy.mjs';
import { BINARY, FIXTURES, pseudoRandom, startServer } from './helpers.mjs';

const CHUNK = 64 << 10;
const SIZE = 40 * CHUNK + 1234; // 41 chunks, the last one short
let srv;
let dir;
before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-raw-'));
  srv = await startServer({ chunkSize: '64K', args: ['--link-key', path.join(dir, 'link-key')] });
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let seed = 300;
/** Writes a fresh `name` under the server's root; its bytes. */
function write(name, size = SIZE) {
  const bytes = pseudoRandom(size, seed++);
  writeFileSync(path.join(srv.root, name), bytes);
  return bytes;
}

/**
 * One raw stream of `name` (the /events URL with `query`, through `base`),
 * run to its end or its fallback. `onDisk`: chunks the sink holds already;
 * `state`: called with the raw state before the stream starts (after the
 * manifest was read).
 * @param {string} name @param {{base?: string, query?: string, onDisk?: number[], state?: (s: RawState) => void, stallTimeout?: number,
 *   then?: (s: RawStream) => void, params?: string}} [o]
 */
async function rawRun(name, o = {}) {
  const base = o.base ?? srv.url;
  const m = await (await fetch(`${base}api/manifest?file=${encodeURIComponent(name)}${o.params ?? ''}`)).json();
  const expected = await checkManifest(m, name);
  const disk = Buffer.alloc(m.size);
  const notices = [];
  const onDisk = new Uint8Array(Math.ceil(m.chunks / 8));
  for (const i of o.onDisk ?? []) onDisk[i >> 3] |= 1 << (i & 7);
  const sink = new ChunkSink({
    manifest: m, expected, onDisk,
    put: (buf, list) => setTimeout(() => {
      const all = new Uint8Array(buf);
      for (const { off, at, len } of list) disk.set(all.subarray(at, at + len), off);
      sink.written(buf);
    }, 1),
    post: (n) => notices.push(n),
  });
  const state = new RawState({ maxNeed: m.max_need });
  o.state?.(state);
  const events = [];
  const url = `${base}events?file=${encodeURIComponent(name)}&v=${m.version}${o.query ?? ''}${o.params ?? ''}`;
  let stream;
  const outcome = await new Promise((resolve) => {
    stream = new RawStream({
      url, sink, state, fetch: globalThis.fetch, stallTimeout: o.stallTimeout ?? 10000,
      say: (ev) => events.push(ev),
      end: () => resolve({ end: true }),
      fallback: (why, rest) => resolve({ why, rest }),
    });
    stream.start();
    o.then?.(stream);
  });
  stream.close();
  await sink.idle();
  const verified = notices.flatMap((n) => n.verified);
  const failed = notices.flatMap((n) => n.failed.map(([i]) => i));
  const texts = notices.flatMap((n) => n.texts);
  return { m, disk, outcome, events, verified, failed, texts, state, bytes: notices.reduce((a, n) => a + n.bytes, 0) };
}

test('askedRuns reads from=, need= (merged, clipped to the file) and neither', () => {
  assert.deepEqual(askedRuns('http://h/events?file=a', 10), [[0, 10]]);
  assert.deepEqual(askedRuns('http://h/events?file=a&from=7', 10), [[7, 10]]);
  assert.deepEqual(askedRuns('http://h/events?file=a&from=10', 10), []);
  assert.deepEqual(askedRuns('http://h/events?file=a&need=8-20,0-2,3,5', 10), [[0, 4], [5, 6], [8, 10]]);
  assert.equal(askedRuns('http://h/events?file=a&need=1-x', 10), null);
});

test('filesUrl encodes each segment of the name, keeps a link\'s parameters and drops the stream\'s', () => {
  const url = 'http://h:1/base/events?file=dir%2Fa+b%20%25%3F%23%C3%BC.txt&v=abc&rate=5&from=3&exp=99&sig=ff';
  assert.equal(filesUrl(url), 'http://h:1/base/files/dir/a%20b%20%25%3F%23%C3%BC.txt?exp=99&sig=ff');
});

test('parseContentRange takes `bytes A-B/TOTAL` only', () => {
  assert.deepEqual(parseContentRange('bytes 0-99/100'), { first: 0, last: 99, total: 100 });
  for (const bad of [null, 'bytes 0-99/*', 'bytes */100', 'bytes 5-4/100', 'bytes 0-100/100', 'items 0-1/2']) assert.equal(parseContentRange(bad), null, String(bad));
});

test('eventsUrlFor asks for what is left: from= for one tail, else need=', () => {
  const url = 'http://h/events?file=a&v=1&need=0-9&exp=5';
  assert.equal(eventsUrlFor(url, [[4, 10]], 10, 8192), 'http://h/events?file=a&v=1&exp=5&from=4');
  assert.equal(eventsUrlFor(url, [[0, 10]], 10, 8192), 'http://h/events?file=a&v=1&exp=5');
  assert.equal(eventsUrlFor(url, [[2, 3], [5, 7]], 10, 8192), 'http://h/events?file=a&v=1&exp=5&need=2%2C5-6');
});

test('a whole file is read raw in one Range request, each chunk verified and put once, the ETag kept', async () => {
  const bytes = write('whole.bin');
  const px = await startFilesProxy(srv.url);
  try {
    const r = await rawRun('whole.bin', { base: px.url });
    assert.deepEqual(r.outcome, { end: true });
    assert.ok(r.disk.equals(bytes));
    assert.deepEqual(r.verified, [...Array(r.m.chunks).keys()]);
    assert.deepEqual(r.failed, []);
    assert.equal(r.bytes, SIZE);
    assert.deepEqual(r.events, [{ type: 'open' }]);
    const files = px.filesRequests();
    assert.equal(files.length, 1);
    assert.equal(files[0].headers.range, `bytes=0-${SIZE - 1}`);
    assert.equal(files[0].headers['if-range'], undefined, 'nothing to name yet');
    assert.match(r.state.etag ?? '', /^"/);
    assert.equal(px.eventRequests().length, 0);
  } finally {
    await px.close();
  }
});

test('need= with chunks already held: one request per run of missing chunks, each after the first with If-Range', async () => {
  const bytes = write('gaps.bin');
  const px = await startFilesProxy(srv.url);
  try {
    const r = await rawRun('gaps.bin', { base: px.url, query: '&need=2-9,12,30-40', onDisk: [4, 5, 33] });
    assert.deepEqual(r.outcome, { end: true });
    const want = [2, 3, 6, 7, 8, 9, 12, 30, 31, 32, 34, 35, 36, 37, 38, 39, 40];
    assert.deepEqual(r.verified, want);
    for (const i of want) assert.ok(r.disk.subarray(i * CHUNK, (i + 1) * CHUNK).equals(bytes.subarray(i * CHUNK, (i + 1) * CHUNK)), `chunk ${i}`);
    const ranges = px.filesRequests().map((q) => q.headers.range);
    const span = (a, b) => `bytes=${a * CHUNK}-${Math.min(b * CHUNK, SIZE) - 1}`;
    assert.deepEqual(ranges, [span(2, 4), span(6, 10), span(12, 13), span(30, 33), span(34, 41)]);
    const ifRange = px.filesRequests().map((q) => q.headers['if-range']);
    assert.equal(ifRange[0], undefined);
    assert.ok(ifRange.slice(1).every((v) => v === r.state.etag), ifRange.join(' '));
  } finally {
    await px.close();
  }
});

test('a text is cut at its offsets, and each chunk\'s text told once verified', async () => {
  const name = 'story.txt';
  const text = readFileSync(path.join(FIXTURES, name), 'utf8');
  const r = await rawRun(name);
  assert.deepEqual(r.outcome, { end: true });
  assert.equal(r.m.kind, 'text');
  assert.ok(r.m.offsets.some((o, i) => o !== i * r.m.chunk_size) || r.m.chunks === 1, 'chunks end on characters, not at chunk_size');
  assert.equal(r.texts.sort((a, b) => a[0] - b[0]).map(([, t]) => t).join(''), text);
});

test('a body cut mid-chunk: the whole chunks before it are kept, and the next request starts at the next chunk, with If-Range', async () => {
  const bytes = write('cut.bin');
  const px = await startFilesProxy(srv.url);
  try {
    px.cutFiles(5 * CHUNK + 777);
    const r = await rawRun('cut.bin', { base: px.url });
    assert.deepEqual(r.outcome, { end: true });
    assert.ok(r.disk.equals(bytes));
    assert.equal(r.events.filter((e) => e.type === 'drop').length, 1, JSON.stringify(r.events));
    assert.deepEqual([...r.verified].sort((a, b) => a - b), [...Array(r.m.chunks).keys()], 'each chunk verified once');
    assert.equal(r.bytes, SIZE, 'the partial chunk is not counted, nothing twice');
    const files = px.filesRequests();
    assert.equal(files.length, 2);
    assert.equal(files[1].headers.range, `bytes=${5 * CHUNK}-${SIZE - 1}`);
    assert.equal(files[1].headers['if-range'], r.state.etag);
  } finally {
    await px.close();
  }
});

test('no byte for stallTimeout is a drop', async () => {
  write('stall.bin');
  const px = await startFilesProxy(srv.url);
  try {
    px.pace = 1; // a byte a second: stalled
    const r = await rawRun('stall.bin', { base: px.url, stallTimeout: 300, then: (s) => {
      const said = s.o.say;
      s.o.say = (ev) => { said(ev); if (ev.type === 'drop') s.o.end(); };
    } });
    assert.deepEqual(r.outcome, { end: true });
    assert.deepEqual(r.events.at(-1), { type: 'drop', message: 'no data for 300 ms' });
  } finally {
    await px.close();
  }
});

test('a chunk that differs from the manifest fails, is reported, and the rest goes back to the event stream, which answers 412', async () => {
  const name = 'inplace.bin';
  const bytes = write(name);
  // The manifest is indexed, then one byte of chunk 7 changes in place (same size).
  const m = await (await fetch(`${srv.url}api/manifest?file=${name}`)).json();
  let changed = false;
  const r = await rawRun(name, { state: () => {
    if (changed) return;
    changed = true;
    const b = Buffer.from(bytes);
    b[7 * CHUNK + 10] ^= 1;
    writeFileSync(path.join(srv.root, name), b);
  } });
  assert.equal(r.m.version, m.version, 'the manifest read before the change');
  assert.deepEqual(r.failed, [7]);
  assert.ok(r.verified.length >= 7 && !r.verified.includes(7), `verified ${r.verified}`);
  assert.match(r.outcome.why, /failed verification/);
  assert.match(r.state.off, /failed verification/, 'raw is off for the rest of this open');
  const rest = new URL(r.outcome.rest);
  assert.equal(rest.pathname, '/events');
  assert.equal(rest.searchParams.get('v'), m.version);
  const asked = askedRuns(r.outcome.rest, r.m.chunks);
  assert.equal(asked[0][0], 7, 'the failed chunk first');
  for (const i of r.verified) assert.ok(!asked.some(([a, b]) => i >= a && i < b), `verified chunk ${i} not asked again`);
  const res = await fetch(r.outcome.rest);
  assert.equal(res.status, 412, 'the event stream tells the change');
  await res.body?.cancel();
});

test('an If-Range that no longer matches gets 200: raw stops and hands the rest back', async () => {
  write('stale.bin');
  const px = await startFilesProxy(srv.url);
  try {
    // A part of the file: a stale validator makes it the whole current file with 200.
    const part = await rawRun('stale.bin', { base: px.url, query: '&from=3', state: (s) => { s.etag = '"stale"'; } });
    assert.match(part.outcome.why, /answered 200/);
    assert.deepEqual(askedRuns(part.outcome.rest, part.m.chunks), [[3, part.m.chunks]]);
    assert.deepEqual(part.verified, []);
    // The whole file: actix-files answers 200 anyway, with the current ETag, which is not the one named.
    const whole = await rawRun('stale.bin', { base: px.url, state: (s) => { s.etag = '"stale"'; } });
    assert.match(whole.outcome.why, /ETag/);
    assert.deepEqual(px.filesRequests().map((q) => [q.headers['if-range'], q.status]), [['"stale"', 200], ['"stale"', 200]]);
  } finally {
    await px.close();
  }
});

test('a Content-Range whose total is not the manifest\'s size (the file grew) stops raw', async () => {
  const name = 'grown.bin';
  write(name);
  let grown = false;
  const r = await rawRun(name, { state: () => {
    if (!grown) appendFileSync(path.join(srv.root, name), 'more');
    grown = true;
  } });
  assert.match(r.outcome.why, new RegExp(`Content-Range "bytes 0-${SIZE - 1}/${SIZE + 4}"`));
  assert.deepEqual(r.verified, []);
  assert.deepEqual(askedRuns(r.outcome.rest, r.m.chunks), [[0, r.m.chunks]]);
});

test('a signed link\'s exp and sig go to /files too, which they authorize', async () => {
  const bytes = write('linked.bin');
  const link = execFileSync(BINARY, ['link', srv.url, 'linked.bin', '--expires', '1h', '--key-file', path.join(dir, 'link-key')],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const q = new URL(link).searchParams;
  const params = `&exp=${q.get('exp')}&sig=${q.get('sig')}`;
  const px = await startFilesProxy(srv.url);
  try {
    const r = await rawRun('linked.bin', { base: px.url, params, query: '&from=1' });
    assert.deepEqual(r.outcome, { end: true });
    assert.ok(r.disk.subarray(CHUNK).equals(bytes.subarray(CHUNK)));
    const [files] = px.filesRequests();
    assert.equal(files.line, `GET /files/linked.bin?exp=${q.get('exp')}&sig=${q.get('sig')} HTTP/1.1`);
    assert.equal(files.status, 206);
  } finally {
    await px.close();
  }
});
