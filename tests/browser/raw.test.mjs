// The raw path of the worker transport (web/lib/transport/raw.js) in real
// Chromium on http://127.0.0.1 (a secure context: OPFS, the worker
// transport): the bulk of a download read from /files with Range, each
// chunk verified against the manifest and stored; a cut body resumed at the
// next chunk; a corrupt byte caught and the rest fetched through the event
// stream; a file that changes on the server handled as with the event
// stream alone; `raw: false` and a paced download on the event stream; a
// text shown as it arrives. Requests are seen, and faults injected, by the
// /files-aware proxy of tests/js/files-proxy.mjs in front of the real server.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { inCard, openPage, waitData } from './page-helpers.mjs';
import { startFilesProxy } from '../js/files-proxy.mjs';
import { makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const CHUNK = 256 << 10;
const BIG = 6 << 20; // 24 chunks
const big = pseudoRandom(BIG, 81);
const HUGE = 40 << 20; // over the 32 MiB the 'auto' store keeps in memory: OPFS, so the worker transport
const huge = pseudoRandom(HUGE, 82);
let root;
let srv;
let browser;

before(async () => {
  root = makeRoot({ 'big.bin': big, 'huge.bin': huge });
  srv = await startServer({ root, chunkSize: '256K', args: ['--retry-ms', '200'] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/**
 * A page of `url` running a download of `name` with `opts` (none of the
 * library's defaults changed unless given); `window.rec` collects what the
 * callbacks said.
 * @param {string} url @param {string} name @param {Record<string, any>} opts
 */
async function begin(url, name, opts) {
  const page = await browser.context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(url);
  await page.evaluate(async ([n, o]) => {
    const { Download, clearStored } = await import('/chunkcast.js');
    await clearStored(n);
    const rec = { verified: 0, counts: {}, log: [], changes: [], errors: [], states: [] };
    /** @type {any} */ (window).rec = rec;
    const dl = new Download(n, {
      backoffBase: 100, ...o,
      onchunk: (i, s) => { if (s === 'verified' || s === 'refetched') { rec.verified++; rec.counts[i] = (rec.counts[i] || 0) + 1; } },
      onstate: (s) => rec.states.push(s),
      onchanged: (c) => rec.changes.push(c),
      onerror: (e) => rec.errors.push(`${e.code}: ${e.message}`),
      log: (m) => rec.log.push(m),
    });
    /** @type {any} */ (window).dl = dl;
    dl.start();
  }, [name, opts]);
  return Object.assign(page, { problems });
}

/** Waits for the download; its outcome, the stored result's SHA-256, the store and transport, and what was recorded. @param {any} page */
async function settle(page) {
  const r = await page.evaluate(async () => {
    const w = /** @type {any} */ (window);
    const out = { ok: false, sha: '', code: '', transport: '', store: '', progress: null, rec: w.rec };
    try {
      const { blob } = await w.dl.done;
      out.transport = w.dl.transportKind;
      out.store = w.dl.store.kind;
      out.ok = true;
      out.sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))].map((b) => b.toString(16).padStart(2, '0')).join('');
    } catch (e) {
      out.code = /** @type {any} */ (e).code;
    }
    out.progress = w.dl.progress();
    await w.dl.close();
    return out;
  });
  await page.close();
  return r;
}

const waitVerified = (/** @type {any} */ page, /** @type {number} */ n) =>
  page.waitForFunction((k) => /** @type {any} */ (window).rec.verified >= k, n, { timeout: 30000, polling: 20 });

/** The chunks an /events request asks for first (`need=`, `from=`, else 0). @param {string} line */
const firstAsked = (line) => {
  const q = new URL(line.split(' ')[1], 'http://x').searchParams;
  return Number((q.get('need') ?? q.get('from') ?? '0').split(/[,-]/)[0]);
};

test('with no options at all, a file the OPFS store takes is read from /files with Range, and what is stored is the source', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    const page = await begin(px.url, 'huge.bin', {});
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.deepEqual([r.store, r.transport], ['opfs', 'worker']);
    assert.equal(r.sha, sha256hex(huge), 'the file read back from OPFS is the source');
    const files = px.filesRequests();
    assert.ok(files.length >= 1, 'the bytes came from /files');
    assert.equal(files[0].line, 'GET /files/huge.bin HTTP/1.1');
    assert.equal(files[0].headers.range, `bytes=0-${HUGE - 1}`, 'Range: the whole file, from its first chunk');
    assert.equal(px.eventRequests().length, 0, 'no event stream');
    assert.equal(r.progress.chunksVerified, HUGE / CHUNK);
    assert.equal(r.progress.bytesReceived, HUGE, 'nothing received twice');
    assert.ok(Object.values(r.rec.counts).every((c) => c === 1), 'each chunk verified once');
    assert.ok(!r.rec.log.some((m) => /raw transfer stopped/.test(m)), r.rec.log.join('; '));
    assert.deepEqual(page.problems, []);
  } finally {
    await px.close();
  }
});

