// Save without a second copy: where the browser has showSaveFilePicker, a
// download can be written straight into the file the person picks, as
// verified chunks arrive, and resumed into the same file after a reload.
// Headless Chromium's picker cannot be clicked, so the page's picker answers
// with a file handle from the origin's private file system
// (navigator.storage.getDirectory()): the page's own code path, store and
// writes are the real ones.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openFileMenu, openPage, setPace, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');
const SIZE = 40 << 20;
const CHUNK = 256 << 10;

let srv;
let root;
let browser;
let sha;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  const big = pseudoRandom(SIZE, 21);
  sha = sha256hex(big);
  root = makeRoot({ 'picked.bin': big });
  srv = await startServer({ root, chunkSize: '256K' });
  browser = await launch();
  // Every page of this browser: the picker answers with an OPFS file.
  await browser.context.addInitScript(() => {
    /** @type {any} */ (window).showSaveFilePicker = async (/** @type {{suggestedName: string}} */ o) =>
      (await navigator.storage.getDirectory()).getFileHandle(`saved-${o.suggestedName}`, { create: true });
  });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The SHA-256 of the picked file, read in the page. @param {import('playwright-core').Page} page */
const pickedSha = (page) => page.evaluate(async () => {
  const file = await (await (await navigator.storage.getDirectory()).getFileHandle('saved-picked.bin')).getFile();
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return { size: file.size, sha: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') };
});

test('a download written into a picked file survives a reload and ends as that file, with no second copy', async () => {
  const { page, problems } = await openPage(browser.context, srv.url);
  await setPace(page, 4 << 20);
  await openFileMenu(page, 'picked.bin'); // Save to… is in the file's menu (changed: it was a button in the row)
  await page.click('button[data-save-to="picked.bin"]');
  await page.waitForSelector('.download[data-name="picked.bin"]');
  assert.match(await page.textContent(inCard('.dl-target')), /Writing into “saved-picked\.bin” as verified chunks arrive/);
  // Wait for chunks committed to the file and recorded (at most every 3 s).
  const written = () => page.evaluate(async () => (await (await import('/lib/store/file-handle.js')).findHandle('picked.bin'))?.written.length ?? 0);
  for (let t = Date.now(); (await written()) <= 8; await page.waitForTimeout(100)) {
    assert.ok(Date.now() - t < 30000, 'chunks are committed to the picked file within 30 s');
  }
  const recorded = await written();
  assert.ok(Number(await data(page, 'percent', 'picked.bin')) < 100, 'reloaded mid-download');
  assert.equal(await page.evaluate(async () => (await import('/chunkcast.js')).findStored('picked.bin')), null, 'no copy in the browser storage');
  await page.reload();
  await page.waitForSelector('#resume-text li[data-name="picked.bin"]');
  assert.match(await page.textContent('#resume-text li[data-name="picked.bin"]'), /written into “saved-picked\.bin”/);
  await page.screenshot({ path: path.join(OUT, 'save-to-reload-offer.png'), fullPage: true });
  await setPace(page, 0);
  await page.click('button[data-resume="picked.bin"]');
  await waitData(page, 'state', 'v === "done"', 120000, 'picked.bin');
  const resumed = Number(await data(page, 'resumed', 'picked.bin'));
  assert.ok(resumed >= recorded, `${resumed} chunks found in the file, ${recorded} recorded before the reload`);
  assert.ok(Number(await data(page, 'received', 'picked.bin')) <= SIZE - resumed * CHUNK, 'what was in the file was not fetched again');
  assert.deepEqual(await pickedSha(page), { size: SIZE, sha });
  assert.equal(await page.textContent(inCard('.sha256')), sha);
  assert.match(await page.textContent(inCard('.dl-state')), /saved in “saved-picked\.bin”/);
  // Already saved: no Save button, nothing kept to release.
  assert.equal(await page.isVisible(inCard('.save')), false);
  assert.equal(await page.evaluate(async () => (await (await import('/lib/store/file-handle.js')).findHandle('picked.bin')) ?? null), null);
  await page.screenshot({ path: path.join(OUT, 'save-to-done.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});
