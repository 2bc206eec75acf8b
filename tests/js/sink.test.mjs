// The worker transport's chunk sink (web/lib/transport/sink.js), run in Node
// with Node's own WebCrypto, its puts written by a stand-in for the storage
// worker's `put` (the real one needs OPFS: tests/browser/transport.test.mjs
// runs the whole path in Chromium). What must hold however the storage
// answers: each chunk is reported exactly once, as verified or failed; a
// chunk is reported verified only after storage wrote it; only verified
// chunks are put; the reader waits while too many puts are out.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { ChunkSink } from '../../web/lib/transport/sink.js';

const CHUNK = 8;
const FILE = Buffer.from('chunkcast sink test: five chunks!'); // the last one byte
const CHUNKS = Math.ceil(FILE.length / CHUNK);
const sha = (/** @type {Uint8Array} */ b) => createHash('sha256').update(b).digest();

/**
 * A sink over FILE (8-byte chunks); its puts land in `disk` when `storage.answer()` runs them.
 * @param {'now'|'microtask'|'later'|'manual'} when  when storage writes and answers a put
 * @param {Uint8Array} [onDisk]  chunks on disk before
 */
function sinkOver(when, onDisk) {
  const expected = new Uint8Array(CHUNKS * 32);
  for (let i = 0; i < CHUNKS; i++) expected.set(sha(FILE.subarray(i * CHUNK, (i + 1) * CHUNK)), i * 32);
  const disk = new Uint8Array(FILE.length);
  /** @type {number[]} chunks written, in order */
  const written = [];
  /** @type {(() => void)[]} */
  const queue = [];
  const notices = [];
  /** @type {ChunkSink} */
  const sink = new ChunkSink({
    manifest: { kind: 'binary', size: FILE.length, chunks: CHUNKS, chunk_size: CHUNK },
    expected,
    onDisk,
    put: (buf, list) => {
      const run = () => {
        const all = new Uint8Array(buf);
        for (const { i, off, at, len } of list) { disk.set(all.subarray(at, at + len), off); written.push(i); }
        sink.written(buf);
      };
      if (when === 'now') run();
      else if (when === 'microtask') queueMicrotask(run);
      else if (when === 'later') setTimeout(run, 5);
      else queue.push(run);
    },
    post: (n) => {
      // Every chunk reported verified is on disk already.
      for (const i of n.verified) assert.ok(written.includes(i), `chunk ${i} reported verified before it was written`);
      notices.push(n);
    },
  });
  const storage = { answer: () => { for (const run of queue.splice(0)) run(); }, pending: () => queue.length };
  return { sink, disk, notices, written, storage };
}

/** Chunk `i`'s event data, as the server sends it; `flip` changes one payload byte. */
function event(i, flip = false) {
  const bytes = Buffer.from(FILE.subarray(i * CHUNK, (i + 1) * CHUNK));
  if (flip) bytes[0] ^= 1;
  const digest = sha(FILE.subarray(i * CHUNK, (i + 1) * CHUNK)).toString('hex');
  return JSON.stringify({ i, off: i * CHUNK, len: bytes.length, sha256: digest, b64: bytes.toString('base64') });
}

const reported = (/** @type {any[]} */ notices) => ({
  failed: notices.flatMap((n) => n.failed.map(([i]) => i)),
  verified: notices.flatMap((n) => n.verified),
});

/** Chunk numbers told `received`, in order. */
const received = (/** @type {any[]} */ notices) => notices.flatMap((n) => n.received);

for (const when of /** @type {const} */ (['now', 'microtask', 'later'])) {
  test(`storage answering ${when}: a corrupted chunk fails once and is never put; the others are verified once, after they are written`, async () => {
    const { sink, disk, notices, written } = sinkOver(when);
    for (let i = 0; i < CHUNKS; i++) sink.chunk(event(i, i === 1));
    sink.chunk(event(3)); // a second copy while the first is in hand
    await sink.idle();
    assert.deepEqual(reported(notices), { failed: [1], verified: [0, 2, 3, 4] });
    assert.deepEqual(written, [0, 2, 3, 4]);
    assert.deepEqual(Buffer.from(disk.subarray(CHUNK, 2 * CHUNK)), Buffer.alloc(CHUNK), 'nothing of the bad copy written');
    // Its refill: verified and written; a copy of a chunk on disk is dropped.
    sink.chunk(event(1));
    sink.chunk(event(2));
    await sink.idle();
    assert.deepEqual(reported(notices), { failed: [1], verified: [0, 2, 3, 4, 1] });
    assert.deepEqual(Buffer.from(disk), FILE);
    // Each copy taken in is told received once (as the EventSource transport
    // tells it), never after it was told verified; copies dropped are not.
    assert.deepEqual(received(notices), [0, 1, 2, 3, 4, 1]);
    notices.forEach((n, k) => {
      const before = notices.slice(0, k + 1).flatMap((m) => m.received);
      for (const i of n.verified) assert.ok(before.includes(i), `chunk ${i} verified before it was told received`);
    });
  });
}