test('a body cut mid-chunk: the next request asks by Range from the next missing chunk, with If-Range; nothing verified is lost or fetched twice', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    px.cutFiles(4 * CHUNK + 100_000);
    const page = await begin(px.url, 'big.bin', { store: 'opfs' });
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.sha, sha256hex(big));
    const files = px.filesRequests();
    assert.equal(files.length, 2, files.map((q) => q.headers.range).join(', '));
    assert.equal(files[0].headers.range, `bytes=0-${BIG - 1}`);
    assert.equal(files[0].headers['if-range'], undefined);
    assert.equal(files[1].headers.range, `bytes=${4 * CHUNK}-${BIG - 1}`, 'from the chunk the cut fell in');
    assert.equal(files[1].headers['if-range'], files[0].answer.etag, 'naming the version read so far');
    assert.equal(files[1].status, 206);
    assert.ok(r.rec.states.includes('reconnecting'), r.rec.states.join(' '));
    assert.equal(r.progress.reconnects, 1);
    assert.equal(Object.keys(r.rec.counts).length, 24, 'none lost');
    assert.ok(Object.values(r.rec.counts).every((c) => c === 1), 'none verified twice');
    assert.equal(r.progress.bytesReceived, BIG, 'no whole chunk received twice');
    assert.equal(px.eventRequests().length, 0);
  } finally {
    await px.close();
  }
});

test('paused and resumed: the resume asks by Range from the next missing chunk, with If-Range; every chunk verified once', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    px.pace = 2 << 20;
    const page = await begin(px.url, 'big.bin', { store: 'opfs' });
    await waitVerified(page, 4);
    await page.evaluate(() => /** @type {any} */ (window).dl.pause());
    await new Promise((r) => setTimeout(r, 300)); // what was read is verified meanwhile
    const held = await page.evaluate(() => /** @type {any} */ (window).rec.verified);
    px.pace = 0;
    await page.evaluate(() => /** @type {any} */ (window).dl.resume());
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.sha, sha256hex(big));
    assert.ok(Object.values(r.rec.counts).every((c) => c === 1) && Object.keys(r.rec.counts).length === 24, JSON.stringify(r.rec.counts));
    const [first, resumed, ...more] = px.filesRequests();
    assert.deepEqual(more, []);
    assert.equal(resumed.headers.range, `bytes=${held * CHUNK}-${BIG - 1}`, `from chunk ${held}, the first not verified when paused`);
    assert.equal(resumed.headers['if-range'], first.answer.etag);
    assert.equal(resumed.status, 206);
    assert.ok(r.rec.states.includes('paused'));
  } finally {
    await px.close();
  }
});

