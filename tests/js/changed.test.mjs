// A file that changes on the server: `event: error` code `changed` mid-stream,
// 412 on a resume, and stored chunks of an older version.
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

test('a change mid-stream is reported, stale chunks are dropped, and nothing restarts unless asked', async () => {
  writeVersion('a.bin');
  const store = new MemoryStore();
  const { dl, changes, errors, verified } = start('a.bin', { rate: 800_000, store });
  await until(() => verified() >= 20, 10000, '20 chunks');
  await sleep(20);
  const v2 = writeVersion('a.bin', 4096 * CHUNKS + 5);
  await assert.rejects(dl.done, (e) => e.code === 'changed' && /Restart/.test(e.message));
  assert.equal(changes.length, 1);
  assert.notEqual(changes[0].oldVersion, changes[0].newVersion);
  assert.ok(changes[0].newVersion, 'the new version is fetched for the caller');
  assert.equal(errors.length, 1);
  assert.equal(store.chunks.size, 0, 'stale chunks discarded');
  assert.equal(dl.state, 'changed');
  const n = verified();
  await sleep(400);
  assert.equal(verified(), n, 'no restart by itself');
  // Asked to, it starts over on the new version.
  dl.restart();
  assert.equal(sha256hex(await bytesOf(dl)), sha256hex(v2));
});

test('a resume refused with 412 is detected as a change and restarts when asked to', async () => {
  writeVersion('b.bin');
  const px = await startProxy(srv.url);
  try {
    const { dl, changes, verified } = start('b.bin', { base: px.url, rate: 800_000, restartOnChange: true });
    await until(() => verified() >= 20, 10000, '20 chunks');
    dl.pause();
    await sleep(50);
    const v2 = writeVersion('b.bin');
    dl.resume();
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(v2));
    assert.equal(changes.length, 1);
    assert.match(changes[0].why, /new version/);
    // The resumed request carried the old version and was refused.
    const old = changes[0].oldVersion;
    const refused = px.eventRequests().filter((r) => r.line.includes(`v=${old}`));
    assert.ok(refused.length >= 2, 'the first stream and the refused resume both named the old version');
  } finally {
    await px.close();
  }
});

test('stored chunks of an older version are discarded and the caller told', async () => {
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
});

test('a file removed mid-download fails with not_found', async () => {
  writeVersion('d.bin');
  const { dl, verified } = start('d.bin', { rate: 800_000 });
  await until(() => verified() >= 10, 10000, '10 chunks');
  const { rmSync } = await import('node:fs');
  rmSync(path.join(srv.root, 'd.bin'));
  await assert.rejects(dl.done, (e) => ['not_found', 'changed'].includes(e.code));
});