test('a chunk already on disk when the sink was made is not taken again', async () => {
  const { sink, notices, written } = sinkOver('now', Uint8Array.of(0b1));
  sink.chunk(event(0));
  sink.chunk(event(1));
  await sink.idle();
  assert.deepEqual(written, [1]);
  assert.equal(notices.length, 1);
});

test('the reader waits while the most puts allowed are out, and goes on when storage answers', async () => {
  const { sink, storage, notices } = sinkOver('manual');
  assert.equal(sink.maxShipped, 8, '32 MiB of 4 MiB stages');
  sink.maxShipped = 3; // as with 16 MiB chunks: this file has five chunks
  for (let i = 0; i < 3; i++) {
    sink.chunk(event(i));
    sink._ship(); // as when a stage fills
  }
  await new Promise((r) => setTimeout(r, 20)); // the digests come in, the puts go out
  assert.equal(storage.pending(), 3);
  const room = sink.room();
  assert.ok(room, 'no room with three puts out');
  let roomy = false;
  room.then(() => { roomy = true; });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(roomy, false, 'still waiting: storage has not answered');
  assert.deepEqual(reported(notices).verified, [], 'nothing verified before it is written');
  storage.answer();
  await room;
  assert.equal(sink.room(), null);
  await sink.idle();
  assert.deepEqual(reported(notices).verified, [0, 1, 2]);
});

test('closed while puts are out: idle() does not hang, and nothing more is reported', async () => {
  const { sink, storage, notices } = sinkOver('manual');
  sink.chunk(event(0));
  sink._ship();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(storage.pending(), 1);
  const idle = sink.idle();
  sink.close();
  await idle;
  storage.answer(); // a late answer
  sink.flush();
  assert.deepEqual(notices, []);
});

test('raw bytes (the raw path): copied in, verified against the manifest, put once; a wrong one fails and is counted as raw', async () => {
  const { sink, disk, notices, written } = sinkOver('later');
  const bytes = (/** @type {number} */ i) => new Uint8Array(FILE.subarray(i * CHUNK, (i + 1) * CHUNK));
  assert.equal(sink.raw(0, bytes(0)), true);
  const bad = bytes(1);
  bad[3] ^= 1;
  assert.equal(sink.raw(1, bad), true);
  assert.equal(sink.raw(0, bytes(0)), false, 'a copy of a chunk in hand is refused');
  assert.equal(sink.raw(2, bytes(2).subarray(1)), false, 'not the chunk\'s length');
  assert.equal(sink.raw(CHUNKS, bytes(0)), false, 'past the last chunk');
  for (let i = 2; i < CHUNKS; i++) assert.equal(sink.raw(i, bytes(i)), true);
  await sink.idle();
  assert.deepEqual(reported(notices), { failed: [1], verified: [0, 2, 3, 4] });
  assert.deepEqual(written, [0, 2, 3, 4]);
  assert.equal(sink.rawFailures, 1);
  assert.equal(notices.reduce((a, n) => a + n.bytes, 0), FILE.length, 'each chunk taken counted once');
  sink.chunk(event(1)); // its refill through the event stream: not a raw failure if it failed
  await sink.idle();
  assert.deepEqual(Buffer.from(disk), FILE);
  assert.equal(sink.rawFailures, 1);
});

test('a raw text chunk\'s text is told once it is verified, decoded from its bytes', async () => {
  const text = 'ab€dé🎉fgh'; // chunks end on character boundaries, as a text manifest's offsets say
  const all = Buffer.from(text);
  const offsets = [0, 5, 12]; // `ab€` `dé🎉` `fgh`
  const sizes = offsets.map((o, k) => (k + 1 < offsets.length ? offsets[k + 1] : all.length) - o);
  const expected = new Uint8Array(offsets.length * 32);
  offsets.forEach((o, k) => expected.set(sha(all.subarray(o, o + sizes[k])), k * 32));
  const notices = [];
  const sink = new ChunkSink({
    manifest: { kind: 'text', size: all.length, chunks: offsets.length, chunk_size: 8, offsets },
    expected,
    put: (buf) => setTimeout(() => sink.written(buf), 1),
    post: (n) => notices.push(n),
  });
  offsets.forEach((o, k) => assert.equal(sink.raw(k, new Uint8Array(all.subarray(o, o + sizes[k]))), true));
  await sink.idle();
  const texts = notices.flatMap((n) => n.texts).sort((a, b) => a[0] - b[0]);
  assert.deepEqual(texts.map(([i]) => i), [0, 1, 2]);
  assert.equal(texts.map(([, t]) => t).join(''), text);
});
