// HTTPS, HTTP/2 and CORS in a real Chromium, as a remote user would meet
// them: the server bound to 0.0.0.0 and opened as https://lan.test:PORT/ with
// a certificate it made itself (--tls-self-signed lan.test, in a temporary
// config dir), Chromium started with --ignore-certificate-errors (the page
// stays a secure context). Only the public API of /chunkcast.js is used.
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, LAN_HOST } from './chromium.mjs';
import { pseudoRandom, REPO, sha256hex, startServer } from '../js/helpers.mjs';

// The server's self-signed certificate goes to a config dir of our own.
const CONFIG = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-tls-config-'));
process.env.XDG_CONFIG_HOME = CONFIG;

const BIN = pseudoRandom(3 * 1024 * 1024 + 123, 7);
const TEXT = 'Over HTTPS, line by line: ünïcödé, emoji 🎉, and more.\n'.repeat(3000);
/**
 * Twelve files a paced download needs about four seconds for: long enough
 * that all twelve overlap even when a loaded machine starts them a couple
 * of seconds apart (at two seconds each, one once finished before the last began).
 */
const PACED = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`p${i}.bin`, pseudoRandom(256 * 1024, 100 + i)]));
const PACE = 64 * 1024; // bytes per second per download

/** @type {Awaited<ReturnType<typeof startServer>>} */ let tls;
/** @type {Awaited<ReturnType<typeof launch>>} */ let browser;

before(async () => {
  tls = await startServer({
    bind: '0.0.0.0:0',
    files: { 'big.bin': BIN, 'story-tls.txt': TEXT, ...PACED },
    args: ['--tls-self-signed', LAN_HOST],
  });
  browser = await launch({ lanHost: LAN_HOST, ignoreCertificateErrors: true });
});

after(async () => {
  await browser?.close();
  await tls?.stop();
  rmSync(CONFIG, { recursive: true, force: true });
});

/**
 * Downloads `name` in `page` through the library and returns what the page
 * saw: the result's SHA-256 (computed in the page), the store used, whether
 * the page is a secure context.
 * @param {import('playwright-core').Page} page @param {string} name @param {object} opts
 */
function download(page, name, opts = {}) {
  return page.evaluate(async ({ name, opts }) => {
    const lib = await import('/chunkcast.js');
    const d = new lib.Download(name, opts);
    d.start();
    const { blob } = await d.done;
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
    return {
      sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
      size: blob.size,
      opfs: d.store instanceof lib.OpfsStore,
      secure: isSecureContext,
    };
  }, { name, opts });
}

test('https://lan.test: the page is a secure context and downloads verified through OPFS', async () => {
  const url = `https://${LAN_HOST}:${tls.port}/`;
  const page = await browser.context.newPage();
  try {
    await page.goto(url);
    assert.equal(await page.evaluate(() => location.protocol), 'https:');
    for (const [name, bytes] of [['big.bin', BIN], ['story-tls.txt', Buffer.from(TEXT)]]) {
      const r = await download(page, name, { store: 'opfs' });
      assert.equal(r.secure, true, 'https keeps the page a secure context');
      assert.equal(r.opfs, true, `${name}: stored in OPFS`);
      assert.equal(r.size, bytes.length, name);
      assert.equal(r.sha256, sha256hex(bytes), `${name}: verified and identical`);
    }
    // The server said which protocols it serves.
    const health = await page.evaluate(async () => (await fetch('/healthz')).json());
    assert.equal(health.tls, true);
    assert.deepEqual(health.protocols, ['h2', 'http/1.1']);
  } finally {
    await page.close();
  }
});

/**
 * Opens `count` pages on `origin`, then starts a paced download in each, and
 * samples every page until all are done. Returns the most downloads that
 * were under way at the same moment (some bytes verified, not finished) and
 * the protocol the pages negotiated.
 * @param {string} origin
 */
