// The worker transport's chunk sink (web/lib/transport/sink.js), run in Node
// with Node's own WebCrypto: each chunk is reported exactly once, as
// verified or failed, whenever its bytes are written relative to its digest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { ChunkSink } from '../../web/lib/transport/sink.js';

const CHUNK = 8;
const FILE = Buffer.from('chunkcast sink test: five chunks');

/**
 * A sink over FILE (8-byte chunks) writing into `disk`, and what it told the
 * page. `afterDigest(sink)`, if given, runs as each digest (WebCrypto's) comes in.
 * @param {(sink: ChunkSink) => void} [afterDigest]
 */
function sinkOver(afterDigest) {
  const chunks = Math.ceil(FILE.length / CHUNK);
  const expected = new Uint8Array(chunks * 32);
  for (let i = 0; i < chunks; i++) expected.set(createHash('sha256').update(FILE.subarray(i * CHUNK, (i + 1) * CHUNK)).digest(), i * 32);
  const disk = new Uint8Array(FILE.length);
  const verified = new Set();
  /** @type {import('../../web/lib/transport/sink.js').Notice[]} */
  const notices = [];
  const sink = new ChunkSink({
    manifest: { kind: 'binary', size: FILE.length, chunks, chunk_size: CHUNK },
    expected,
    isVerified: (i) => verified.has(i),
    write: (off, bytes) => disk.set(bytes, off),
    markVerified: (i) => verified.add(i),
    post: (n) => notices.push(n),
    digest: (b) => crypto.subtle.digest('SHA-256', b).then((d) => { afterDigest?.(sink); return d; }),
  });
  return { sink, disk, notices, verified };
}

/** Chunk `i`'s event data, as the server sends it; `flip` changes one payload byte. */
function event(i, flip = false) {
  const bytes = Buffer.from(FILE.subarray(i * CHUNK, (i + 1) * CHUNK));
  if (flip) bytes[0] ^= 1;
  const sha = createHash('sha256').update(FILE.subarray(i * CHUNK, (i + 1) * CHUNK)).digest('hex');
  return new TextEncoder().encode(JSON.stringify({ i, off: i * CHUNK, len: bytes.length, sha256: sha, b64: bytes.toString('base64') }));
}

/** Resolves after `n` turns of the microtask queue. */
async function ticks(n) {
  for (let k = 0; k < n; k++) await null;
}

test('a corrupted chunk is reported failed once and a good one verified once, however the write and the digest interleave', async () => {
  // The stage is written (as when the next chunk fills it) at every point
  // of the digest's settling: a write between the digest's outcome and its
  // bookkeeping once reported a failed chunk twice (3 failures for 2 corruptions).
  for (let depth = 0; depth < 8; depth++) {
    const { sink, disk, notices, verified } = sinkOver((s) => { ticks(depth).then(() => s._write()); });
    sink.chunk(event(0, true));
    sink.chunk(event(1));
    clearTimeout(sink.stageTimer); // no timed write: only the one the digest schedules
    await Promise.all([...sink.inflight]);
    await ticks(depth + 2);
    await sink.idle();
    sink.flush();
    const failed = notices.flatMap((n) => n.failed.map(([i]) => i));
    const ok = notices.flatMap((n) => n.verified);
    assert.deepEqual(failed, [0], `write after ${depth} microtasks: chunk 0 failed exactly once`);
    assert.deepEqual(ok, [1], `write after ${depth} microtasks: chunk 1 verified exactly once`);
    assert.deepEqual([...verified], [1]);
    assert.deepEqual(Buffer.from(disk.subarray(CHUNK, 2 * CHUNK)), FILE.subarray(CHUNK, 2 * CHUNK));
    sink.close();
  }
});

test('a refill of the failed chunk verifies it; a second copy while one is in hand is dropped', async () => {
  const { sink, disk, notices } = sinkOver();
  sink.chunk(event(2, true));
  await sink.idle();
  sink.chunk(event(2));
  sink.chunk(event(2)); // arrives while the first good copy is being hashed
  await sink.idle();
  assert.deepEqual(notices.flatMap((n) => n.failed.map(([i]) => i)), [2]);
  assert.deepEqual(notices.flatMap((n) => n.verified), [2]);
  assert.deepEqual(Buffer.from(disk.subarray(2 * CHUNK, 3 * CHUNK)), FILE.subarray(2 * CHUNK, 3 * CHUNK));
});