test('a /files body that stalls is dropped after stallTimeout, and the next request resumes it', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    px.pace = 2 << 20;
    const page = await begin(px.url, 'big.bin', { store: 'opfs', stallTimeout: 1500 });
    await waitVerified(page, 4);
    px.stall = true;
    // Noticed by the raw request's own clock (a drop: 'reconnecting') or by
    // the scheduler's, which watches the notices ('stalled'): whichever runs out first.
    await page.waitForFunction(() => /** @type {any} */ (window).rec.states.some((s) => s === 'reconnecting' || s === 'stalled'), null, { timeout: 20000, polling: 20 });
    px.stall = false;
    px.pace = 0;
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.sha, sha256hex(big));
    assert.ok(Object.values(r.rec.counts).every((c) => c === 1) && Object.keys(r.rec.counts).length === 24);
    assert.ok(r.progress.reconnects >= 1);
    const files = px.filesRequests();
    assert.ok(files.length >= 2);
    const from = Number(/^bytes=(\d+)-/.exec(files[1].headers.range)?.[1]);
    assert.ok(from >= 4 * CHUNK && from % CHUNK === 0, `resumed at byte ${from}, a chunk after those verified`);
    assert.equal(files[1].headers['if-range'], files[0].answer.etag);
  } finally {
    await px.close();
  }
});

test('a byte corrupted in a /files body fails verification, is counted, and the rest comes through the event stream', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    px.flipFiles(10 * CHUNK + 12345);
    const page = await begin(px.url, 'big.bin', { store: 'opfs' });
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.sha, sha256hex(big));
    assert.equal(px.flipped, 1);
    assert.equal(r.progress.chunksFailed, 1);
    assert.equal(r.progress.chunksRefetched, 1);
    assert.equal(r.rec.counts[10], 1, 'chunk 10 verified once, from the event stream');
    assert.ok(r.rec.log.some((m) => /raw transfer stopped \(a chunk read raw failed verification\); the rest through the event stream/.test(m)), r.rec.log.join('; '));
    const events = px.eventRequests();
    assert.equal(events.length, 1, events.map((q) => q.line).join(', '));
    assert.equal(firstAsked(events[0].line), 10, `${events[0].line} asks for the failed chunk first`);
    assert.match(events[0].line, /[?&]v=[0-9a-f]+/, 'naming the version, so that a change is a 412');
    assert.equal(px.filesRequests().length, 1, 'raw is off for the rest of the download');
  } finally {
    await px.close();
  }
});

test('a file changed on the server while paused: the resume\'s If-Range gets 200, the event stream\'s v= a 412, and the download moves to the new version', async () => {
  const name = 'paused.bin';
  writeFileSync(path.join(root, name), pseudoRandom(BIG, 83));
  const px = await startFilesProxy(srv.url);
  try {
    px.pace = 2 << 20;
    const page = await begin(px.url, name, { store: 'opfs' });
    await waitVerified(page, 4);
    await page.evaluate(() => /** @type {any} */ (window).dl.pause());
    await new Promise((r) => setTimeout(r, 100));
    const v2 = pseudoRandom(BIG + 7, 84);
    writeFileSync(path.join(root, name), v2);
    px.pace = 0;
    const asked = px.requests.length;
    await page.evaluate(() => /** @type {any} */ (window).dl.resume());
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.sha, sha256hex(v2));
    assert.equal(r.rec.changes.length, 1);
    assert.deepEqual(r.rec.errors, []);
    const old = r.rec.changes[0].oldVersion;
    const after = px.requests.slice(asked);
    const resumed = after.find((q) => q.line.startsWith('GET /files/'));
    assert.ok(resumed?.headers['if-range'] && resumed.status === 200, `the resume: ${JSON.stringify(resumed)}`);
    assert.ok(after.some((q) => q.line.startsWith('GET /events') && q.line.includes(`v=${old}`) && q.status === 412), after.map((q) => `${q.line} ${q.status}`).join(', '));
  } finally {
    await px.close();
  }
});

