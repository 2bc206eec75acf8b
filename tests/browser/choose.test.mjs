// "A page people would choose": one click to disk, compact rows, the folder
// in the URL, a chunk map right at every size, a reader's pace per download,
// HTTP/1.1's connection budget kept by a queue, and a page for an address
// that fails.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openDetails, openPage, setPace, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');
const SIZE = 3 << 20;
const NAMES = ['a.bin', 'b.bin', 'c.bin', 'd.bin', 'e.bin', 'f.bin', 'g.bin'];

/** The contents of NAMES, by name. @type {Record<string, Buffer>} */
const files = {};
/** The server, its root and the browser every test here shares. @type {{srv?: any, root?: string, browser?: any}} */
const env = {};

before(async () => {
  NAMES.forEach((n, k) => { files[n] = pseudoRandom(SIZE, 300 + k); });
  mkdirSync(OUT, { recursive: true });
  const root = makeRoot({
    ...files,
    'notes.txt': 'Line of notes, read as it arrives.\n'.repeat(3000),
    'poem.txt': 'Roses are red, violets are blue.\n'.repeat(3000),
  });
  mkdirSync(path.join(root, 'docs/inner'), { recursive: true });
  writeFileSync(path.join(root, 'docs/inner/deep.bin'), pseudoRandom(5000, 9));
  writeFileSync(path.join(root, 'docs/readme.txt'), 'read me\n');
  env.root = root;
  env.srv = await startServer({ root, chunkSize: '64K' });
  env.browser = await launch({ viewport: { width: 1366, height: 800 } });
});

after(() => Promise.all([env.browser?.close(), env.srv?.stop()]).then(() => env.root && rmSync(env.root, { recursive: true, force: true })));

/**
 * Runs `body` on a new page of the server, then checks the page reported no
 * error and closes it.
 * @param {(page: import('playwright-core').Page) => Promise<void>} body
 */
async function onPage(body) {
  const { page, problems } = await openPage(env.browser.context, env.srv.url);
  await body(page);
  assert.deepEqual(problems, []);
  await page.close();
}

test('one click on Download ends with the verified file in the browser\'s downloads', async () => {
  await onPage(async (page) => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button[data-file="a.bin"]')]);
    assert.equal(download.suggestedFilename(), 'a.bin');
    assert.equal(sha256hex(readFileSync(await download.path())), sha256hex(files['a.bin']));
    assert.equal(await data(page, 'state', 'a.bin'), 'done');
    assert.equal(await page.getAttribute('button[data-file="a.bin"]', 'aria-label'), 'Download a.bin');
    // Saved again from its row while its copy is kept.
    const [again] = await Promise.all([page.waitForEvent('download'), page.click(inCard('.save', 'a.bin'))]);
    assert.equal(await page.textContent(inCard('.save', 'a.bin')), 'Save again');
    assert.equal(sha256hex(readFileSync(await again.path())), sha256hex(files['a.bin']));
    // The chunk map of a finished download is wholly verified, to the pixel.
    await openDetails(page, 'a.bin');
    const counts = await page.$eval(inCard('.counts', 'a.bin'), (el) => ({ ...el.dataset }));
    assert.equal(counts.verified, String(SIZE / (64 << 10)));
    assert.equal(counts.missing, '0');
    assert.equal(counts.filledPx, counts.lengthPx);
  });
});

test('five finished downloads and the file list fit in about two screen heights at 1366×800', async () => {
  await onPage(async (page) => {
    for (const n of NAMES.slice(0, 5)) await page.click(`button[data-file="${n}"]`);
    for (const n of NAMES.slice(0, 5)) await waitData(page, 'state', 'v === "done"', 60000, n);
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    console.log(`# page height with five finished downloads at 1366×800: ${height} px`);
    assert.ok(height <= 2 * 800, `${height} px`);
    const rows = await page.$$eval('.download', (els) => els.map((el) => Math.round(el.getBoundingClientRect().height)));
    for (const h of rows) assert.ok(h <= 64, `a finished row is one line: ${h} px`);
    await page.screenshot({ path: path.join(OUT, 'five-finished.png'), fullPage: true });
  });
});