async function parallelDownloads(origin, count = 12) {
  const pages = [];
  for (let i = 0; i < count; i++) {
    const page = await browser.context.newPage();
    await page.goto(`${origin}healthz`);
    pages.push(page);
  }
  try {
    const protocol = await pages[0].evaluate(() =>
      /** @type {any} */ (performance.getEntriesByType('navigation')[0]).nextHopProtocol);
    await Promise.all(pages.map((page, i) => page.evaluate(({ name, rate }) => {
      const w = /** @type {any} */ (window);
      w.dl = { bytes: 0, done: false };
      w.result = import('/chunkcast.js').then(async (lib) => {
        const d = new lib.Download(name, { store: 'memory', rate, progressInterval: 50,
          onprogress: (p) => { w.dl.bytes = p.bytesVerified; } });
        d.start();
        const { blob } = await d.done;
        w.dl.done = true;
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
        return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
      });
    }, { name: `p${i}.bin`, rate: PACE })));
    let mostAtOnce = 0;
    const deadline = Date.now() + 60000;
    for (;;) {
      const now = await Promise.all(pages.map((p) => p.evaluate(() => /** @type {any} */ (window).dl)));
      mostAtOnce = Math.max(mostAtOnce, now.filter((s) => s.bytes > 0 && !s.done).length);
      if (now.every((s) => s.done)) break;
      assert.ok(Date.now() < deadline, `downloads did not finish: ${JSON.stringify(now)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const digests = await Promise.all(pages.map((p) => p.evaluate(() => /** @type {any} */ (window).result)));
    digests.forEach((d, i) => assert.equal(d, sha256hex(PACED[`p${i}.bin`]), `p${i}.bin verified`));
    return { mostAtOnce, protocol };
  } finally {
    await Promise.all(pages.map((p) => p.close()));
  }
}

test('HTTP/2: twelve paced downloads in one profile all progress at once', async () => {
  const { mostAtOnce, protocol } = await parallelDownloads(`https://${LAN_HOST}:${tls.port}/`);
  assert.equal(protocol, 'h2');
  assert.equal(mostAtOnce, 12, 'all twelve under way at the same moment');
});

test('HTTP/1.1: the same twelve downloads show the browser limit of six connections', async () => {
  const plain = await startServer({ root: tls.root });
  try {
    const { mostAtOnce, protocol } = await parallelDownloads(plain.url);
    assert.equal(protocol, 'http/1.1');
    assert.ok(mostAtOnce <= 6, `at most six at once over HTTP/1.1, saw ${mostAtOnce}`);
    assert.ok(mostAtOnce >= 2, `several at once, saw ${mostAtOnce}`);
  } finally {
    await plain.stop();
  }
});

/**
 * A page on another origin (a tiny static server on `localhost`, serving a
 * copy of web/ and a blank page) that loads chunkcast.js from its own origin
 * and downloads from the chunkcast server at `base`.
 */
async function otherOrigin() {
  const web = path.join(REPO, 'web');
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    if (p === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>other origin</title>');
      return;
    }
    const file = path.join(web, path.normalize(p).replace(/^(\.\.[/\\])+/, ''));
    if (!file.startsWith(web) || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
    const type = file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
  return { url: `http://localhost:${port}/`, origin: `http://localhost:${port}`, close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); } };
}

test('a page on another origin downloads with --cors-origin, and is refused without it', async () => {
  const other = await otherOrigin();
  const allowed = await startServer({ root: tls.root, args: ['--cors-origin', other.origin] });
  const closed = await startServer({ root: tls.root });
  const page = await browser.context.newPage();
  try {
    await page.goto(other.url);
    const attempt = (base) => page.evaluate(async ({ base }) => {
      const lib = await import('/chunkcast.js');
      const d = new lib.Download('story-tls.txt', { base, store: 'memory', retries: 0, backoffBase: 10 });
      d.start();
      try {
        const { blob } = await d.done;
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
        return { ok: true, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
      } catch (e) {
        return { ok: false, error: String(/** @type {any} */ (e)?.message ?? e) };
      }
    }, { base });
    const ok = await attempt(allowed.url);
    assert.deepEqual(ok, { ok: true, sha256: sha256hex(Buffer.from(TEXT)) });
    // The same request from the same page, to a server without the flag: the
    // browser withholds the response, so the library sees a network failure.
    const refused = await Promise.race([attempt(closed.url), new Promise((r) => setTimeout(() => r('hung'), 30000).unref())]);
    assert.equal(/** @type {any} */ (refused).ok, false, `refused: ${JSON.stringify(refused)}`);
    // And the browser itself says why.
    const direct = await page.evaluate(async (u) => {
      try { await fetch(u); return 'read'; } catch (e) { return String(e); }
    }, `${closed.url}api/files`);
    assert.match(direct, /TypeError|Failed to fetch/);
  } finally {
      await page.close();
    await allowed.stop();
    await closed.stop();
    await other.close();
  }
});
