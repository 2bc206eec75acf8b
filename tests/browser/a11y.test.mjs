// Phone and accessibility: on a 390 px screen, tapping Download far below
// the list brings the download into view; the chunk map has counts and
// shapes besides colour; the focus ring has at least 3:1 contrast in light
// and dark schemes; state changes are announced; dark mode follows the
// system; "Drop connection" shows only with ?demo.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { inCard, openPage, waitData } from './page-helpers.mjs';
import { REPO, makeRoot, pseudoRandom, startServer } from '../js/helpers.mjs';

const OUT = path.join(REPO, 'test-output');

let srv;
let root;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  /** @type {Record<string, Buffer>} */
  const files = {};
  // Enough files that the last one is far below the fold on a phone.
  for (let i = 0; i < 40; i++) files[`file-${String(i).padStart(2, '0')}.bin`] = pseudoRandom(64 << 10, i);
  files['zz-last.bin'] = pseudoRandom(1 << 20, 99);
  root = makeRoot(files);
  srv = await startServer({ root, chunkSize: '16K' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** WCAG contrast ratio of two `rgb(...)` colours. @param {string} a @param {string} b */
function contrast(a, b) {
  const lum = (/** @type {string} */ c) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

test('on a 390 px phone, Download far down the list brings the download into view', async () => {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(srv.url);
  await page.waitForSelector('button[data-file="zz-last.bin"]');
  const button = page.locator('button[data-file="zz-last.bin"]');
  await button.scrollIntoViewIfNeeded();
  await button.click();
  await page.waitForSelector('.download[data-name="zz-last.bin"]');
  await page.waitForFunction(() => {
    const r = document.querySelector('.download[data-name="zz-last.bin"]')?.getBoundingClientRect();
    return !!r && r.top >= 0 && r.top < window.innerHeight - 100;
  }, null, { timeout: 15000 });
  await waitData(page, 'state', 'v === "done"', 30000);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await page.screenshot({ path: path.join(OUT, 'phone-390-download-in-view.png') });
  await page.close();
});

test('the chunk map says its counts in words and draws shapes, not colour alone', async () => {
  const { page } = await openPage(browser.context, srv.url);
  await page.click('button[data-file="zz-last.bin"]');
  await waitData(page, 'state', 'v === "done"', 30000);
  assert.match(await page.textContent(inCard('.counts')), /^64 of 64 chunks verified$/);
  assert.match(await page.getAttribute(inCard('.map-canvas'), 'aria-label'), /64 of 64 chunks verified/);
  // The legend is once on the page, not in every row (changed with the compact rows).
  const legend = await page.textContent('#downloads .legend');
  assert.match(legend, /hollow/);
  assert.match(legend, /striped/);
  assert.match(legend, /crossed/);
  await page.close();
});

for (const scheme of /** @type {const} */ (['light', 'dark'])) {
  test(`${scheme}: the focus ring has at least 3:1 contrast, and the scheme follows the system`, async () => {
    const page = await browser.context.newPage();
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto(srv.url);
    await page.waitForSelector('button[data-file]');
    const bg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    const dark = contrast(bg, 'rgb(0, 0, 0)') < contrast(bg, 'rgb(255, 255, 255)');
    assert.equal(dark, scheme === 'dark', `background ${bg}`);
    // Tab to a file's Download button: the ring is drawn around it on the card.
    for (let k = 0; k < 40; k++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(() => !!document.activeElement?.getAttribute('data-file'))) break;
    }
    const ring = await page.evaluate(() => {
      const el = /** @type {HTMLElement} */ (document.activeElement);
      const s = getComputedStyle(el);
      const card = getComputedStyle(/** @type {HTMLElement} */ (el.closest('section'))).backgroundColor;
      return { color: s.outlineColor, width: s.outlineWidth, style: s.outlineStyle, card };
    });
    assert.equal(ring.style, 'solid');
    assert.ok(parseFloat(ring.width) >= 2, `outline ${ring.width}`);
    const ratio = contrast(ring.color, ring.card);
    assert.ok(ratio >= 3, `focus ring ${ring.color} on ${ring.card}: ${ratio.toFixed(2)}:1`);
    await page.screenshot({ path: path.join(OUT, `scheme-${scheme}.png`), fullPage: true });
    await page.close();
  });
}

test("a file's ⋯ menu closes with Escape (focus back on ⋯) and when the focus moves on", async () => {
  const page = await browser.context.newPage();
  await page.goto(srv.url);
  await page.waitForSelector('button[data-file]');
  const menu = 'details[data-menu="file-00.bin"]';
  const isOpen = () => page.$eval(menu, (m) => /** @type {HTMLDetailsElement} */ (m).open);
  await page.focus(`${menu} > summary`);
  await page.keyboard.press('Enter');
  assert.equal(await isOpen(), true, 'Enter opens it');
  await page.keyboard.press('Escape');
  assert.equal(await isOpen(), false, 'Escape closes it');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'More for file-00.bin');
  // Tabbing through its items and on to the next row closes it.
  await page.keyboard.press('Enter');
  for (let k = 0; k < 6 && await page.evaluate((m) => !!document.activeElement?.closest(m), menu); k++) await page.keyboard.press('Tab');
  assert.equal(await page.evaluate((m) => !!document.activeElement?.closest(m), menu), false, 'the focus left the menu');
  assert.equal(await isOpen(), false, 'and the menu closed behind it');
  await page.close();
});

test('state changes are announced to screen readers, progress is not', async () => {
  const { page } = await openPage(browser.context, srv.url);
  assert.equal(await page.getAttribute('#announce', 'aria-live'), 'polite');
  await page.evaluate(() => {
    /** @type {any} */ (window).said = [];
    new MutationObserver(() => /** @type {any} */ (window).said.push(document.querySelector('#announce')?.textContent))
      .observe(/** @type {Node} */ (document.querySelector('#announce')), { childList: true, characterData: true, subtree: true });
  });
  await page.click('button[data-file="zz-last.bin"]');
  await waitData(page, 'state', 'v === "done"', 30000);
  await page.waitForFunction(() => /** @type {any} */ (window).said.length > 0);
  const said = /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).said));
  assert.ok(said.includes('zz-last.bin: Done: verified.'), JSON.stringify(said));
  assert.ok(!said.some((t) => /%|MiB\/s/.test(t)), `no progress read out: ${JSON.stringify(said)}`);
  await page.close();
});

test('"Drop connection" is a demonstration control: shown only with ?demo', async () => {
  for (const [query, shown] of /** @type {const} */ ([['', false], ['?demo', true]])) {
    const { page } = await openPage(browser.context, srv.url + query);
    await page.click('button[data-file="zz-last.bin"]');
    await page.waitForSelector('.download');
    assert.equal(await page.isVisible(inCard('.drop')), shown, `with "${query}"`);
    await page.close();
  }
});
