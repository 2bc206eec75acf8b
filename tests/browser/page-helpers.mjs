// Driving the chunkcast page in the browser tests: open it and wait for the
// file list, read and wait on #download's data-* state, save the result and
// hash what the browser wrote.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Opens `url` in a new page of `context` and waits for the file list;
 * `problems` collects page errors and console errors.
 * @param {import('playwright-core').BrowserContext} context @param {string} url
 */
export async function openPage(context, url) {
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForSelector('button[data-file]');
  return { page, problems };
}

/** A `data-*` value of #download. @param {import('playwright-core').Page} page @param {string} key */
export const data = (page, key) => page.$eval('#download', (el, k) => /** @type {HTMLElement} */ (el).dataset[k], key);

/**
 * Waits until `pred` (a JS expression of `v`) holds for #download's `data-<key>`.
 * @param {import('playwright-core').Page} page @param {string} key @param {string} pred @param {number} [timeout]
 */
export const waitData = (page, key, pred, timeout = 60000) =>
  page.waitForFunction(([k, p]) => new Function('v', `return ${p}`)(/** @type {HTMLElement} */ (document.querySelector('#download')).dataset[k]), [key, pred], { timeout, polling: 50 });

/** Clicks Save and returns the SHA-256 and name of the file the browser wrote. @param {import('playwright-core').Page} page */
export async function saveAndHash(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
  const file = await download.path();
  const hash = createHash('sha256');
  await new Promise((resolve, reject) => createReadStream(file).on('data', (d) => hash.update(d)).on('end', resolve).on('error', reject));
  return { sha: hash.digest('hex'), name: download.suggestedFilename() };
}
