// The page as a person on the LAN sees it over plain HTTP: Chromium maps
// lan.test to 127.0.0.1 and opens http://lan.test:PORT/, which is NOT a
// secure context (no crypto.subtle, no OPFS). Downloads must still be
// verified (the vendored WebAssembly SHA-256), stored in IndexedDB, resume
// after a reload, say once that the connection is not secure, and never
// blame storage for a failure that is not storage's.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { LAN_HOST, launch } from './chromium.mjs';
import { data, inCard, openPage as openIn, saveAndHash, setPace, waitData } from './page-helpers.mjs';
import { FIXTURES, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const BIG = 40 << 20; // above the 32 MiB kept in memory: 'auto' picks a persistent store
const CHUNK = 256 << 10;

let srv;
let root;
let browser;
let base;
const bigSha = {};

before(async () => {
  const a = pseudoRandom(BIG, 11);
  const b = pseudoRandom(BIG, 12);
  bigSha['lan.bin'] = sha256hex(a);
  bigSha['lan-reload.bin'] = sha256hex(b);
  root = makeRoot({ 'lan.bin': a, 'lan-reload.bin': b });
  srv = await startServer({ root, chunkSize: '256K', bind: '0.0.0.0:0', args: ['--retry-ms', '300'] });
  base = `http://${LAN_HOST}:${srv.port}/`;
  browser = await launch({ lanHost: LAN_HOST });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const openPage = (query = '') => openIn(browser.context, base + query);
const waitLong = (page, key, pred) => waitData(page, key, pred, 120000);
const savedSha = async (page) => (await saveAndHash(page)).sha;

/** What the library finds stored for `name`, from inside the page. */
const stored = (page, name) => page.evaluate(async (n) => (await import('/chunkcast.js')).findStored(n), name);

test('over plain HTTP from another host the page is not a secure context, and says so once', async () => {
  const { page, problems } = await openPage();
  const env = await page.evaluate(() => ({
    secure: window.isSecureContext, subtle: typeof crypto.subtle, opfs: typeof navigator.storage?.getDirectory, idb: typeof indexedDB,
    backend: document.documentElement.dataset.sha256,
  }));
  assert.deepEqual(env, { secure: false, subtle: 'undefined', opfs: 'undefined', idb: 'object', backend: 'wasm' });
  assert.equal(await page.isVisible('#insecure'), true);
  const notice = await page.textContent('#insecure');
  assert.match(notice, /not secure/);
  assert.match(notice, /slower/);
  assert.match(notice, /HTTPS/);
  assert.equal(await page.locator('.notice:visible').count(), 1, 'said once');
  assert.deepEqual(problems, []);
  await page.close();
});

test('a binary file downloads verified through IndexedDB, and saves the exact bytes', async () => {
  const { page, problems } = await openPage();
  await page.click('button[data-file="lan.bin"]');
  await waitLong(page, 'state', 'v === "done"');
  assert.equal(await data(page, 'verified'), String(BIG / CHUNK));
  assert.equal(await page.textContent(inCard('.sha256')), bigSha['lan.bin']);
  // The page also hashes the whole file once more (with the fallback here).
  await page.waitForFunction(() => document.querySelector('.download .sha-check').textContent !== '', null, { timeout: 30000 });
  assert.match(await page.textContent(inCard('.sha-check')), /✓/);
  assert.deepEqual(await stored(page, 'lan.bin'), { store: 'idb', version: (await (await fetch(`${srv.url}api/manifest?file=lan.bin`)).json()).version, chunks: BIG / CHUNK, size: BIG });
  assert.equal(await savedSha(page), bigSha['lan.bin']);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a text file streams as text, verified, through IndexedDB', async () => {
  const story = readFileSync(path.join(FIXTURES, 'story.txt'));
  const { page, problems } = await openPage('?store=idb');
  await page.click('button[data-file="story.txt"]');
  await waitLong(page, 'state', 'v === "done"');
  await page.waitForFunction(() => document.querySelector('.download .text').dataset.caughtUp === 'true', null, { timeout: 10000 });
  assert.equal(await page.textContent(inCard('.text')), story.toString('utf8'));
  assert.equal(await page.textContent(inCard('.sha256')), sha256hex(story));
  assert.equal(await page.$eval('.download', (el) => el.dataset.wholeSha256), sha256hex(story));
  assert.equal((await stored(page, 'story.txt'))?.store, 'idb');
  assert.equal(await savedSha(page), sha256hex(story));
  assert.deepEqual(problems, []);
  await page.close();
});

test('a reload mid-download resumes from IndexedDB without fetching verified chunks again', async () => {
  const name = 'lan-reload.bin';
  const { page } = await openPage();
  await setPace(page, 8388608); // 8 MiB/s: time to reload mid-way
  await page.click(`button[data-file="${name}"]`);
  await waitLong(page, 'percent', 'Number(v) >= 50');
  await page.waitForTimeout(300);
  const before = Number(await data(page, 'verified'));
  await page.reload();
  await page.waitForSelector('#resume-offer:not([hidden])');
  const onDisk = Number(await page.$eval(`#resume-text li[data-name="${name}"]`, (el) => el.dataset.chunks));
  // IndexedDB is written in batches of 8 MiB: at most that much is lost.
  // (Chunks verified between reading `before` and the reload taking effect
  // are stored too, more of them on a loaded machine; that every stored
  // chunk really is verified is checked by the resume below.)
  assert.ok(onDisk >= before - (8 << 20) / CHUNK - 2 && onDisk <= BIG / CHUNK && onDisk > 0, `${onDisk} chunks on disk, ${before} verified before the reload`);
  await setPace(page, 0);
  await page.click(`button[data-resume="${name}"]`);
  await waitLong(page, 'state', 'v === "done"');
  const resumed = Number(await data(page, 'resumed'));
  assert.equal(resumed, onDisk, 'every recorded chunk was found verified');
  const received = Number(await data(page, 'received'));
  assert.equal(received, BIG - resumed * CHUNK, 'only the chunks not stored were fetched');
  assert.equal(await page.textContent(inCard('.sha256')), bigSha[name]);
  assert.equal(await savedSha(page), bigSha[name]);
  await page.close();
});

test('a failure that is not storage is not called storage', async () => {
  // No WebCrypto here, and the WebAssembly SHA-256 blocked (as a strict
  // Content-Security-Policy or a filtering proxy would): the download cannot
  // verify anything. That is this browser's limit, not its storage.
  const { page } = await openPage();
  await page.route('**/vendor/**', (r) => r.abort());
  await page.click('button[data-file="one-chunk.bin"]');
  await page.waitForSelector(`${inCard('.dl-alert')}:not([hidden])`);
  const alert = await page.textContent(inCard('.dl-alert-text'));
  assert.doesNotMatch(alert, /storage/i);
  assert.match(alert, /cannot download here.*SHA-256.*HTTPS/s);
  assert.equal(await data(page, 'state'), 'error');
  // With the fallback reachable again, "Try again" downloads and verifies.
  await page.unroute('**/vendor/**');
  await page.click(inCard('.dl-alert-action'));
  await waitLong(page, 'state', 'v === "done"');
  assert.equal(await page.textContent(inCard('.sha256')), sha256hex(readFileSync(path.join(FIXTURES, 'one-chunk.bin'))));
  await page.close();
});

test('chunks are hashed in a worker; if the worker cannot start, the page hashes them itself', async () => {
  const { page, problems } = await openPage();
  let blocked = 0;
  await page.route('**/workers/hash.js', (r) => { blocked++; return r.abort(); });
  await page.evaluate(async () => (await import('/chunkcast.js')).clearStored('lan.bin')); // an earlier test stored it
  await page.click('button[data-file="lan.bin"]');
  await waitLong(page, 'state', 'v === "done"');
  assert.ok(blocked >= 1, 'the page tried to start the hashing worker');
  assert.equal(await page.textContent(inCard('.sha256')), bigSha['lan.bin']);
  assert.equal(await savedSha(page), bigSha['lan.bin']);
  assert.deepEqual(problems.filter((p) => !/workers\/hash\.js|Failed to load/i.test(p)), []);
  await page.close();
});
