// A file that grows on the server, in the page (issue 23, item 5): a
// download in progress keeps every chunk it verified that the new version
// repeats, says how many in its row, fetches only the rest, and saves the new
// file; a download resumed after a reload does the same with the chunks
// stored of the older version. Real server, real Chromium, OPFS storage.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openDetails, openPage, setPace, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');
const CHUNK = 16 << 10;
const SIZE = 4 << 20; // 256 chunks
const TAIL = (100 << 10) + 7; // 7 more chunks
const TOTAL = Math.ceil((SIZE + TAIL) / CHUNK);

let srv;
let root;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  root = makeRoot();
  srv = await startServer({ root, chunkSize: '16K', args: ['--retry-ms', '200'] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The SHA-256 of the file a browser download wrote. @param {import('playwright-core').Download} download */
const hashOf = async (download) => createHash('sha256').update(readFileSync(await download.path())).digest('hex');

test('a download in progress whose file grows on the server keeps its verified chunks, says how many, and saves the new file', async () => {
  const name = 'grow.bin';
  const v1 = pseudoRandom(SIZE, 51);
  writeFileSync(path.join(root, name), v1);
  const { page, problems } = await openPage(browser.context, `${srv.url}?store=opfs`);
  await setPace(page, 256 << 10);
  await page.click(`button[data-file="${name}"]`);
  await waitData(page, 'verified', 'Number(v) >= 40', 30000, name);
  const before = Number(await data(page, 'verified', name));
  const tail = pseudoRandom(TAIL, 52);
  appendFileSync(path.join(root, name), tail);
  const v2 = Buffer.concat([v1, tail]);
  await page.waitForSelector(`${inCard('.dl-note', name)}:not([hidden])`, { timeout: 30000 });
  const note = await page.textContent(inCard('.dl-note', name));
  const said = /^The file changed on the server: kept (\d+) of (\d+) chunks, fetching the rest\.$/.exec(note ?? '');
  assert.ok(said, note ?? '');
  const kept = Number(said[1]);
  assert.equal(Number(said[2]), TOTAL);
  assert.ok(kept >= before && kept < SIZE / CHUNK, `kept ${kept}, ${before} were verified when the file grew`);
  await page.screenshot({ path: path.join(OUT, 'delta-changed.png'), fullPage: true });
  // The rest as fast as it goes, from the row's own bandwidth menu; the
  // verified file is handed to the browser's download by itself.
  await openDetails(page, name);
  const saved = page.waitForEvent('download', { timeout: 60000 });
  await page.selectOption(inCard('select.rate', name), '0');
  assert.equal(await hashOf(await saved), sha256hex(v2));
  await waitData(page, 'state', 'v === "done"', 30000, name);
  assert.equal(await page.textContent(inCard('.sha256', name)), sha256hex(v2));
  assert.equal(await page.textContent(inCard('.dl-note', name)), `The file changed on the server: kept ${kept} of ${TOTAL} chunks, fetched the rest.`);
  assert.equal(await data(page, 'resumed', name), String(kept), 'the kept chunks were not fetched again');
  assert.equal(await data(page, 'chunks', name), String(TOTAL));
  // Only what was not kept crossed the network after the change (and what was in flight before it).
  const received = Number(await data(page, 'received', name));
  assert.ok(received <= v2.length - kept * CHUNK + 16 * CHUNK + before * CHUNK, `received ${received}`);
  await page.screenshot({ path: path.join(OUT, 'delta-done.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('a download resumed after a reload, whose stored chunks are of an older version, keeps those the new version repeats', async () => {
  const name = 'log.bin';
  const v1 = pseudoRandom(SIZE, 61);
  writeFileSync(path.join(root, name), v1);
  const { page } = await openPage(browser.context, `${srv.url}?store=opfs`);
  await setPace(page, 512 << 10);
  await page.click(`button[data-file="${name}"]`);
  await waitData(page, 'verified', 'Number(v) >= 60', 30000, name);
  // Verified chunks reach the disk and its record within a second.
  await page.waitForTimeout(1500);
  await page.reload();
  await page.waitForSelector(`#resume-text li[data-name="${name}"]`);
  const onDisk = Number(await page.$eval(`#resume-text li[data-name="${name}"]`, (el) => /** @type {HTMLElement} */ (el).dataset.chunks));
  assert.ok(onDisk >= 60, `${onDisk} chunks on disk`);
  const tail = pseudoRandom(TAIL, 62);
  appendFileSync(path.join(root, name), tail);
  await setPace(page, 0);
  const saved = page.waitForEvent('download', { timeout: 60000 });
  await page.click(`button[data-resume="${name}"]`);
  assert.equal(await hashOf(await saved), sha256hex(Buffer.concat([v1, tail])));
  await waitData(page, 'state', 'v === "done"', 30000, name);
  const note = await page.textContent(inCard('.dl-note', name));
  const said = /^The copy stored here was of an older version: kept (\d+) of (\d+) chunks, fetched the rest\.$/.exec(note ?? '');
  assert.ok(said, note ?? '');
  assert.equal(Number(said[1]), onDisk, 'every stored chunk is repeated by the grown file');
  assert.equal(Number(said[2]), TOTAL);
  assert.equal(await data(page, 'resumed', name), String(onDisk));
  await page.close();
});
