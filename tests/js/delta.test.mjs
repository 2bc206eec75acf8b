// A file that grows or changes in place (issue 23, item 5): a new version
// whose chunks at the same index, offset and length have the same SHA-256
// keeps them. A download in progress moves to the new version and fetches
// only the chunks it did not have verified; a resumed download of an older
// version keeps the matching stored chunks. Real server, the library in Node.
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Download, MemoryStore } from '../../web/chunkcast.js';
import { repeats } from '../../web/lib/delta.js';
import { pseudoRandom, sha256hex, startServer, until } from './helpers.mjs';

const CHUNK = 4096;
const CHUNKS = 200;
let srv;
before(async () => { srv = await startServer({ chunkSize: '4K', args: ['--retry-ms', '100'] }); });
after(async () => { await srv?.stop(); });

const file = (name) => path.join(srv.root, name);

/**
 * Starts a download of `name` that records, per chunk, how often it was
 * verified from the network after the last `onchanged` (chunks kept from
 * storage are told before `onchanged`, so they are not counted).
 */
function start(name, opts = {}) {
  const rec = { verified: 0, changes: [], afterChange: new Map(), receivedAtChange: 0, errors: [] };
  const dl = new Download(name, {
    base: srv.url,
    EventSource,
    backoffBase: 50,
    onchunk: (i, s) => {
      if (s !== 'verified' && s !== 'refetched') return;
      rec.verified++;
      if (rec.changes.length) rec.afterChange.set(i, (rec.afterChange.get(i) ?? 0) + 1);
    },
    onchanged: (c) => { rec.changes.push(c); rec.afterChange.clear(); rec.receivedAtChange = dl.progress().bytesReceived; },
    onerror: (e) => rec.errors.push(e),
    ...opts,
  });
  dl.start();
  return { dl, rec };
}

const bytesOf = async (dl) => Buffer.from(await (await dl.done).blob.arrayBuffer());

test('repeats: the same index, offset, length and digest; nothing moved, resized, rewritten or past the end', () => {
  const h = (n) => n.toString(16).padStart(64, '0');
  const d = (n) => Uint8Array.from(Buffer.from(h(n), 'hex'));
  const m = { kind: 'binary', size: 3 * CHUNK + 10, chunk_size: CHUNK, chunks: 4, hashes: [h(1), h(2), h(3), h(4)] };
  assert.equal(repeats(m, 1, CHUNK, CHUNK, d(2)), true);
  assert.equal(repeats(m, 1, CHUNK, CHUNK, d(3)), false, 'rewritten');
  assert.equal(repeats(m, 1, CHUNK + 1, CHUNK, d(2)), false, 'moved');
  assert.equal(repeats(m, 3, 3 * CHUNK, CHUNK, d(4)), false, 'the old last chunk grew');
  assert.equal(repeats(m, 3, 3 * CHUNK, 10, d(4)), true);
  assert.equal(repeats(m, 4, 4 * CHUNK, CHUNK, d(5)), false, 'past the end');
  assert.equal(repeats(m, 0, undefined, CHUNK, d(1)), false, 'a record without its offset');
  const text = { kind: 'text', size: 30, chunk_size: CHUNK, chunks: 2, hashes: [h(1), h(2)], offsets: [0, 12] };
  assert.equal(repeats(text, 1, 12, 18, d(2)), true);
  assert.equal(repeats(text, 1, 11, 18, d(2)), false);
});

test('a file appended to mid-download: every verified chunk is kept, only the rest is fetched, verified against the new root', async () => {
  const v1 = pseudoRandom(CHUNK * CHUNKS, 11);
  writeFileSync(file('grow.bin'), v1);
  const { dl, rec } = start('grow.bin', { rate: 400_000 });
  await until(() => rec.verified >= 40, 15000, '40 chunks');
  const before = rec.verified;
  const tail = pseudoRandom(10 * CHUNK + 100, 12);
  appendFileSync(file('grow.bin'), tail);
  // Found by the stream in progress (`event: error` code `changed`), then as fast as it goes.
  await until(() => rec.changes.length === 1, 10000, 'the change');
  dl.setRate(0);
  const got = await bytesOf(dl);
  const v2 = Buffer.concat([v1, tail]);
  assert.equal(sha256hex(got), sha256hex(v2));
  assert.equal(dl.manifest.size, v2.length);
  assert.equal(rec.changes.length, 1, JSON.stringify(rec.changes));
  const c = rec.changes[0];
  assert.equal(c.total, CHUNKS + 11);
  assert.equal(c.stored, false);
  assert.notEqual(c.oldVersion, c.newVersion);
  assert.equal(c.newVersion, dl.manifest.version);
  assert.ok(c.kept >= before, `kept ${c.kept}, ${before} were verified when the file grew`);
  assert.ok(c.kept < CHUNKS, 'the download was in progress');
  assert.equal(dl.progress().chunksResumed, c.kept);
  // After the change: each chunk not kept fetched once, no kept chunk again.
  assert.equal(rec.afterChange.size, c.total - c.kept);
  assert.ok([...rec.afterChange.values()].every((n) => n === 1));
  const received = dl.progress().bytesReceived - rec.receivedAtChange;
  assert.ok(received <= (c.total - c.kept) * CHUNK, `${received} bytes received after the change for ${c.total - c.kept} chunks`);
  assert.equal(rec.errors.length, 0);
});

