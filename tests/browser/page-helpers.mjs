// Driving the chunkcast page in the browser tests: open it and wait for the
// file list, read and wait on a download card's data-* state, save the
// result and hash what the browser wrote.
//
// The page lists downloads newest first, one `.download` card each (with
// data-name); helpers take the card's file name, or default to the newest.
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

/**
 * The CSS selector of a download card: the one of file `name`, or the newest.
 * @param {string} [name]
 */
export const card = (name) => (name === undefined ? '.download' : `.download[data-name="${name.replace(/["\\]/g, '\\$&')}"]`);

/** A selector inside a card, e.g. `inCard('.pause', 'a.bin')`. @param {string} sel @param {string} [name] */
export const inCard = (sel, name) => `${card(name)} ${sel}`;

/**
 * A `data-*` value of a download card.
 * @param {import('playwright-core').Page} page @param {string} key @param {string} [name]
 */
export const data = (page, key, name) => page.$eval(card(name), (el, k) => /** @type {HTMLElement} */ (el).dataset[k], key);

/**
 * Waits until `pred` (a JS expression of `v`) holds for a card's `data-<key>`.
 * @param {import('playwright-core').Page} page @param {string} key @param {string} pred @param {number} [timeout] @param {string} [name]
 */
export const waitData = (page, key, pred, timeout = 60000, name = undefined) =>
  page.waitForFunction(([sel, k, p]) => {
    const el = /** @type {HTMLElement|null} */ (document.querySelector(sel));
    return !!el && new Function('v', `return ${p}`)(el.dataset[k]);
  }, [card(name), key, pred], { timeout, polling: 50 });

/**
 * The pace new downloads start at (what a person last chose on a card),
 * set before the download starts so it is paced from its first chunk.
 * @param {import('playwright-core').Page} page @param {number} rate  bytes/s, 0 for none
 */
export const setPace = (page, rate) => page.evaluate((r) => localStorage.setItem('chunkcast.rate', String(r)), rate);

/**
 * Clicks a card's Save and returns the SHA-256 and name of the file the browser wrote.
 * @param {import('playwright-core').Page} page @param {string} [name]
 */
export async function saveAndHash(page, name) {
  // This file's download: another row finishing meanwhile saves itself too
  // (one click to disk), and its event must not be taken for this one.
  const base = name?.split('/').pop();
  const mine = page.waitForEvent('download', { predicate: (d) => !base || d.suggestedFilename() === base });
  const [download] = await Promise.all([mine, page.click(inCard('.save', name))]);
  const file = await download.path();
  const hash = createHash('sha256');
  await new Promise((resolve, reject) => createReadStream(file).on('data', (d) => hash.update(d)).on('end', resolve).on('error', reject));
  return { sha: hash.digest('hex'), name: download.suggestedFilename() };
}

/**
 * Opens a download row's details panel (chunk map, hashes, bandwidth,
 * Cancel, Remove), if it is closed.
 * @param {import('playwright-core').Page} page @param {string} [name]
 */
export async function openDetails(page, name) {
  if (await page.isHidden(inCard('.dl-details', name))) await page.click(inCard('.more', name));
}

/**
 * Opens a file's menu in the file list (Save to…, Copy link, Read).
 * @param {import('playwright-core').Page} page @param {string} name
 */
export async function openFileMenu(page, name) {
  await page.click(`details[data-menu="${name.replace(/["\\]/g, '\\$&')}"] > summary`);
}
