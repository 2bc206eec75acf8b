// Pure parts of web/chunkcast.js: base64, chunk events, the SSE parser, need lists.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import {
  ChunkcastError, decodeBase64, decodeBase64Fallback, decodeBase64Into, digestsFromHex, formatNeed, maxLineFor, parseChunkData, rootOf, runs, sha256, SseParser, toHex,
} from '../../web/chunkcast.js';
import { sha256hex } from './helpers.mjs';

test('base64 fallback decodes every length and byte value like Buffer', () => {
  for (let n = 0; n < 300; n++) {
    const bytes = n === 256 ? Buffer.from(Array.from({ length: 256 }, (_, i) => i)) : randomBytes(n);
    const b64 = bytes.toString('base64');
    assert.deepEqual(Buffer.from(decodeBase64Fallback(b64)), bytes, `length ${n}`);
    assert.deepEqual(Buffer.from(decodeBase64(b64)), bytes, `length ${n} (default decoder)`);
    // Unpadded input decodes the same.
    assert.deepEqual(Buffer.from(decodeBase64Fallback(b64.replace(/=+$/, ''))), bytes);
  }
});

test('decoding into a given buffer fills it exactly, or says the length is wrong', () => {
  for (const n of [0, 1, 2, 3, 4, 255, 256, 4096]) {
    const bytes = randomBytes(n);
    const b64 = bytes.toString('base64');
    const into = new Uint8Array(n + 8).fill(7).subarray(4, 4 + n);
    assert.equal(decodeBase64Into(b64, into), n, `length ${n}`);
    assert.deepEqual(Buffer.from(into), bytes, `length ${n}`);
    assert.equal(into.buffer.byteLength, n + 8);
    assert.deepEqual([...new Uint8Array(into.buffer, 0, 4)], [7, 7, 7, 7], 'nothing written before the view');
    assert.deepEqual([...new Uint8Array(into.buffer, 4 + n, 4)], [7, 7, 7, 7], 'nothing written past the view');
    // A payload one byte longer or shorter than the chunk is refused.
    assert.equal(decodeBase64Into(randomBytes(n + 1).toString('base64'), into), -1, `length ${n} + 1`);
    if (n) assert.equal(decodeBase64Into(randomBytes(n - 1).toString('base64'), into), -1, `length ${n} - 1`);
  }
  assert.throws(() => decodeBase64Into('AA-A', new Uint8Array(3)), /base64/);
});

test('base64 fallback rejects what is not base64', () => {
  for (const bad of ['A', 'AAAAA', 'AA-A', 'AA_A', 'AA A', 'ÿÿÿÿ', 'AAA\u0100', '====', 'A===']) {
    assert.throws(() => decodeBase64Fallback(bad), /base64/, JSON.stringify(bad));
  }
});

test('a 1 MiB chunk decodes quickly with the fallback', () => {
  const bytes = randomBytes(1 << 20);
  const b64 = bytes.toString('base64');
  const t0 = performance.now();
  const out = decodeBase64Fallback(b64);
  const ms = performance.now() - t0;
  assert.deepEqual(Buffer.from(out), bytes);
  assert.ok(ms < 200, `took ${ms} ms`);
});

test('chunk events: the base64 fast path agrees with JSON.parse', () => {
  const b64 = randomBytes(100).toString('base64');
  const data = `{"i":7,"off":28672,"len":100,"sha256":"${'ab'.repeat(32)}","b64":"${b64}"}`;
  assert.deepEqual(parseChunkData(data), JSON.parse(data));
  const text = '{"i":0,"off":0,"len":9,"sha256":"00","text":"a\\"b\\n中"}';
  assert.deepEqual(parseChunkData(text), JSON.parse(text));
});