test('the folder and the opened file live in the URL: Back, Forward and reload keep them', async () => {
  await onPage(async (page) => {
    await page.click('a[data-dir="docs"]');
    await page.waitForSelector('a[data-dir="docs/inner"]');
    assert.match(page.url(), /\?dir=docs$/);
    await page.click('a[data-dir="docs/inner"]');
    await page.waitForSelector('button[data-file="docs/inner/deep.bin"]');
    assert.match(page.url(), /\?dir=docs\/inner$/);
    await page.reload();
    await page.waitForSelector('button[data-file="docs/inner/deep.bin"]');
    assert.match(await page.textContent('#crumbs'), /All files \/ docs \/ inner/);
    await page.goBack();
    await page.waitForSelector('a[data-dir="docs/inner"]');
    assert.equal(await page.$('button[data-file="a.bin"]'), null, 'still in docs');
    await page.goBack();
    await page.waitForSelector('button[data-file="a.bin"]');
    await page.goForward();
    await page.waitForSelector('a[data-dir="docs/inner"]');
    // A folder's control is named after it; names are links.
    assert.equal(await page.textContent('a[data-dir="docs/inner"]'), 'inner/');
    // A shared address of a text opens it to read; a missing file says so.
    await page.goto(`${env.srv.url}?file=docs/readme.txt`);
    await page.waitForSelector(`${inCard('.text-view', 'docs/readme.txt')}:not([hidden])`);
    await page.waitForFunction(() => document.querySelector('.download .text')?.textContent === 'read me\n');
    assert.equal(await page.getAttribute('#files tr[aria-current="true"]', 'data-name'), 'docs/readme.txt');
    await page.goto(`${env.srv.url}?file=nowhere.bin`);
    await page.waitForSelector('#alert:not([hidden])');
    assert.match(await page.textContent('#alert-text'), /no file “nowhere\.bin” on the server/);
  });
});

test('an address that fails, opened in the browser, is a styled page that says so and leads back to the list; so is a missing folder', async () => {
  const page = await env.browser.context.newPage();
  try {
    const res = await page.goto(`${env.srv.url}files/docs/gone 🌊.bin`);
    assert.equal(res?.status(), 404);
    assert.equal(await page.textContent('h2'), 'Nothing here');
    assert.match(await page.textContent('main p'), /There is no file or page at \/files\/docs\/gone 🌊\.bin on this server\./);
    // The page's own style sheet applies (a card, not bare text).
    assert.notEqual(await page.$eval('section', (el) => getComputedStyle(el).borderTopStyle), 'none');
    await page.click('text=Open the file list');
    await page.waitForSelector('button[data-file="a.bin"]');
    assert.equal(new URL(page.url()).pathname, '/');
    // A folder opened as a file (/files/docs/) is opened in the file list.
    await page.goto(`${env.srv.url}files/docs/`);
    assert.equal(await page.textContent('h2'), 'This is a folder');
    await page.click('text=Open it in the file list');
    await page.waitForSelector('#files[data-dir="docs"] button[data-file="docs/readme.txt"]');
    // A folder that is not there says so in the list, with ways back up
    // (the breadcrumbs and a link; no "Try again", which could not help).
    await page.goto(`${env.srv.url}?dir=nowhere`);
    await page.waitForSelector('#files[data-dir="nowhere"]');
    assert.match(await page.textContent('#files tbody'), /There is no folder “nowhere” on the server\. Open all files/);
    assert.equal(await page.isVisible('#alert'), false);
    assert.equal(await page.textContent('a[data-crumb=""]'), 'All files');
    await page.click('text=Open all files');
    await page.waitForSelector('button[data-file="a.bin"]');
    assert.equal(new URL(page.url()).search, '');
  } finally {
    await page.close();
  }
});

test('the columns stay put from folder to folder and when the filter matches nothing', async () => {
  await onPage(async (page) => {
    const columns = () => page.$$eval('#files thead th', (ths) => ths.map((t) => Math.round(t.getBoundingClientRect().left)));
    const top = await columns();
    await page.fill('input[type=search]', 'no such name');
    await page.waitForFunction(() => /No name in this folder/.test(document.querySelector('#files tbody')?.textContent ?? ''));
    assert.deepEqual(await columns(), top, 'the filter matches nothing');
    await page.fill('input[type=search]', '');
    await page.click('a[data-dir="docs"]');
    await page.waitForSelector('#files[data-dir="docs"] button[data-file="docs/readme.txt"]');
    assert.deepEqual(await columns(), top, 'in a folder with other names');
  });
});