test('a few bytes overwritten in the middle: only the chunk holding them (and those not yet fetched) is fetched again', async () => {
  const v1 = pseudoRandom(CHUNK * CHUNKS, 21);
  writeFileSync(file('edit.bin'), v1);
  const { dl, rec } = start('edit.bin', { rate: 400_000 });
  await until(() => rec.verified >= 100, 15000, '100 chunks');
  const before = rec.verified;
  const fd = openSync(file('edit.bin'), 'r+');
  writeSync(fd, Buffer.from('chunkcast!'), 0, 10, 50 * CHUNK + 7);
  closeSync(fd);
  dl.setRate(0);
  const got = await bytesOf(dl);
  const v2 = Buffer.from(v1);
  v2.write('chunkcast!', 50 * CHUNK + 7);
  assert.equal(sha256hex(got), sha256hex(v2));
  assert.equal(rec.changes.length, 1);
  const c = rec.changes[0];
  assert.equal(c.total, CHUNKS);
  assert.ok(c.kept >= before - 1 && c.kept < CHUNKS - 1, `kept ${c.kept} with ${before} verified`);
  assert.equal(rec.afterChange.get(50), 1, 'the edited chunk is fetched again');
  assert.equal(rec.afterChange.size, CHUNKS - c.kept);
  for (const i of [0, 1, 49, 51, 99]) assert.equal(rec.afterChange.has(i), false, `chunk ${i} was kept`);
});

test('a resumed download whose stored chunks are of an older version keeps those the new version repeats', async () => {
  const v1 = pseudoRandom(CHUNK * CHUNKS + 1000, 31);
  writeFileSync(file('log.bin'), v1);
  const store = new MemoryStore();
  const first = start('log.bin', { rate: 400_000, store });
  await until(() => first.rec.verified >= 60, 15000, '60 chunks');
  first.dl.pause();
  await first.dl.close();
  const stored = store.chunks.size;
  assert.ok(stored >= 60);
  // The file grows: its last chunk (1000 bytes) is longer now, the rest repeat.
  const tail = pseudoRandom(5 * CHUNK, 32);
  appendFileSync(file('log.bin'), tail);
  const { dl, rec } = start('log.bin', { store });
  const got = await bytesOf(dl);
  assert.equal(sha256hex(got), sha256hex(Buffer.concat([v1, tail])));
  assert.equal(rec.changes.length, 1);
  const c = rec.changes[0];
  assert.equal(c.stored, true);
  assert.match(c.why, /older version/);
  assert.equal(c.kept, stored, 'every stored chunk is repeated (the old last one was never fetched)');
  assert.equal(c.total, Math.ceil((v1.length + tail.length) / CHUNK));
  assert.equal(dl.progress().chunksResumed, stored);
  assert.equal(rec.afterChange.size, c.total - c.kept);
  assert.ok(dl.progress().bytesReceived <= (c.total - c.kept) * CHUNK);
});

test('a finished download of an older version, appended to: only the grown last chunk and the new ones are fetched', async () => {
  const v1 = pseudoRandom(CHUNK * 20 + 500, 41);
  writeFileSync(file('done.bin'), v1);
  const store = new MemoryStore();
  const first = start('done.bin', { store });
  await first.dl.done;
  const tail = Buffer.from('one more line\n'.repeat(700));
  appendFileSync(file('done.bin'), tail);
  const { dl, rec } = start('done.bin', { store });
  assert.equal(sha256hex(await bytesOf(dl)), sha256hex(Buffer.concat([v1, tail])));
  const c = rec.changes[0];
  assert.equal(c.kept, 20);
  assert.deepEqual([...rec.afterChange.keys()].sort((a, b) => a - b), Array.from({ length: c.total - 20 }, (_, k) => 20 + k));
});
