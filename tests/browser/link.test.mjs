// A signed link (`chunkcast link`) opened in real Chromium against a server
// that otherwise wants a password (`--auth`): the page shows that one file,
// and every request it makes (manifest, stream, the stream's reconnect after
// a cut) carries the link, so the download finishes verified. An expired
// link says so.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openPage, saveAndHash, setPace, waitData } from './page-helpers.mjs';
import { BINARY, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const SIZE = 24 << 20;
let dir;
let root;
let srv;
let browser;
let sha;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-link-'));
  const big = pseudoRandom(SIZE, 5);
  sha = sha256hex(big);
  root = makeRoot({ 'shared.bin': big, 'private.bin': 'not for link holders' });
  srv = await startServer({ root, chunkSize: '64K',
    args: ['--auth', 'ann:secret', '--link-key', path.join(dir, 'link-key'), '--retry-ms', '200'] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** @param {string} name @param {string} expires */
function link(name, expires) {
  return execFileSync(BINARY, ['link', srv.url, name, '--expires', expires, '--key-file', path.join(dir, 'link-key')],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

test('without credentials or a link the page is refused', async () => {
  const res = await fetch(srv.url);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="chunkcast"/);
  // A browser with nothing to answer the challenge with gets no page.
  const page = await browser.context.newPage();
  const shown = await page.goto(srv.url).then((r) => r?.status(), (e) => String(e));
  assert.ok(shown === 401 || /ERR_INVALID_AUTH_CREDENTIALS/.test(String(shown)), `${shown}`);
  await page.close();
});

test('a link opens one file, and its download survives a cut with the link on every request', async () => {
  const { page, problems } = await openPage(browser.context, link('shared.bin', '1h') + '&demo');
  const files = await page.$$eval('button[data-file]', (bs) => bs.map((b) => /** @type {HTMLElement} */ (b).dataset.file));
  assert.deepEqual(files, ['shared.bin'], 'the page shows the linked file only');
  // Its copy-link button gives the signed /files address: it works for someone without the page.
  const copyLink = await page.getAttribute('button[data-copy="shared.bin"]', 'data-link');
  assert.match(copyLink, /\/files\/shared\.bin\?exp=\d+&sig=/);
  assert.equal(sha256hex(Buffer.from(await (await fetch(copyLink)).arrayBuffer())), sha);
  await setPace(page, 8388608); // 8 MiB/s: slow enough to cut mid-way
  await page.click('button[data-file="shared.bin"]');
  await waitData(page, 'percent', 'Number(v) >= 30');
  await page.click(inCard('.drop'));
  await waitData(page, 'reconnects', 'Number(v) >= 1');
  await waitData(page, 'state', 'v === "done"', 60000);
  assert.equal(await page.textContent(inCard('.sha256')), sha);
  const saved = await saveAndHash(page);
  assert.equal(saved.sha, sha);
  assert.deepEqual(problems, []);
  await page.close();
});

test('with --auth, a browser that logged in lists and downloads (EventSource sends the credentials)', async () => {
  const signedIn = await launch({ httpCredentials: { username: 'ann', password: 'secret' } });
  try {
    const { page, problems } = await openPage(signedIn.context, srv.url);
    const files = await page.$$eval('button[data-file]', (bs) => bs.map((b) => /** @type {HTMLElement} */ (b).dataset.file));
    assert.ok(files.includes('private.bin') && files.includes('shared.bin'), `${files}`);
    await page.click('button[data-file="shared.bin"]');
    await waitData(page, 'state', 'v === "done"', 60000);
    assert.equal(await page.textContent(inCard('.sha256')), sha);
    assert.deepEqual(problems, []);
  } finally {
    await signedIn.close();
  }
});

test('an expired link says so on load, with no Download control', async () => {
  // Changed (issue "A page people would choose", item 7): the page reads the
  // link's expiry on load instead of offering a Download that can only fail.
  const url = link('shared.bin', '1s');
  await new Promise((r) => setTimeout(r, 2100));
  const page = await browser.context.newPage();
  await page.goto(url);
  await page.waitForSelector('#link-state:not([hidden])');
  assert.match(await page.textContent('#link-state'), /This link expired on .*\d/);
  assert.equal(await page.getAttribute('#link-state', 'data-link'), 'expired');
  assert.equal(await page.locator('button[data-file]:visible').count(), 0, 'no Download control');
  assert.equal(await page.locator('.download').count(), 0, 'nothing was downloaded');
  await page.close();
});

test('a link to a file that is gone says so on load', async () => {
  writeFileSync(path.join(root, 'short-lived.bin'), 'here for a moment');
  const url = link('short-lived.bin', '1h');
  unlinkSync(path.join(root, 'short-lived.bin'));
  const page = await browser.context.newPage();
  await page.goto(url);
  await page.waitForSelector('#link-state:not([hidden])');
  assert.match(await page.textContent('#link-state'), /no file “short-lived\.bin” on the server/);
  assert.equal(await page.locator('button[data-file]:visible').count(), 0, 'no Download control');
  await page.close();
});
