// The SHA-256 that needs no WebCrypto (web/vendor/ hash-wasm, used where the
// page is not a secure context), checked against Node's OpenSSL.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { rootOf, sha256, sha256Fallback, toHex } from '../../web/chunkcast.js';

const node = (/** @type {Uint8Array} */ b) => createHash('sha256').update(b).digest('hex');

test('the fallback SHA-256 matches OpenSSL at every block boundary and on 1 MiB', async () => {
  // 55/56: the last length that fits the padding in one block, and the first
  // that does not; 63/64/65 around one block.
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 1 << 20]) {
    const bytes = n === 1 << 20 ? Uint8Array.from({ length: n }, (_, i) => (i * 31) & 255) : randomBytes(n);
    assert.equal(toHex(await sha256Fallback(bytes)), node(bytes), `${n} bytes`);
  }
  assert.equal(toHex(await sha256Fallback(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('the fallback gives each call its own result (no shared output buffer)', async () => {
  const a = await sha256Fallback(new Uint8Array([1]));
  const keep = toHex(a);
  const b = await sha256Fallback(new Uint8Array([2]));
  assert.equal(toHex(a), keep);
  assert.notEqual(toHex(b), keep);
});

test('the fallback agrees with WebCrypto on random sizes, and on a root of digests', async () => {
  for (let k = 0; k < 50; k++) {
    const bytes = randomBytes(Math.floor(Math.random() * 300_000));
    assert.equal(toHex(await sha256Fallback(bytes)), toHex(await sha256(bytes)));
  }
  const digests = randomBytes(32 * 100);
  assert.equal(await rootOf(digests), node(digests));
});
