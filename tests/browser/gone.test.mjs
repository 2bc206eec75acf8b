// A file deleted mid-download is "gone" (its manifest answers 404), told
// apart from a file that changed (a new version): the card says which, once,
// with the name as the server spells it, and the chunk map no longer shows
// the received chunks as verified.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openPage, setPace, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');
const SIZE = 4 << 20;

let srv;
let root;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  root = makeRoot({ 'going.bin': pseudoRandom(SIZE, 7), 'changing.bin': pseudoRandom(SIZE, 8), 'going.txt': 'gone soon. '.repeat(200000) });
  srv = await startServer({ root, chunkSize: '16K', args: ['--retry-ms', '200'] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Every text the card's state line and alert showed, in order (recorded in the page). */
const watchTexts = (page) => page.evaluate(() => {
  /** @type {any} */ (window).shown = [];
  const last = new Map();
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.download .dl-state, .download .dl-alert-text, #status')) {
      const t = el.textContent ?? '';
      if (t.trim() && last.get(el) !== t) { last.set(el, t); /** @type {any} */ (window).shown.push(t); }
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
});

for (const name of ['going.bin', 'going.txt']) {
  test(`a file deleted mid-download (${name}) is gone, not changed`, async () => {
    const { page, problems } = await openPage(browser.context, srv.url);
    await watchTexts(page);
    await setPace(page, 256 << 10);
    await page.click(`button[data-file="${name}"]`);
    await waitData(page, 'verified', 'Number(v) >= 10', 30000, name).catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify(await page.$eval('.download', (el) => ({ ...el.dataset })))} ${await page.textContent('.download')}`);
    });
    unlinkSync(path.join(root, name));
    await waitData(page, 'state', 'v === "gone"', 30000, name).catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify(await page.evaluate(() => /** @type {any} */ (window).shown))}`);
    });
    await page.screenshot({ path: path.join(OUT, `gone-${name}.png`), fullPage: true });
    const alert = await page.textContent(inCard('.dl-alert-text', name));
    assert.match(alert, new RegExp(`“${name.replace('.', '\\.')}” is no longer on the server`));
    assert.equal(await page.textContent(inCard('.dl-alert-action', name)), 'Refresh the file list');
    const shown = /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).shown));
    assert.ok(!shown.some((t) => /changed/i.test(t)), `never called changed: ${JSON.stringify(shown)}`);
    // Said once, with the name as it is spelled (never capitalised).
    const all = shown.join('\n');
    assert.equal(all.split('no longer on the server').length - 1, 1, all);
    assert.ok(!all.includes(name[0].toUpperCase() + name.slice(1)), all);
    // The map no longer shows chunks of a file that is gone as verified.
    const counts = await page.$eval(inCard('.counts', name), (el) => ({ ...el.dataset }));
    assert.equal(counts.verified, '0');
    assert.match(await page.textContent(inCard('.counts', name)), /^0 of \d+ chunks verified/);
    // Nothing is kept for a file that no longer exists, and no button is left that cannot work.
    assert.equal(await page.evaluate(async (n) => (await import('/chunkcast.js')).findStored(n), name), null);
    for (const b of ['.pause', '.resume']) assert.equal(await page.isDisabled(inCard(b, name)), true, `${b} is disabled`);
    if (name.endsWith('.txt')) {
      const text = await page.textContent(inCard('.text', name));
      assert.ok(!text.includes('gone soon. gone soon.'.repeat(20000 / 11)), 'the text is not shown several times');
    }
    assert.deepEqual(problems.filter((p) => !/404|Failed to load/.test(p)), []);
    await page.close();
  });
}

test('a file rewritten mid-download is changed, not gone: the row says nothing could be kept, and the new version downloads', async () => {
  const name = 'changing.bin';
  const { page } = await openPage(browser.context, srv.url);
  await watchTexts(page);
  await setPace(page, 256 << 10);
  await page.click(`button[data-file="${name}"]`);
  await waitData(page, 'verified', 'Number(v) >= 10', 30000, name);
  const fresh = pseudoRandom(SIZE / 2, 9);
  writeFileSync(path.join(root, name), fresh);
  await page.waitForSelector(`${inCard('.dl-note', name)}:not([hidden])`, { timeout: 30000 });
  await page.screenshot({ path: path.join(OUT, 'changed.png'), fullPage: true });
  assert.equal(await page.textContent(inCard('.dl-note', name)), 'The file changed on the server: nothing received could be kept, downloading the new version.');
  await waitData(page, 'state', 'v === "done"', 60000, name);
  assert.equal(await data(page, 'chunks', name), String(fresh.length / (16 << 10)));
  assert.equal(await data(page, 'resumed', name), '0');
  assert.equal(await page.isHidden(inCard('.dl-alert', name)), true, 'a change is no failure');
  const shown = /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).shown));
  assert.ok(!shown.some((t) => /no longer on the server|gone/i.test(t)), JSON.stringify(shown));
  await page.close();
});
