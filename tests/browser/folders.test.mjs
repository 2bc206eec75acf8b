// The page lists one folder at a time (the server answers one directory per
// request): folders open in place, a breadcrumb leads back up, and a file
// deep in the tree downloads and verifies like any other; sizes, dates, sort,
// filter and copy-link.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { REPO, makeRoot, startServer } from '../js/helpers.mjs';
import { openFileMenu } from './page-helpers.mjs';

const OUT = path.join(REPO, 'test-output');

let srv;
let root;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  root = makeRoot();
  mkdirSync(path.join(root, 'docs/sub'), { recursive: true });
  writeFileSync(path.join(root, 'docs/readme.txt'), 'read me\n');
  writeFileSync(path.join(root, 'docs/sub/deep & odd+name.txt'), 'deep text\n'.repeat(1000));
  srv = await startServer({ root });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const names = (page, attr) => page.$$eval(`button[data-${attr}]`, (bs, a) => bs.map((b) => b.dataset[a]), attr);

test('folders open in place and a deep file downloads', async () => {
  const page = await browser.context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(srv.url);
  await page.waitForSelector('a[data-dir="docs"]');
  assert.ok((await names(page, 'file')).includes('one-chunk.bin'), 'top-level files are listed');
  assert.ok(!(await names(page, 'file')).some((n) => n.startsWith('docs/')), 'only the top folder is listed');

  await page.click('a[data-dir="docs"]');
  await page.waitForSelector('a[data-dir="docs/sub"]');
  assert.deepEqual(await names(page, 'file'), ['docs/readme.txt']);
  await page.click('a[data-dir="docs/sub"]');
  const deep = 'docs/sub/deep & odd+name.txt';
  await page.waitForSelector(`button[data-file="${deep}"]`);
  assert.match(await page.textContent('#crumbs'), /All files \/ docs \/ sub/);

  await page.click(`button[data-file="${deep}"]`);
  await page.waitForFunction(() => document.querySelector('.download')?.dataset.state === 'done', null, { timeout: 30000 });

  // The breadcrumb leads back to the top.
  await page.click('a[data-crumb=""]');
  await page.waitForSelector('a[data-dir="docs"]');
  assert.equal(await page.$('a[data-dir="docs/sub"]'), null);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a folder shows sizes and dates, sorts by column, filters by name, and copies links', async () => {
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(srv.url).origin });
  const page = await browser.context.newPage();
  await page.goto(srv.url);
  await page.waitForSelector('a[data-dir="docs"]');
  await page.click('a[data-dir="docs"]');
  await page.waitForSelector('button[data-file="docs/readme.txt"]');
  await page.click('a[data-crumb=""]');
  await page.waitForSelector('a[data-dir="docs"]');
  const rows = () => page.$$eval('#files tbody tr', (trs) => trs.map((tr) => [...tr.cells].slice(0, 3).map((c) => c.textContent ?? '')));
  const fileNames = () => page.$$eval('#files tbody button[data-file]', (bs) => bs.map((b) => /** @type {HTMLElement} */ (b).dataset.file));

  // Sizes for people (bytes in the tooltip) and a date for every file.
  const all = await rows();
  const chunk = all.find(([n]) => n === 'one-chunk.bin');
  assert.equal(chunk?.[1], '4.00 KiB');
  assert.ok(chunk?.[2] && /\d/.test(chunk[2]), `a date: ${chunk?.[2]}`);
  assert.equal(all[0][0], 'docs/', 'folders first');

  // Sort by size, both ways; folders stay first.
  await page.click('th[data-sort="size"] button');
  assert.equal(await page.getAttribute('th[data-sort="size"]', 'aria-sort'), 'ascending');
  let names = await fileNames();
  assert.equal(names[0], 'empty.txt');
  await page.click('th[data-sort="size"] button');
  assert.equal(await page.getAttribute('th[data-sort="size"]', 'aria-sort'), 'descending');
  names = await fileNames();
  assert.equal(names[names.length - 1], 'empty.txt');
  assert.equal((await rows())[0][0], 'docs/');
  await page.click('th[data-sort="name"] button');
  names = await fileNames();
  assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true, sensitivity: 'base' })));

  // Filter on part of a name.
  await page.fill('#filter', 'ONE-BY');
  assert.deepEqual(await fileNames(), ['one-byte.bin', 'one-byte.txt']);
  await page.fill('#filter', 'nothing like it');
  assert.match(await page.textContent('#files tbody'), /No name in this folder contains/);
  await page.fill('#filter', '');
  await page.screenshot({ path: path.join(OUT, 'folders-sorted.png'), fullPage: true });

  // Copy link: the /files/NAME address, each part encoded, fetchable as is.
  await page.click('a[data-dir="docs"]');
  await page.click('a[data-dir="docs/sub"]');
  const deep = 'docs/sub/deep & odd+name.txt';
  await openFileMenu(page, deep); // Copy link is in the file's menu (changed: it was a third button in the row)
  await page.click(`button[data-copy="${deep}"]`);
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, `${srv.url}files/docs/sub/deep%20%26%20odd%2Bname.txt`);
  assert.match(await page.textContent('#status'), /Copied the link/);
  const res = await fetch(copied);
  assert.equal(await res.text(), 'deep text\n'.repeat(1000));
  await page.close();
});