test('SHA-256, hex and root agree with node:crypto', async () => {
  const parts = [randomBytes(10), randomBytes(4096), Buffer.alloc(0)];
  const hexes = parts.map((p) => sha256hex(p));
  for (let k = 0; k < parts.length; k++) assert.equal(toHex(await sha256(parts[k])), hexes[k]);
  const digests = digestsFromHex(hexes);
  assert.equal(await rootOf(digests), sha256hex(Buffer.concat(hexes.map((h) => Buffer.from(h, 'hex')))));
  assert.throws(() => digestsFromHex(['xyz']), /bad digest/);
});

test('SSE parser: every line ending, comments, multi-line data, split at every byte', () => {
  const wire = ': hello\r\nretry: 300\n\nid: 4\r\nevent: chunk\rdata: a\ndata: b\n\ndata: c\r\n\r\nid: 9\nevent: x\ndata: partial';
  const want = [
    { type: 'chunk', data: 'a\nb', id: '4' },
    { type: 'message', data: 'c', id: '4' },
  ];
  const bytes = new TextEncoder().encode(wire);
  for (let split = 0; split <= bytes.length; split++) {
    const got = [];
    const p = new SseParser((e) => got.push(e));
    p.push(bytes.subarray(0, split));
    p.push(bytes.subarray(split));
    p.end();
    assert.deepEqual(got, want, `split at ${split}`);
    assert.equal(p.retry, 300);
  }
  // A multi-byte character split across reads.
  const got = [];
  const p = new SseParser((e) => got.push(e));
  const u = new TextEncoder().encode('data: 名前\n\n');
  for (const b of u) p.push(Uint8Array.of(b));
  assert.deepEqual(got, [{ type: 'message', data: '名前', id: '' }]);
});

test('runs and need lists', () => {
  const missing = new Set([0, 1, 2, 5, 7, 8]);
  const r = runs(10, (i) => missing.has(i));
  assert.deepEqual(r, [[0, 3], [5, 6], [7, 9]]);
  assert.deepEqual(formatNeed(r), { need: '0-2,5,7-8', covered: 3 });
  assert.deepEqual(formatNeed(r, 6), { need: '0-2,5', covered: 2 });
  assert.deepEqual(runs(3, () => false), []);
});

test('the SSE parser refuses a line that never ends, instead of buffering it without limit', () => {
  const events = [];
  const p = new SseParser((e) => events.push(e), { maxLine: 1000 });
  p.push(new TextEncoder().encode('event: chunk\ndata: ok\n\n'));
  assert.equal(events.length, 1);
  const piece = new TextEncoder().encode('x'.repeat(300));
  p.push(piece);
  p.push(piece);
  p.push(piece);
  assert.throws(() => p.push(piece), (e) => e instanceof ChunkcastError && e.code === 'protocol' && /longer than 1000 characters/.test(e.message));
  assert.ok(p.parts.length === 0 && p.partsLength === 0, 'the buffer is released');
});

test('the SSE parser refuses an event made of endless short data lines', () => {
  const p = new SseParser(() => assert.fail('no event'), { maxLine: 1000 });
  const line = new TextEncoder().encode(`data: ${'y'.repeat(50)}\n`);
  assert.throws(() => { for (let k = 0; k < 100; k++) p.push(line); }, (e) => e.code === 'protocol' && /an event longer/.test(e.message));
});

test('the SSE line limit leaves room for the largest legal chunk event', () => {
  const chunk = 16 << 20;
  // A text chunk of control characters: each byte is escaped as \u00XX.
  assert.ok(maxLineFor(chunk) > 6 * chunk + 1000);
  assert.ok(maxLineFor(4096) < 5 << 20, 'and stays a few MiB for small chunks');
  const events = [];
  const p = new SseParser((e) => events.push(e), { maxLine: maxLineFor(4096) });
  const data = JSON.stringify({ i: 0, off: 0, len: 4096, sha256: '0'.repeat(64), text: '\u0001'.repeat(4096) });
  p.push(new TextEncoder().encode(`event: chunk\ndata: ${data}\n\n`));
  assert.equal(events.length, 1);
});
