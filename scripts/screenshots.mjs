#!/usr/bin/env node
// Screenshots of the page as a person would see it, to judge it side by side
// with Chrome's downloads page, dufs and miniserve: desktop (1366×800) and
// phone (390×844), light and dark, with Chinese and emoji names, folders,
// finished, running and queued downloads, a row's details, a text being
// read, a live text (`serve --publish`) while it is written and while its
// writer is away, and the page a failing address shows. Writes
// test-output/screenshots/*.png (not committed).
//
//   cargo build --bin chunkcast && node scripts/screenshots.mjs
//
// Chinese and emoji names need fonts-noto-cjk and fonts-noto-color-emoji
// (scripts/test-web installs them, as root, with Chromium).
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { launch } from '../tests/browser/chromium.mjs';
import { REPO, makeRoot, pseudoRandom, startServer } from '../tests/js/helpers.mjs';
import { PASSWORD, USER, publish, split, story as liveStory } from '../tests/js/publish.mjs';

const OUT = path.join(REPO, 'test-output', 'screenshots');
mkdirSync(OUT, { recursive: true });

const story = Array.from({ length: 400 }, (_, i) =>
  `${i + 1}. The chunks arrive one by one; each is checked against its SHA-256 before a single character shows. 数据块逐一到达。🚀\n`).join('');
