// A file that changes on the server: `event: error` code `changed` mid-stream,
// 412 on a resume, and stored chunks of an older version (delta.test.mjs has
// the chunks a new version repeats, kept).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Download, MemoryStore } from '../../web/chunkcast.js';
import { pseudoRandom, sha256hex, startProxy, startServer, until } from './helpers.mjs';

const CHUNKS = 200;
let srv;
before(async () => { srv = await startServer({ args: ['--retry-ms', '100'] }); });
after(async () => { await srv?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let seed = 100;
/** Writes a fresh version of `name` and returns its bytes. */
function writeVersion(name, size = 4096 * CHUNKS) {
  const bytes = pseudoRandom(size, seed++);
  writeFileSync(path.join(srv.root, name), bytes);
  return bytes;
}

function start(name, opts) {
  let verified = 0;
  const changes = [];
  const errors = [];
  const dl = new Download(name, {
    base: srv.url,
    EventSource,
    backoffBase: 50,
    onchunk: (i, s) => { if (s === 'verified') verified++; },
    onchanged: (c) => changes.push(c),
    onerror: (e) => errors.push(e),
    ...opts,
  });
  dl.start();
  return { dl, changes, errors, verified: () => verified };
}

const bytesOf = async (dl) => Buffer.from(await (await dl.done).blob.arrayBuffer());

test('a change mid-stream is reported, the download goes on with the new version, and nothing of a rewritten file is kept', async () => {
  writeVersion('a.bin');
  const store = new MemoryStore();
  const { dl, changes, errors, verified } = start('a.bin', { rate: 800_000, store });
  await until(() => verified() >= 20, 10000, '20 chunks');
  await sleep(20);
  const v2 = writeVersion('a.bin', 4096 * CHUNKS + 5);
  await until(() => changes.length === 1, 10000, 'the change');
  dl.setRate(0);
  assert.equal(sha256hex(await bytesOf(dl)), sha256hex(v2));
  assert.equal(changes.length, 1);
  assert.notEqual(changes[0].oldVersion, changes[0].newVersion);
  assert.equal(changes[0].newVersion, dl.manifest.version, 'the new version is fetched for the caller');
  assert.equal(changes[0].kept, 0, 'new random bytes repeat no chunk');
  assert.equal(changes[0].total, CHUNKS + 1);
  assert.equal(errors.length, 0);
  assert.equal(store.chunks.size, CHUNKS + 1, 'the store holds the new version only');
  assert.equal(dl.state, 'done');
});

test('a resume refused with 412 is detected as a change, and the download goes on with the new version', async () => {
  writeVersion('b.bin');
  const px = await startProxy(srv.url);
  try {
    const { dl, changes, verified } = start('b.bin', { base: px.url, rate: 800_000 });
    await until(() => verified() >= 20, 10000, '20 chunks');
    dl.pause();
    await sleep(50);
    const v2 = writeVersion('b.bin');
    dl.resume();
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(v2));
    assert.equal(changes.length, 1);
    assert.match(changes[0].why, /new version/);
    assert.equal(changes[0].stored, false);
    // The resumed request carried the old version and was refused.
    const old = changes[0].oldVersion;
    const refused = px.eventRequests().filter((r) => r.line.includes(`v=${old}`));
    assert.ok(refused.length >= 2, 'the first stream and the refused resume both named the old version');
  } finally {
    await px.close();
  }
});

test('stored chunks of another version that repeat nothing are dropped, and the caller told', async () => {
  const v1 = writeVersion('c.bin', 4096 * 20);
  const store = new MemoryStore();
  const first = start('c.bin', { store });
  assert.equal(sha256hex(await bytesOf(first.dl)), sha256hex(v1));
  await sleep(20);
  const v2 = writeVersion('c.bin', 4096 * 20);
  const { dl, changes } = start('c.bin', { store });
  assert.equal(sha256hex(await bytesOf(dl)), sha256hex(v2));
  assert.equal(dl.progress().chunksResumed, 0);
  assert.equal(changes.length, 1);
  assert.match(changes[0].why, /older version/);
  assert.deepEqual([changes[0].kept, changes[0].total, changes[0].stored], [0, 20, true]);
});

test('a file removed mid-download fails with not_found', async () => {
  writeVersion('d.bin');
  const { dl, verified } = start('d.bin', { rate: 800_000 });
  await until(() => verified() >= 10, 10000, '10 chunks');
  const { rmSync } = await import('node:fs');
  rmSync(path.join(srv.root, 'd.bin'));
  await assert.rejects(dl.done, (e) => ['not_found', 'changed'].includes(e.code));
});
