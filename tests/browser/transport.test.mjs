// The two transports of the browser library (Download option `transport`):
// 'worker' (a worker fetches the stream and ranges, decodes and verifies,
// the OPFS store's worker writes; web/lib/transport/; with its default raw
// path, the bulk read from /files: raw.test.mjs has its faults) and
// 'eventsource' (the page's EventSource, the reference behaviour). Each behaviour runs against both,
// in real Chromium on http://127.0.0.1 (a secure context, so OPFS exists),
// failures injected on the wire by the proxy of tests/js/helpers.mjs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launch } from './chromium.mjs';
import { FIXTURES, pseudoRandom, sha256hex, startProxy, startServer } from '../js/helpers.mjs';

const BIG = 6 << 20; // 24 chunks of 256 KiB
const big = pseudoRandom(BIG, 77);
const MID = 1 << 20; // 256 chunks of 4 KiB
const mid = pseudoRandom(MID, 76);
let small; // fixtures, 4 KiB chunks (their edge cases are about that size)
let large; // 256 KiB chunks
let browser;

before(async () => {
  small = await startServer({ chunkSize: '4K', files: { 'mid.bin': mid }, args: ['--retry-ms', '200'] });
  large = await startServer({ chunkSize: '256K', files: { 'big.bin': big, 'changing.bin': pseudoRandom(BIG, 78) }, args: ['--retry-ms', '200'] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await small?.stop();
  await large?.stop();
});

/**
 * Starts a download in a page of `url` (its origin serves the library);
 * `window.rec` collects what the callbacks said. Returns the page. With
 * `warm`, a download of that file runs first (every module and worker of
 * the library loaded), then `ready()`.
 * @param {string} url @param {string} name @param {Record<string, any>} opts
 * @param {{warm?: string, ready?: () => Promise<unknown>}} [first]
 */
async function begin(url, name, opts, first = {}) {
  const page = await browser.context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(url);
  if (first.warm) {
    await page.evaluate(async ([n, o]) => {
      const { Download } = await import('/chunkcast.js');
      const dl = new Download(n, { store: 'opfs', ...o });
      dl.start();
      await dl.done;
      await dl.close();
    }, [first.warm, opts]);
  }
  await first.ready?.();
  await page.evaluate(async ([n, o]) => {
    const { Download, clearStored } = await import('/chunkcast.js');
    await clearStored(n);
    const rec = { verified: 0, counts: {}, texts: [], states: [], log: [], changes: [], errors: [] };
    /** @type {any} */ (window).rec = rec;
    const dl = new Download(n, {
      store: 'opfs', backoffBase: 100, ...o,
      onchunk: (i, s) => { if (s === 'verified' || s === 'refetched') { rec.verified++; rec.counts[i] = (rec.counts[i] || 0) + 1; } },
      ontext: (t, info) => rec.texts.push([info.i, t]),
      onstate: (s) => rec.states.push(s),
      onchanged: (c) => rec.changes.push(c),
      onerror: (e) => rec.errors.push(e.code),
      log: (m) => rec.log.push(m),
    });
    /** @type {any} */ (window).dl = dl;
    dl.start();
  }, [name, opts]);
  return Object.assign(page, { problems });
}

/** Waits for the download to settle; its outcome, the result's SHA-256 and what was recorded. @param {any} page */
async function settle(page) {
  const r = await page.evaluate(async () => {
    const w = /** @type {any} */ (window);
    const out = { ok: false, sha: '', code: '', transport: '', progress: null, rec: w.rec };
    try {
      const { blob } = await w.dl.done;
      out.transport = w.dl.transportKind;
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

for (const transport of ['worker', 'eventsource']) {
  describe(`transport: ${transport}`, () => {
    test('downloads and verifies every edge fixture', async () => {
        const names = readdirSync(FIXTURES).filter((f) => statSync(path.join(FIXTURES, f)).isFile());
      assert.ok(names.length >= 8);
      for (const name of names) {
        const page = await begin(small.url, name, { transport });
        const r = await settle(page);
        assert.ok(r.ok, `${name}: ${r.code} ${r.rec.log.join('; ')}`);
        assert.equal(r.sha, sha256hex(readFileSync(path.join(FIXTURES, name))), name);
        assert.equal(r.transport, transport, `${name} went through the ${transport} transport`);
        assert.deepEqual(page.problems, []);
      }
    });

    test('downloads a multi-MiB file, each chunk verified exactly once', async () => {
      const page = await begin(large.url, 'big.bin', { transport });
      const r = await settle(page);
      assert.ok(r.ok, r.rec.log.join('; '));
      assert.equal(r.sha, sha256hex(big));
      assert.equal(r.transport, transport);
      assert.equal(Object.keys(r.rec.counts).length, 24);
      assert.ok(Object.values(r.rec.counts).every((c) => c === 1));
      assert.equal(r.progress.bytesReceived, BIG, 'nothing received twice');
    });

    test('a cut connection resumes with Last-Event-ID: nothing duplicated or lost', async () => {
      const proxy = await startProxy(large.url);
      try {
        const page = await begin(proxy.url, 'big.bin', { transport, rate: 3 << 20 });
        await waitVerified(page, 5);
        assert.ok(proxy.dropAll() >= 1, 'a connection was cut');
        const r = await settle(page);
        assert.ok(r.ok, r.rec.log.join('; '));
        assert.equal(r.sha, sha256hex(big));
        assert.ok(Object.values(r.rec.counts).every((c) => c === 1), 'no chunk verified twice');
        assert.equal(Object.keys(r.rec.counts).length, 24, 'none lost');
        assert.equal(r.progress.bytesReceived, BIG, 'nothing received twice');
        const events = proxy.eventRequests();
        const resumed = events.filter((q) => q.headers['last-event-id'] !== undefined);
        assert.ok(resumed.length >= 1, `a reconnect carried Last-Event-ID: ${events.map((q) => q.line).join(', ')}`);
        const id = Number(resumed[0].headers['last-event-id']);
        assert.ok(id >= 4 && id < 23, `Last-Event-ID ${id} is a chunk after the first verified ones`);
      } finally {
        await proxy.close();
      }
    });

    test('a stalled connection is noticed and reopened', async () => {
      const proxy = await startProxy(large.url);
      try {
        const page = await begin(proxy.url, 'big.bin', { transport, rate: 3 << 20, stallTimeout: 1500 });
        await waitVerified(page, 4);
        proxy.stallCurrent();
        const r = await settle(page);
        assert.ok(r.ok, r.rec.log.join('; '));
        assert.equal(r.sha, sha256hex(big));
        assert.ok(proxy.eventRequests().length >= 2, 'the stream was reopened');
      } finally {
        await proxy.close();
      }
    });

    test('a chunk corrupted on the wire fails verification and is refilled by range', async () => {
      // 4 KiB chunks: the proxy finds events to corrupt only within one HTTP chunk.
      const proxy = await startProxy(small.url);
      try {
        // Corrupted only once the page and its workers are loaded (a warm-up
        // download): the proxy holds back any text after an `id: ` with no
        // blank line behind it, and finds no event split by pacing.
        // On the event stream (`raw: false`): the proxy forges chunk events;
        // a byte corrupted in a raw body is tests/browser/raw.test.mjs's.
        const page = await begin(proxy.url, 'mid.bin', { transport, raw: false }, {
          warm: 'one-chunk.bin',
          ready: () => Promise.all([proxy.forge(150, 1), proxy.forge(220, 1)]),
        });
        const r = await settle(page);
        assert.ok(r.ok, r.rec.log.join('; '));
        assert.equal(r.sha, sha256hex(mid));
        assert.equal(proxy.corrupted, 2);
        assert.equal(r.progress.chunksFailed, 2);
        assert.equal(r.progress.chunksRefetched, 2);
        const ranges = proxy.requests.filter((q) => q.line.includes('/events/chunk/'));
        assert.ok(ranges.length >= 1, 'refilled through the range endpoint');
      } finally {
        await proxy.close();
      }
    });

    test('a file that grows mid-stream: the verified chunks are kept in OPFS and the rest fetched, verified against the new root', async () => {
      const file = path.join(large.root, 'changing.bin');
      const v1 = pseudoRandom(BIG, 78);
      writeFileSync(file, v1);
      const page = await begin(large.url, 'changing.bin', { transport, rate: 2 << 20 });
      await waitVerified(page, 3);
      const tail = pseudoRandom(7, 79);
      writeFileSync(file, Buffer.concat([v1, tail]));
      const r = await settle(page);
      assert.ok(r.ok, r.rec.log.join('; '));
      assert.equal(r.sha, sha256hex(Buffer.concat([v1, tail])));
      assert.equal(r.rec.changes.length, 1);
      const c = r.rec.changes[0];
      assert.ok(c.newVersion && c.newVersion !== c.oldVersion);
      assert.ok(c.kept >= 3, `kept ${c.kept}`);
      assert.equal(r.progress.chunksResumed, c.kept);
      assert.deepEqual(r.rec.errors, []);
    });

    test('text streams to ontext in order, exactly', async () => {
      const name = 'story.txt';
      const page = await begin(small.url, name, { transport, rate: 40000 });
      const r = await settle(page);
      assert.ok(r.ok, r.rec.log.join('; '));
      const want = readFileSync(path.join(FIXTURES, name), 'utf8');
      assert.deepEqual(r.rec.texts.map(([i]) => i), r.rec.texts.map((_, k) => k), 'in chunk order');
      assert.equal(r.rec.texts.map(([, t]) => t).join(''), want);
    });
  });
}

test('auto (the default) takes the worker with the OPFS store, EventSource with the others and when the caller brings an EventSource', async () => {
  const page = await browser.context.newPage();
  await page.goto(large.url);
  const kinds = await page.evaluate(async () => {
    const { Download } = await import('/chunkcast.js');
    const out = {};
    for (const store of ['opfs', 'idb', 'memory']) {
      const dl = new Download('big.bin', { store, transport: 'auto' });
      dl.start();
      await dl.done;
      out[store] = dl.transportKind;
      await dl.close();
    }
    const plain = new Download('big.bin', { store: 'opfs' });
    plain.start();
    await plain.done;
    out.default = plain.transportKind;
    await plain.close();
    const own = new Download('big.bin', { store: 'opfs', EventSource });
    own.start();
    await own.done;
    out.ownEventSource = own.transportKind;
    await own.close();
    return out;
  });
  assert.deepEqual(kinds, { opfs: 'worker', idb: 'eventsource', memory: 'eventsource', default: 'worker', ownEventSource: 'eventsource' });
  await page.close();
});

test('if the transport worker cannot load, the download goes on through EventSource', async () => {
  const page = await browser.context.newPage();
  let blocked = 0;
  await page.route('**/workers/transport.js', (r) => { blocked++; return r.abort(); });
  await page.goto(large.url);
  const r = await page.evaluate(async () => {
    const { Download, clearStored } = await import('/chunkcast.js');
    await clearStored('big.bin');
    /** @type {string[]} */
    const log = [];
    const dl = new Download('big.bin', { store: 'opfs', transport: 'worker', log: (m) => log.push(m) });
    dl.start();
    const { blob } = await dl.done;
    const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))].map((b) => b.toString(16).padStart(2, '0')).join('');
    const out = { kind: dl.transportKind, sha, log, failed: dl.progress().chunksFailed };
    await dl.close();
    return out;
  });
  await page.close();
  assert.ok(blocked >= 1, 'the worker script was asked for');
  assert.ok(r.log.some((m) => /worker transport failed/.test(m)), r.log.join('; '));
  assert.equal(r.kind, 'eventsource');
  assert.equal(r.sha, sha256hex(big));
  assert.equal(r.failed, 0);
});

test('with --auth, the worker transport sends the credentials the browser signed in with, raw from /files and on the event stream', async () => {
  const srv = await startServer({ chunkSize: '4K', files: { 'mid.bin': mid }, args: ['--auth', 'ann:secret', '--retry-ms', '200'] });
  const signedIn = await launch({ httpCredentials: { username: 'ann', password: 'secret' } });
  const proxy = await startProxy(srv.url);
  try {
    const page = await signedIn.context.newPage();
    await page.goto(proxy.url);
    for (const raw of [true, false]) {
      const asked = proxy.requests.length;
      const r = await page.evaluate(async (raw) => {
        const { Download, clearStored } = await import('/chunkcast.js');
        await clearStored('mid.bin');
        const dl = new Download('mid.bin', { store: 'opfs', transport: 'worker', raw });
        dl.start();
        const { blob } = await dl.done;
        const out = { kind: dl.transportKind,
          sha: [...new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))].map((b) => b.toString(16).padStart(2, '0')).join('') };
        await dl.close();
        return out;
      }, raw);
      assert.equal(r.kind, 'worker');
      assert.equal(r.sha, sha256hex(mid));
      const mine = proxy.requests.slice(asked);
      const data = mine.filter((q) => q.line.startsWith(raw ? 'GET /files/' : 'GET /events'));
      assert.ok(data.length >= 1 && data.every((q) => /^Basic /.test(q.headers.authorization ?? '')), `raw ${raw}: the ${raw ? '/files' : 'stream'} request carried Basic credentials`);
      assert.equal(mine.filter((q) => q.line.startsWith(raw ? 'GET /events' : 'GET /files/')).length, 0, `raw ${raw}: nothing through the other path`);
    }
  } finally {
    await proxy.close();
    await signedIn.close();
    await srv.stop();
  }
});

test("the worker transport keeps the server's code and words of a refused range, as the EventSource transport does", async () => {
  // The worker runs the same range reader as the page (transport/range.js):
  // a range the server refuses (more chunks than its --max-range 4) comes
  // back with the server's error code and sentence, not only a status.
  const srv = await startServer({ chunkSize: '4K', files: { 'mid.bin': mid }, args: ['--max-range', '4'] });
  const page = await browser.context.newPage();
  try {
    await page.goto(srv.url);
    const r = await page.evaluate(async (name) => {
      const { OpfsStore, checkManifest, clearStored } = await import('/chunkcast.js');
      const { openTransport } = await import('/lib/transport/index.js');
      await clearStored(name);
      const m = await (await fetch(`/api/manifest?file=${name}`)).json();
      const expected = await checkManifest(m, name);
      const store = new OpfsStore(name);
      await store.open(m);
      /** @type {number[]} */
      const verified = [];
      const log = [];
      const host = { manifest: m, expected, store, isVerified: () => false, notice: (n) => verified.push(...n.verified), fail: () => {}, broken: (why) => log.push(why), log: (s) => log.push(s) };
      const out = {};
      for (const want of ['worker', 'eventsource']) {
        const t = openTransport(want, host, { EventSource, fetch: fetch.bind(globalThis), own: false, stats: null });
        const ask = (a, b) => t.range({ url: `/events/chunk/${a}/${b}?file=${name}&v=${m.version}`, label: `${a}..${b}`, ctl: new AbortController(), stallTimeout: 10000, maxLine: 1 << 22 });
        const refused = await ask(0, 10);
        const whole = await ask(0, 3);
        await t.idle();
        out[want] = { kind: t.kind, refused: { ...refused, broken: refused.broken?.message ?? null }, whole: whole.failure, verified: [...new Set(verified.splice(0))].sort((a, b) => a - b) };
        t.close();
      }
      await store.close();
      await clearStored(name);
      return { out, log };
    }, 'mid.bin');
    for (const want of ['worker', 'eventsource']) {
      const got = r.out[want];
      assert.equal(got.kind, want);
      assert.deepEqual(got.refused, { failure: 'range 0..10 answered 416: 10 chunks asked, at most 4 per request', code: 'range_not_satisfiable', broken: null, status: 416 }, want);
      assert.equal(got.whole, null, `${want}: a range the server allows arrives whole`);
      assert.deepEqual(got.verified, [0, 1, 2], `${want}: its chunks are verified`);
    }
    assert.deepEqual(r.log, []);
  } finally {
    await page.close();
    await srv.stop();
  }
});
