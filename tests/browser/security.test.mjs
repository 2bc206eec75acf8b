// Served files never run as the app: an HTML page and an SVG with scripts,
// opened straight from /files/ in real Chromium, get an opaque origin and no
// script, so they cannot read the app's API or touch its storage.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { makeRoot, startServer } from '../js/helpers.mjs';

// Each payload tries everything an attacker's file would: mark that it ran,
// write the app's storage, read the app's API.
const attack = (tag) => `
  document.title = 'ran-${tag}';
  try { localStorage.setItem('pwned-${tag}', '1'); } catch (e) {}
  fetch('/api/files').then((r) => r.text()).then((t) => { document.title = 'read-${tag}:' + t.length; }, () => {});
`;
const EVIL_HTML = `<!doctype html><title>evil</title><script>${attack('html')}</script><p>hi</p>`;
const EVIL_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>${attack('svg')}</script><rect width="10" height="10"/></svg>`;
// An HTML payload under a name that says text: a sniffing browser would run it.
const EVIL_TXT = EVIL_HTML.replaceAll("'html'", "'txt'").replaceAll('-html', '-txt');

let srv;
let root;
let browser;

before(async () => {
  root = makeRoot({ 'evil.html': EVIL_HTML, 'evil.svg': EVIL_SVG, 'evil.txt': EVIL_TXT });
  srv = await startServer({ root });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

for (const [name, tag] of [['evil.html', 'html'], ['evil.svg', 'svg'], ['evil.txt', 'txt']]) {
  test(`/files/${name} cannot script the app's origin`, async () => {
    const page = await browser.context.newPage();
    // The app's own origin first, with something in its storage.
    await page.goto(srv.url);
    await page.evaluate(() => localStorage.setItem('app-state', 'kept'));

    const res = await page.goto(`${srv.url}files/${name}`);
    assert.equal(res.status(), 200);
    const headers = res.headers();
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['content-security-policy'], 'sandbox');
    // Give a script that would run time to run and to fetch.
    await page.waitForTimeout(500);
    const state = await page.evaluate(() => ({
      origin: window.origin,
      title: document.title,
      storage: (() => { try { return localStorage.length; } catch (e) { return `blocked: ${e.name}`; } })(),
    }));
    assert.equal(state.origin, 'null', 'the document has an opaque origin');
    assert.ok(!state.title.startsWith('ran-') && !state.title.startsWith('read-'), `a script ran: ${state.title}`);
    assert.match(String(state.storage), /^blocked/, 'the app origin\'s storage is out of reach');

    // Back on the app's origin: its storage is untouched and holds no mark.
    await page.goto(srv.url);
    const app = await page.evaluate(() => ({ ...localStorage }));
    assert.equal(app['app-state'], 'kept');
    assert.equal(app[`pwned-${tag}`], undefined);
    await page.close();
  });
}
