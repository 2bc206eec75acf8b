// Honest numbers: during a stall the speed decays to zero (it is not frozen
// at its last value) and the ETA says it does not know; with the server
// gone the state counts down "reconnecting in N s"; numbers are rounded and
// plurals right.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openPage, setPace, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');
const SIZE = 48 << 20;

let root;
let browser;
let bigSha;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  const big = pseudoRandom(SIZE, 11);
  bigSha = sha256hex(big);
  root = makeRoot({ 'stall.bin': big });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('the speed decays to zero while the server is frozen, and the download then finishes', async () => {
  const srv = await startServer({ root, chunkSize: '64K' });
  try {
    const { page, problems } = await openPage(browser.context, srv.url);
    await setPace(page, 2 << 20);
    await page.click('button[data-file="stall.bin"]');
    await waitData(page, 'speed', 'Number(v) > 1000000', 30000);
    // SIGSTOP: the connection stays open and silent, as a stalled network.
    srv.proc.kill('SIGSTOP');
    const frozenAt = Date.now();
    try {
      await waitData(page, 'speed', 'v === "0"', 8000);
      const stats = await page.textContent(inCard('.dl-stats'));
      assert.match(stats, / · 0 B\/s · ETA\s—/, stats);
      assert.ok(Date.now() - frozenAt < 8000);
      await page.screenshot({ path: path.join(OUT, 'stall-speed-zero.png'), fullPage: true });
    } finally {
      srv.proc.kill('SIGCONT');
    }
    await waitData(page, 'state', 'v === "done"', 120000);
    assert.equal(await page.textContent(inCard('.sha256')), bigSha);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await srv.stop();
  }
});

test('with the server down the state counts down "reconnecting in N s", and the numbers stay honest', async () => {
  const srv = await startServer({ root, chunkSize: '64K', args: ['--retry-ms', '100'] });
  const { page } = await openPage(browser.context, srv.url);
  await setPace(page, 2 << 20);
  await page.click('button[data-file="stall.bin"]');
  await waitData(page, 'verified', 'Number(v) >= 20', 30000);
  await page.evaluate(() => {
    /** @type {any} */ (window).states = [];
    new MutationObserver(() => /** @type {any} */ (window).states.push(document.querySelector('.download .dl-state')?.textContent))
      .observe(document.querySelector('.download .dl-state'), { childList: true, characterData: true, subtree: true });
  });
  await srv.stop();
  await page.waitForFunction(() => /** @type {any} */ (window).states.some((t) => /reconnecting in \d+ s/.test(t)), null, { timeout: 30000 });
  await waitData(page, 'speed', 'v === "0"', 8000);
  await page.screenshot({ path: path.join(OUT, 'stall-reconnecting.png'), fullPage: true });
  const stats = await page.textContent(inCard('.dl-stats'));
  assert.doesNotMatch(stats, /\d\.\d{3,}/, `no raw floats: ${stats}`);
  const reconnects = Number(await data(page, 'reconnects'));
  if (reconnects === 1) assert.match(stats, /· 1 reconnect$/);
  else if (reconnects > 1) assert.match(stats, new RegExp(`· ${reconnects} reconnects$`));
  const states = /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).states));
  for (const s of states) assert.doesNotMatch(s, /\d\.\d\d/, `no raw float in ${s}`);
  await page.close();
});