test('a file rewritten while its body is read: the chunks that differ fail verification, and the download moves to the new version', async () => {
  const name = 'rewritten.bin';
  const SIZE = 24 << 20;
  writeFileSync(path.join(root, name), pseudoRandom(SIZE, 85));
  const px = await startFilesProxy(srv.url);
  try {
    px.pace = 4 << 20;
    const page = await begin(px.url, name, { store: 'opfs' });
    await waitVerified(page, 8);
    const v2 = pseudoRandom(SIZE, 86);
    writeFileSync(path.join(root, name), v2);
    px.pace = 0;
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.sha, sha256hex(v2));
    assert.equal(r.rec.changes.length, 1, r.rec.log.join('; '));
    assert.deepEqual(r.rec.errors, []);
    assert.ok(r.rec.log.some((m) => /raw transfer stopped/.test(m)), r.rec.log.join('; '));
  } finally {
    await px.close();
  }
});

test('raw: false keeps the worker transport on the event stream', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    const page = await begin(px.url, 'big.bin', { store: 'opfs', raw: false });
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.transport, 'worker');
    assert.equal(r.sha, sha256hex(big));
    assert.equal(px.filesRequests().length, 0);
    assert.ok(px.eventRequests().length >= 1);
  } finally {
    await px.close();
  }
});

test('a paced download (rate) stays on the event stream, which the server paces', async () => {
  const px = await startFilesProxy(srv.url);
  try {
    const page = await begin(px.url, 'big.bin', { store: 'opfs', rate: 32 << 20 });
    const r = await settle(page);
    assert.ok(r.ok, r.rec.log.join('; '));
    assert.equal(r.transport, 'worker');
    assert.equal(px.filesRequests().length, 0);
    assert.ok(px.eventRequests().every((q) => /[?&]rate=/.test(q.line)));
  } finally {
    await px.close();
  }
});

test('a text read raw is shown as it arrives: typed from its top at the reader\'s pace, whole at the end', async () => {
  // 2 MB of lines: the OPFS store (chosen on the page), 4 KiB chunks cut at character boundaries.
  const lines = [];
  for (let i = 0, n = 0; n < 2_000_000; i++) {
    lines.push(`Line ${i}: ünïcødé 名前 and the quick brown fox, again.`);
    n += Buffer.byteLength(lines[i]) + 1;
  }
  const story = `${lines.join('\n')}\n`;
  const textRoot = makeRoot({ 'long.txt': story });
  const textSrv = await startServer({ root: textRoot, chunkSize: '4K' });
  const px = await startFilesProxy(textSrv.url);
  try {
    const { page, problems } = await openPage(browser.context, `${px.url}?store=opfs`);
    await page.evaluate(() => {
      new MutationObserver((_, obs) => {
        const box = /** @type {HTMLElement|null} */ (document.querySelector('.download .text'));
        if (!box?.textContent) return;
        /** @type {any} */ (window).firstShown = box.textContent;
        obs.disconnect();
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.click('a[data-open="long.txt"]');
    await page.click(inCard('.chip[data-pace="1000"]'));
    const first = await (await page.waitForFunction(() => /** @type {any} */ (window).firstShown, null, { timeout: 15000 })).jsonValue();
    assert.ok(story.startsWith(first) && first.length < 1024, `the beginning, a few characters at a time: ${first.length}`);
    await page.waitForTimeout(1500);
    const typed = (await page.textContent(inCard('.text'))).length;
    assert.ok(typed > 500 && typed < 4000, `${typed} characters typed in about 1.5 s at 1000 a second`);
    await page.click(inCard('.chip[data-pace="0"]'));
    await waitData(page, 'state', 'v === "done"', 60000);
    await page.waitForFunction(() => document.querySelector('.download .text')?.dataset.caughtUp === 'true', null, { timeout: 20000 });
    assert.equal(await page.textContent(inCard('.text')), story);
    assert.ok(px.filesRequests().length >= 1, 'read raw');
    assert.equal(px.eventRequests().length, 0);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await px.close();
    await textSrv.stop();
    rmSync(textRoot, { recursive: true, force: true });
  }
});

test('the served page\'s own copy of the library is what this test ran (raw.js is served)', async () => {
  const res = await fetch(`${srv.url}lib/transport/raw.js`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), readFileSync(new URL('../../web/lib/transport/raw.js', import.meta.url), 'utf8'), 'rebuild target/debug/chunkcast: it embeds web/');
});
