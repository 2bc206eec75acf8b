// Failures are labelled by their real cause: only storage failures are called
// `storage` (a programming error used to be shown as "the browser's storage
// failed").
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { asError, ChunkcastError } from '../../web/chunkcast.js';

test('a ChunkcastError keeps its code', () => {
  const e = new ChunkcastError('corrupt', 'x');
  assert.equal(asError(e), e);
});

test('a programming error is internal, never storage', () => {
  for (const e of [new TypeError("Cannot read properties of undefined (reading 'digest')"), new RangeError('bad'), new ReferenceError('x is not defined'), 'a string', null]) {
    const got = asError(e);
    assert.equal(got.code, 'internal', String(e));
    assert.match(got.message, /unexpected error in chunkcast\.js/);
  }
});

test('a full quota is storage', () => {
  const quota = Object.assign(new Error('quota exceeded'), { name: 'QuotaExceededError' });
  assert.equal(asError(quota).code, 'storage');
  if (typeof DOMException === 'function') assert.equal(asError(new DOMException('full', 'QuotaExceededError')).code, 'storage');
});

test('a failed fetch or an abort is the network: server_down', () => {
  assert.equal(asError(new TypeError('Failed to fetch')).code, 'server_down');
  assert.equal(asError(new TypeError('fetch failed')).code, 'server_down');
  assert.equal(asError(new DOMException('aborted', 'AbortError')).code, 'server_down');
});
