// The OPFS store's record of which chunks are on disk survives a torn write:
// it lives in two alternating slots (web/lib/store/state.js), so a crash
// while one is written leaves the other, and a reload resumes from it. (It
// used to be one file rewritten in place: a crash between truncate and
// write discarded all progress.) Real Chromium, the library driven from
// inside a page on http://127.0.0.1 (a secure context, so OPFS exists).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch } from './chromium.mjs';
import { pseudoRandom, sha256hex, startServer } from '../js/helpers.mjs';

const SIZE = 8 << 20; // 32 chunks of 256 KiB
const content = pseudoRandom(SIZE, 31);
let srv;
let browser;

before(async () => {
  srv = await startServer({ files: { 'torn.bin': content }, chunkSize: '256K' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

test('a torn state record falls back to the previous one: the chunks it lists are resumed, not fetched again', async () => {
  const page = await browser.context.newPage();
  await page.goto(srv.url);
  const r = await page.evaluate(async () => {
    const { Download, findStored } = await import('/chunkcast.js');
    const { stateSlots, newest, countBits } = await import('/lib/store/state.js');
    const { decodeBase64, toHex } = await import('/lib/bytes.js');
    const until = async (/** @type {() => boolean} */ f) => { while (!f()) await new Promise((res) => setTimeout(res, 20)); };
    // Part of the file, paced, with at least two records written on the way.
    let verified = 0;
    const first = new Download('torn.bin', { store: 'opfs', rate: 2 << 20, onchunk: (_i, s) => { if (s === 'verified') verified++; } });
    first.start();
    await until(() => verified >= 6);
    await new Promise((res) => setTimeout(res, 1200)); // the worker saves the record every 500 ms
    await until(() => verified >= 14);
    first.pause();
    await first.close();
    // Tear the newest record, as a crash in the middle of writing it would.
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('chunkcast');
    const names = stateSlots('torn%2Ebin');
    const texts = await Promise.all(names.map(async (n) => (await (await dir.getFileHandle(n)).getFile()).text()));
    const { record, slot } = newest(texts);
    if (!record) throw new Error('no record was written');
    const other = newest(texts.map((t, k) => (k === slot ? '' : t))).record;
    if (!other) throw new Error('only one record was written');
    const w = await (await dir.getFileHandle(names[slot])).createWritable();
    await w.write(texts[slot].slice(0, 30));
    await w.close();
    const stored = await findStored('torn.bin');
    // A fresh download (as after a reload) resumes from the older record.
    const second = new Download('torn.bin', { store: 'opfs' });
    second.start();
    const { blob } = await second.done;
    const p = second.progress();
    await second.close();
    return {
      newest: countBits(decodeBase64(record.bitmap)), older: countBits(decodeBase64(other.bitmap)),
      found: stored?.chunks, resumed: p.chunksResumed, received: p.bytesReceived, chunks: p.chunks,
      sha: toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))),
    };
  });
  assert.ok(r.older > 0, `the older record lists chunks (${r.older}; newest ${r.newest})`);
  assert.equal(r.found, r.older, 'findStored reads the surviving record');
  assert.equal(r.resumed, r.older, 'every chunk the surviving record lists is resumed');
  assert.equal(r.received, SIZE - r.resumed * (256 << 10), 'and only the others are fetched');
  assert.equal(r.sha, sha256hex(content));
  await page.close();
});
