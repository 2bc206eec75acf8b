// Several downloads at once: each file gets its own card (progress, pause,
// resume, cancel, save); two at once both finish verified and save their
// exact bytes; a reload offers to resume every unfinished one found in
// storage, and resuming them all finishes both from what was on disk.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openDetails, openPage, saveAndHash, setPace, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');
const SIZE = 40 << 20; // above the 32 MiB kept in memory: stored in OPFS, so a reload finds it
const CHUNK = 256 << 10;
const NAMES = ['first.bin', 'second.bin', 'third.bin', 'fourth.bin', 'fifth.bin', 'sixth.bin', 'seventh.bin'];

let srv;
let root;
let browser;
/** @type {Record<string, string>} */
const sha = {};

before(async () => {
  mkdirSync(OUT, { recursive: true });
  const files = {};
  NAMES.forEach((n, k) => { files[n] = pseudoRandom(SIZE, 100 + k); sha[n] = sha256hex(files[n]); });
  root = makeRoot(files);
  srv = await startServer({ root, chunkSize: '256K' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('two downloads at once each keep their own progress and controls, and both finish verified', async () => {
  const { page, problems } = await openPage(browser.context, srv.url);
  await setPace(page, 4 << 20); // 4 MiB/s each: both are under way together for seconds
  await page.click('button[data-file="first.bin"]');
  await waitData(page, 'verified', 'Number(v) >= 2', 30000, 'first.bin');
  await page.click('button[data-file="second.bin"]');
  await waitData(page, 'verified', 'Number(v) >= 2', 30000, 'second.bin');
  // Both run: the first was not abandoned when the second started.
  assert.equal(await page.locator('.download').count(), 2);
  assert.equal(await page.getAttribute('.download >> nth=0', 'data-name'), 'second.bin', 'newest first');
  const firstBefore = Number(await data(page, 'verified', 'first.bin'));
  await waitData(page, 'verified', `Number(v) > ${firstBefore}`, 30000, 'first.bin');

  // Pausing one leaves the other running (and its bar keeps its width as Pause becomes Resume).
  const barWidth = () => page.$eval(inCard('.bar', 'first.bin'), (e) => e.getBoundingClientRect().width);
  const running = await barWidth();
  await page.click(inCard('.pause', 'first.bin'));
  await waitData(page, 'state', 'v === "paused"', 10000, 'first.bin');
  assert.equal(await barWidth(), running, 'the bar keeps its width');
  // A chunk already received when Pause was pressed is still verified and
  // kept (nothing received is thrown away): count once that has settled.
  let paused = Number(await data(page, 'verified', 'first.bin'));
  for (let settled = false; !settled;) {
    await new Promise((r) => setTimeout(r, 300));
    const now = Number(await data(page, 'verified', 'first.bin'));
    settled = now === paused;
    paused = now;
  }
  const second = Number(await data(page, 'verified', 'second.bin'));
  await waitData(page, 'verified', `Number(v) > ${second + 4}`, 30000, 'second.bin');
  assert.equal(Number(await data(page, 'verified', 'first.bin')), paused, 'the paused download stays paused');
  await page.screenshot({ path: path.join(OUT, 'downloads-two-at-once.png'), fullPage: true });
  await page.click(inCard('.resume', 'first.bin'));

  for (const name of ['first.bin', 'second.bin']) {
    await waitData(page, 'state', 'v === "done"', 120000, name);
    assert.equal(await data(page, 'verified', name), String(SIZE / CHUNK));
    assert.equal(await page.textContent(inCard('.sha256', name)), sha[name]);
    const saved = await saveAndHash(page, name);
    assert.deepEqual(saved, { sha: sha[name], name });
  }
  // Each row says its own state: a finished one is its size, verified (changed
  // with the compact rows); the chunk counts are in its details; never a raw float.
  for (const name of ['first.bin', 'second.bin']) {
    const stats = await page.textContent(inCard('.dl-stats', name));
    assert.match(stats, /^40\.0 MiB · verified$/);
    const more = await page.textContent(inCard('.counts', name));
    assert.match(more, /^160 of 160 chunks verified$/);
    assert.doesNotMatch(stats + more, /\d\.\d{3,}/);
  }
  // A finished row's details offer what is left to do: no cancel, no bandwidth.
  await openDetails(page, 'first.bin');
  assert.equal(await page.isVisible(inCard('.counts', 'first.bin')), true);
  for (const b of ['.cancel', '.rate-line']) assert.equal(await page.isVisible(inCard(b, 'first.bin')), false, `${b} is shown`);
  await page.screenshot({ path: path.join(OUT, 'downloads-both-done.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('a reload offers to resume every unfinished download, and both finish from disk', async () => {
  const { page, problems } = await openPage(browser.context, srv.url);
  await setPace(page, 4 << 20);
  await page.click('button[data-file="third.bin"]');
  await page.click('button[data-file="fourth.bin"]');
  await waitData(page, 'percent', 'Number(v) >= 25', 60000, 'third.bin');
  await waitData(page, 'percent', 'Number(v) >= 25', 60000, 'fourth.bin');
  // Verified chunks reach the disk's record within a second (see page.test.mjs).
  await page.waitForTimeout(1500);
  await page.reload();
  await page.waitForSelector('#resume-offer:not([hidden])');
  const offered = await page.$$eval('#resume-text li', (lis) => lis.map((li) => [li.dataset.name, Number(li.dataset.chunks)]));
  const names = offered.map(([n]) => n);
  assert.ok(names.includes('third.bin') && names.includes('fourth.bin'), `offered: ${names}`);
  for (const [n, chunks] of offered) if (n === 'third.bin' || n === 'fourth.bin') assert.ok(chunks > 0 && chunks < SIZE / CHUNK, `${n}: ${chunks}`);
  assert.match(await page.textContent('#resume-offer-yes'), /Resume all/);
  await page.screenshot({ path: path.join(OUT, 'downloads-reload-offers-both.png'), fullPage: true });
  await setPace(page, 0);
  await page.click('#resume-offer-yes');
  assert.equal(await page.isHidden('#resume-offer'), true);
  for (const name of ['third.bin', 'fourth.bin']) {
    await waitData(page, 'state', 'v === "done"', 120000, name);
    const onDisk = offered.find(([n]) => n === name)[1];
    const resumed = Number(await data(page, 'resumed', name));
    assert.ok(resumed >= onDisk * 0.9, `${name}: ${resumed} chunks resumed of ${onDisk} on disk`);
    assert.ok(Number(await data(page, 'received', name)) <= SIZE - resumed * CHUNK + (8 << 20), `${name}: only what was missing was fetched`);
    assert.equal(await page.textContent(inCard('.sha256', name)), sha[name]);
  }
  // The page says what it keeps in storage and the quota.
  assert.match(await page.textContent('#storage'), /uses .* of this browser's storage \(it may use up to/);
  assert.deepEqual(problems, []);
  await page.close();
});

test('cancel removes the partial copy, and leaves no button that cannot work', async () => {
  const { page } = await openPage(browser.context, srv.url);
  await setPace(page, 2 << 20);
  await page.click('button[data-file="fifth.bin"]');
  await waitData(page, 'verified', 'Number(v) >= 2', 30000, 'fifth.bin');
  await openDetails(page, 'fifth.bin'); // Cancel is in the row's details (and its ✕)
  await page.click(inCard('.cancel', 'fifth.bin'));
  await waitData(page, 'state', 'v === "cancelled"', 10000, 'fifth.bin');
  assert.match(await page.textContent(inCard('.dl-state', 'fifth.bin')), /Cancelled/);
  for (const b of ['.pause', '.resume', '.cancel']) assert.equal(await page.isDisabled(inCard(b, 'fifth.bin')), true, `${b} is disabled`);
  for (const b of ['.cancel', '.rate-line']) assert.equal(await page.isVisible(inCard(b, 'fifth.bin')), false, `${b} is shown`);
  // The removed copy's figures and chunk map go with it: no "12% · 5 MiB of 40 MiB" under "Cancelled".
  for (const b of ['.dl-stats', '.map-canvas', '.counts']) assert.equal(await page.isVisible(inCard(b, 'fifth.bin')), false, `${b} is shown`);
  assert.equal(await page.isVisible(inCard('.save', 'fifth.bin')), false, 'no Save without a file');
  const stored = await page.evaluate(async () => (await import('/chunkcast.js')).findStored('fifth.bin'));
  assert.equal(stored, null, 'nothing left in storage');
  await page.click(inCard('.forget', 'fifth.bin'));
  assert.equal(await page.locator('.download').count(), 0);
  await page.close();
});

test('a copy saved just before a reload is released then, never offered as "not saved yet"', async () => {
  const page = await browser.context.newPage();
  await page.goto(srv.url);
  await page.waitForSelector('button[data-file]');
  await setPace(page, 0);
  await page.click('button[data-file="seventh.bin"]');
  await waitData(page, 'state', 'v === "done"', 60000, 'seventh.bin');
  assert.equal((await saveAndHash(page, 'seventh.bin')).sha, sha['seventh.bin']);
  assert.match(await page.textContent(inCard('.dl-state', 'seventh.bin')), /released in 60 s/);
  await page.reload(); // long before the 60 s are up: the release timer dies with the page
  await page.waitForSelector('button[data-file]');
  await page.waitForFunction(async () => (await import('/chunkcast.js')).findStored('seventh.bin').then((s) => s === null), null, { timeout: 10000, polling: 100 });
  assert.equal(await page.locator('#resume-text li[data-name="seventh.bin"]').count(), 0, 'not offered for saving again');
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('chunkcast.downloads') || '{}')['seventh.bin']), undefined);
  await page.close();
});

test('a saved copy is released from storage after the stated time, and Save goes with it', async () => {
  const page = await browser.context.newPage();
  await page.clock.install(); // time flows as usual; fastForward skips the wait
  await page.goto(srv.url);
  await page.waitForSelector('button[data-file]');
  await setPace(page, 0);
  await page.click('button[data-file="sixth.bin"]');
  await waitData(page, 'state', 'v === "done"', 60000, 'sixth.bin');
  assert.ok(await page.evaluate(async () => (await import('/chunkcast.js')).findStored('sixth.bin')), 'stored until saved');
  assert.equal((await saveAndHash(page, 'sixth.bin')).sha, sha['sixth.bin']);
  assert.match(await page.textContent(inCard('.dl-state', 'sixth.bin')), /released in 60 s/);
  await page.clock.fastForward(61_000);
  await page.waitForFunction(() => /was released/.test(document.querySelector('.download .dl-state')?.textContent ?? ''), null, { timeout: 10000 });
  assert.equal(await page.evaluate(async () => (await import('/chunkcast.js')).findStored('sixth.bin')), null);
  assert.equal(await page.isVisible(inCard('.save', 'sixth.bin')), false, 'Save is gone with the copy');
  assert.equal(await page.textContent(inCard('.forget', 'sixth.bin')), 'Remove from the list');
  await page.close();
});