test('each download has its own reading pace in characters per second and its own bandwidth, never carried over', async () => {
  await onPage(async (page) => {
    await page.click('a[data-open="notes.txt"]');
    await page.click('a[data-open="poem.txt"]');
    await page.waitForSelector(`${inCard('.text-view', 'poem.txt')}:not([hidden])`);
    await page.click(inCard('.chip[data-pace="20"]', 'notes.txt'));
    assert.equal(await page.getAttribute(inCard('.text', 'notes.txt'), 'data-pace'), '20');
    assert.equal(await page.getAttribute(inCard('.text', 'poem.txt'), 'data-pace'), '60');
    assert.equal(await page.getAttribute(inCard('.chip[data-pace="20"]', 'notes.txt'), 'aria-label'), '20 characters per second');
    // The bytes are done long before the typing: the text keeps being typed.
    await waitData(page, 'state', 'v === "done"', 30000, 'notes.txt');
    const n = (await page.textContent(inCard('.text', 'notes.txt'))).length;
    assert.ok(n < 105000, `${n} characters typed so far`);
    await page.waitForFunction((k) => document.querySelector('.download[data-name="notes.txt"] .text').textContent.length > k, n);
    // A bandwidth limit chosen on one download stays on it; one kept for new
    // downloads is kept only while "also for new downloads" is ticked.
    await setPace(page, 64 << 10);
    await page.click('button[data-file="b.bin"]');
    await openDetails(page, 'b.bin');
    assert.equal(await page.$eval(inCard('select.rate', 'b.bin'), (s) => s.value), String(64 << 10));
    await page.uncheck(inCard('input.keep-rate', 'b.bin'));
    await page.selectOption(inCard('select.rate', 'b.bin'), '1024');
    await page.click('button[data-file="c.bin"]');
    await openDetails(page, 'c.bin');
    assert.equal(await page.$eval(inCard('select.rate', 'c.bin'), (s) => s.value), '0');
    assert.equal(await page.evaluate(() => localStorage.getItem('chunkcast.rate')), null);
  });
});

test('the chunk map fills exactly the verified share at 1 to 100,000 chunks', async () => {
  const { page } = await openPage(env.browser.context, env.srv.url);
  const results = await page.evaluate(async () => {
    const { ChunkMap, layout } = await import('/page/chunk-map.js');
    const out = [];
    for (const n of [1, 2, 7, 64, 100, 1200, 5000, 100000]) {
      for (const share of [0, 0.05, 0.5, 1]) {
        const canvas = document.createElement('canvas');
        canvas.width = 640;
        document.body.append(canvas);
        const map = new ChunkMap(canvas, document.createElement('p'));
        map.reset(n);
        const k = Math.round(n * share);
        for (let i = 0; i < k; i++) map.set(i, 'verified');
        map.draw();
        // Count the verified colour's pixels along the strip's rows (middle line of each row).
        const ctx = canvas.getContext('2d');
        const { rows, length } = layout(n, 640);
        const want = getComputedStyle(canvas).getPropertyValue('--verified').trim();
        ctx.fillStyle = want;
        ctx.fillRect(0, 0, 0, 0);
        const probe = document.createElement('canvas').getContext('2d');
        probe.fillStyle = want; probe.fillRect(0, 0, 1, 1);
        const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
        let px = 0;
        for (let row = 0; row < rows; row++) {
          const y = row * 17 + 7;
          const line = ctx.getImageData(0, y, 640, 1).data;
          for (let x = 0; x < 640; x++) if (line[4 * x] === r && line[4 * x + 1] === g && line[4 * x + 2] === b) px++;
        }
        const gaps = length / n >= 6 ? k : 0; // a 1 px gap after each cell wide enough to have one
        out.push({ n, k, px: px + gaps, want: Math.floor((k * length) / n), full: k === n, length });
        canvas.remove();
      }
    }
    return out;
  });
  for (const r of results) {
    assert.equal(r.px, r.want, `${r.n} chunks, ${r.k} verified: ${r.px} px filled of ${r.length}, want ${r.want}`);
    if (r.full) assert.equal(r.px, r.length, `${r.n} chunks all verified fill the strip`);
  }
  await page.close();
});

test('over HTTP/1.1 downloads beyond four wait in a queue, and the file list stays responsive', async () => {
  await onPage(async (page) => {
    assert.equal(await page.evaluate(() => document.documentElement.dataset.protocol), 'http/1.1');
    await setPace(page, 64 << 10); // slow, so all seven are under way together
    for (const n of NAMES) await page.click(`button[data-file="${n}"]`);
    for (const n of NAMES.slice(0, 4)) await waitData(page, 'verified', 'Number(v) >= 1', 30000, n);
    for (const n of NAMES.slice(4)) {
      assert.equal(await data(page, 'state', n), 'queued', `${n} is queued`);
      assert.match(await page.textContent(inCard('.dl-line', n)), /Queued.*ETA\s—|ETA\s—.*Queued/);
    }
    assert.equal(await page.isVisible('#http1'), true);
    assert.match(await page.textContent('#http1'), /HTTPS/);
    // The listing gets a connection: a folder opens while seven downloads are on.
    await page.click('a[data-dir="docs"]');
    await page.waitForSelector('a[data-dir="docs/inner"]', { timeout: 5000 });
    // A queued download starts when a running one ends.
    await openDetails(page, 'a.bin');
    await page.click(inCard('.cancel', 'a.bin'));
    await page.waitForFunction(() => document.querySelector('.download[data-name="e.bin"]')?.dataset.state !== 'queued');
    assert.equal(await data(page, 'state', 'f.bin'), 'queued');
    await page.screenshot({ path: path.join(OUT, 'http1-queued.png'), fullPage: true });
  });
});