const root = makeRoot({
  'holiday-video.mp4': pseudoRandom(24 << 20, 1),
  '季度报告 2026.pdf': pseudoRandom(3 << 20, 2),
  '🎵 playlist.m3u': '#EXTM3U\n'.repeat(200),
  'notes.txt': story,
  'big-archive.tar': pseudoRandom(40 << 20, 3),
  'photo 📷 beach.jpg': pseudoRandom(2 << 20, 4),
  'server-日志.log': pseudoRandom(8 << 20, 5),
});
for (const [dir, files] of Object.entries({ 'Photos 照片': { 'IMG_0001.jpg': 300000, '海边 🌊.jpg': 420000 }, 'docs': { 'manual.md': 5000 } })) {
  mkdirSync(path.join(root, dir), { recursive: true });
  for (const [n, size] of Object.entries(files)) writeFileSync(path.join(root, dir, n), pseudoRandom(size, 7));
}
// --publish (which needs --auth and an index directory) for the live text.
const indexDir = path.join(root, '..', `${path.basename(root)}-index`);
mkdirSync(indexDir, { recursive: true });
const srv = await startServer({ root, indexDir, chunkSize: '64K', args: ['--publish', '--auth', `${USER}:${PASSWORD}`] });
const answer = split(liveStory(9000, 'The answer, sentence'), 8);
let passes = 0;
const sizes = { desktop: { width: 1366, height: 800 }, phone: { width: 390, height: 844 } };
try {
  for (const [label, viewport] of Object.entries(sizes)) {
    for (const scheme of /** @type {const} */ (['light', 'dark'])) {
      // A fresh profile each time: the dark pass must not find the light
      // pass's downloads in storage (they would finish at once, their
      // bandwidth menu disabled).
      const browser = await launch({ viewport, httpCredentials: { username: USER, password: PASSWORD } });
      try {
        const page = await browser.context.newPage();
        await page.emulateMedia({ colorScheme: scheme });
        await page.goto(srv.url);
        await page.waitForSelector('button[data-file]');
        await page.screenshot({ path: path.join(OUT, `${label}-${scheme}-1-list.png`), fullPage: true });
        for (const n of ['季度报告 2026.pdf', 'photo 📷 beach.jpg', '🎵 playlist.m3u']) {
          await page.click(`button[data-file="${n}"]`);
          await page.waitForSelector(`.download[data-name="${n}"][data-state="done"]`, { timeout: 60000 });
        }
        // A running download, slowed down from its first chunk (the pace a
        // person keeps for new downloads): chosen after the click, a 40 MiB
        // download over loopback may already be done.
        await page.evaluate(() => localStorage.setItem('chunkcast.rate', String(1 << 20)));
        await page.click('button[data-file="big-archive.tar"]');
        await page.evaluate(() => localStorage.removeItem('chunkcast.rate'));
        await page.click('a[data-open="notes.txt"]');
        await page.waitForTimeout(4000);
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: path.join(OUT, `${label}-${scheme}-2-downloads.png`), fullPage: true });
        await page.screenshot({ path: path.join(OUT, `${label}-${scheme}-2-downloads-fold.png`) });
        await page.click('.download[data-name="big-archive.tar"] .more');
        await page.waitForTimeout(1500);
        const row = page.locator('.download[data-name="big-archive.tar"]');
        await row.screenshot({ path: path.join(OUT, `${label}-${scheme}-3-details.png`) });
        await page.click('a[data-dir="Photos 照片"]');
        await page.waitForSelector('button[data-file="Photos 照片/海边 🌊.jpg"]');
        await page.locator('#browser').screenshot({ path: path.join(OUT, `${label}-${scheme}-4-folder.png`) });
        await page.click('details[data-menu="Photos 照片/海边 🌊.jpg"] > summary');
        await page.screenshot({ path: path.join(OUT, `${label}-${scheme}-5-menu.png`), fullPage: true });
        await page.close();
        // A file that grows on the server while it downloads: the row says
        // how many chunks it kept.
        const growing = await browser.context.newPage();
        await growing.emulateMedia({ colorScheme: scheme });
        await growing.goto(srv.url);
        await growing.evaluate(() => localStorage.setItem('chunkcast.rate', String(1 << 20)));
        await growing.click('button[data-file="server-日志.log"]');
        await growing.evaluate(() => localStorage.removeItem('chunkcast.rate'));
        await growing.waitForSelector('.download[data-name="server-日志.log"][data-percent^="2"]', { timeout: 30000 });
        appendFileSync(path.join(root, 'server-日志.log'), pseudoRandom(300 << 10, passes + 10));
        await growing.waitForSelector('.download[data-name="server-日志.log"] .dl-note:not([hidden])', { timeout: 30000 });
        await growing.waitForTimeout(1500);
        await growing.evaluate(() => window.scrollTo(0, 0));
        await growing.screenshot({ path: path.join(OUT, `${label}-${scheme}-9-changed.png`) });
        await growing.click('.download[data-name="server-日志.log"] .more');
        await growing.selectOption('.download[data-name="server-日志.log"] select.rate', '0');
        await growing.waitForSelector('.download[data-name="server-日志.log"][data-state="done"]', { timeout: 60000 });
        await growing.locator('.download[data-name="server-日志.log"]').screenshot({ path: path.join(OUT, `${label}-${scheme}-9-changed-done.png`) });
        await growing.close();
        // A live text: written while it is read, then its writer away.
        const reader = await browser.context.newPage();
        await reader.emulateMedia({ colorScheme: scheme });
        let at = (await publish(srv.url, 'live answer.txt', answer[0], { replace: passes++ > 0 })).offset;
        await reader.goto(srv.url);
        await reader.click('a[data-open="live answer.txt"]');
        await reader.waitForSelector('.download[data-live="live"]');
        await reader.click('.download .chip[data-pace="1000"]');
        for (const part of answer.slice(1, 6)) {
          await reader.waitForTimeout(300);
          at = (await publish(srv.url, 'live answer.txt', part, { offset: at })).offset;
        }
        await reader.waitForTimeout(700);
        await reader.screenshot({ path: path.join(OUT, `${label}-${scheme}-6-live.png`) });
        await reader.waitForSelector('.download[data-live="interrupted"]', { timeout: 10000 });
        await reader.screenshot({ path: path.join(OUT, `${label}-${scheme}-7-interrupted.png`) });
        await publish(srv.url, 'live answer.txt', answer.slice(6).join(''), { offset: at, end: true });
        await reader.waitForSelector('.download[data-state="done"]', { timeout: 30000 });
        await reader.click('.download .chip[data-pace="0"]');
        await reader.waitForTimeout(500);
        await reader.screenshot({ path: path.join(OUT, `${label}-${scheme}-8-live-finished.png`) });
        await reader.close();
        // An address that fails, opened as a person would (a stale /files link).
        const gone = await browser.context.newPage();
        await gone.emulateMedia({ colorScheme: scheme });
        await gone.goto(`${srv.url}files/Photos%20照片/moved-away 🌊.jpg`);
        await gone.screenshot({ path: path.join(OUT, `${label}-${scheme}-10-not-found.png`) });
        await gone.close();
      } finally {
        await browser.close();
      }
    }
  }
} finally {
  await srv.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(indexDir, { recursive: true, force: true });
}
console.log(`screenshots in ${path.relative(REPO, OUT)}/`);
