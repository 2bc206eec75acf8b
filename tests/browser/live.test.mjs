// Live text in the page (real Chromium, real `serve --publish`): opened from
// the file list, the text grows as it is written, marked Live (and
// Interrupted while the writer is away), typed at the reader's pace with
// Pause/Continue; a reload mid-stream resumes from what the browser stored
// with no text repeated or missing; at the end it is Finished and verified.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { data, inCard, openPage, waitData } from './page-helpers.mjs';
import { REPO, sha256hex, until } from '../js/helpers.mjs';
import { PASSWORD, USER, produce, publish, sleep, split, startLiveServer, story } from '../js/publish.mjs';

const OUT = path.join(REPO, 'test-output');
let live;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  live = await startLiveServer();
  browser = await launch({ httpCredentials: { username: USER, password: PASSWORD } });
});

after(async () => {
  await browser?.close();
  await live?.stop();
});

const shown = (page, name) => page.textContent(inCard('.text', name));
const badge = (page, name) => page.textContent(inCard('.dl-line .live-badge', name));
/** The writer's cursor at the end of the reader's text: its `display` ('none' when there is none). */
const cursor = (page, name) => page.$eval(inCard('.text', name), (el) => {
  const after = getComputedStyle(el, '::after');
  return after.content === 'none' ? 'none' : after.display === 'inline-block' ? 'block' : after.display;
});

test('a live text grows in the page as it is written; Pause holds it; a reload resumes it; it ends Finished and verified', async () => {
  const name = 'answer.txt';
  const full = story(24_000, 'answer');
  const parts = split(full, 12);
  let at = (await publish(live.url, name, parts[0])).offset;
  const { page, problems } = await openPage(browser.context, live.url);
  await page.click(`a[data-open="${name}"]`);
  await waitData(page, 'live', 'v === "live"', 15000, name);
  assert.equal(await badge(page, name), 'Live');
  assert.equal(await cursor(page, name), 'block', 'the reader shows the writer\'s cursor');
  await page.click(inCard('.chip[data-pace="1000"]', name));
  // Grows as it is written: after each part, more text, always the text's beginning.
  const lengths = [];
  at = (await produce(live.url, name, parts.slice(1, 5), {
    offset: at, end: false, gap: 400,
    before: async () => { lengths.push((await shown(page, name)).length); },
  })).offset;
  await page.waitForTimeout(600);
  lengths.push((await shown(page, name)).length);
  assert.ok(lengths.every((n, k) => k === 0 || n > lengths[k - 1]), `the text grew with every part: ${lengths}`);
  assert.ok(full.startsWith(await shown(page, name)), 'the text shown is the text, from its beginning');

  // Pause holds the typing however much arrives; Continue goes on.
  await page.click(inCard('.chip[data-pace="20"]', name));
  at = (await publish(live.url, name, parts[5], { offset: at })).offset;
  await page.click(inCard('.typing', name));
  assert.equal(await page.textContent(inCard('.typing', name)), 'Continue typing');
  const held = (await shown(page, name)).length;
  await page.waitForTimeout(700);
  assert.equal((await shown(page, name)).length, held, 'nothing typed while paused');
  await page.click(inCard('.typing', name));
  await page.waitForTimeout(700);
  assert.ok((await shown(page, name)).length > held, 'typing went on after Continue');

  // The writer away for more than 2 s: Interrupted, waiting for the writer.
  await waitData(page, 'live', 'v === "interrupted"', 10000, name);
  assert.equal(await badge(page, name), 'Interrupted — waiting for the writer');
  await page.screenshot({ path: path.join(OUT, 'live-interrupted.png'), fullPage: true });

  // A reload mid-stream: the page reopens the text and resumes from what it stored.
  await waitData(page, 'verified', `Number(v) >= ${6}`, 10000, name);
  await page.waitForTimeout(500); // the stored chunks reach IndexedDB
  await page.reload();
  await page.waitForSelector(inCard('.text', name));
  await waitData(page, 'live', 'v === "interrupted" || v === "live"', 15000, name);
  await page.click(inCard('.chip[data-pace="0"]', name));
  assert.ok(Number(await data(page, 'resumed', name)) >= 6, 'the stored chunks were resumed');
  at = (await publish(live.url, name, parts[6], { offset: at })).offset;
  await waitData(page, 'live', 'v === "live"', 10000, name);
  await produce(live.url, name, parts.slice(7), { offset: at, gap: 200 });
  await waitData(page, 'state', 'v === "done"', 30000, name);
  await waitData(page, 'live', 'v === "complete"', 5000, name);
  await page.waitForFunction((n) => document.querySelector(`.download[data-name="${n}"] .text`)?.dataset.caughtUp === 'true', name, { timeout: 20000 });
  assert.equal(await shown(page, name), full, 'no text repeated or missing');
  // Instant on a text still being written kept following its newest words.
  assert.ok(await page.$eval(inCard('.text', name), (e) => e.scrollHeight > e.clientHeight && e.scrollTop + e.clientHeight >= e.scrollHeight - 4),
    'the reader shows the end');
  assert.equal(await badge(page, name), 'Finished');
  assert.equal(await cursor(page, name), 'none', 'no cursor once it is finished');
  await page.click(inCard('.more', name));
  assert.equal(await page.textContent(inCard('.sha256', name)), sha256hex(Buffer.from(full)));
  await until(async () => (await data(page, 'wholeSha256', name)) !== undefined, 10000, 'the whole-file check');
  assert.equal(await data(page, 'wholeSha256', name), sha256hex(Buffer.from(full)));
  await page.screenshot({ path: path.join(OUT, 'live-finished.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('a live text without a text name is still read in the page, and an abandoned one says so', async () => {
  // Abandoned: the writer never comes back for --publish-timeout (1 s here).
  const quick = await startLiveServer({ args: ['--publish-timeout', '1s'] });
  try {
    const name = 'transcript';
    const full = story(6000, 'transcript');
    await publish(quick.url, name, full);
    const { page, problems } = await openPage(browser.context, quick.url);
    await page.click(`button[data-file="${name}"]`);
    await page.waitForSelector(inCard('.text-view:not([hidden])', name));
    await waitData(page, 'state', 'v === "done"', 30000, name);
    await waitData(page, 'live', 'v === "abandoned"', 5000, name);
    assert.equal(await badge(page, name), 'Abandoned');
    await page.click(inCard('.chip[data-pace="0"]', name));
    await page.waitForFunction((n) => document.querySelector(`.download[data-name="${n}"] .text`)?.dataset.caughtUp === 'true', name, { timeout: 20000 });
    assert.equal(await shown(page, name), full);
    assert.match(await page.textContent(inCard('.dl-state', name)), /writer stopped/);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await quick.stop();
  }
  await sleep(0);
});
