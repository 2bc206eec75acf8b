// The page lists one folder at a time (the server answers one directory per
// request): folders open in place, a breadcrumb leads back up, and a file
// deep in the tree downloads and verifies like any other.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { makeRoot, startServer } from '../js/helpers.mjs';

let srv;
let root;
let browser;

before(async () => {
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
  await page.waitForSelector('button[data-dir="docs"]');
  assert.ok((await names(page, 'file')).includes('one-chunk.bin'), 'top-level files are listed');
  assert.ok(!(await names(page, 'file')).some((n) => n.startsWith('docs/')), 'only the top folder is listed');

  await page.click('button[data-dir="docs"]');
  await page.waitForSelector('button[data-dir="docs/sub"]');
  assert.deepEqual(await names(page, 'file'), ['docs/readme.txt']);
  await page.click('button[data-dir="docs/sub"]');
  const deep = 'docs/sub/deep & odd+name.txt';
  await page.waitForSelector(`button[data-file="${deep}"]`);
  assert.match(await page.textContent('#crumbs'), /All files \/ docs \/ sub/);

  await page.click(`button[data-file="${deep}"]`);
  await page.waitForFunction(() => document.querySelector('.download')?.dataset.state === 'done', null, { timeout: 30000 });

  // The breadcrumb leads back to the top.
  await page.click('button[data-crumb=""]');
  await page.waitForSelector('button[data-dir="docs"]');
  assert.equal(await page.$('button[data-dir="docs/sub"]'), null);
  assert.deepEqual(problems, []);
  await page.close();
});
