// The SSE parser (web/lib/sse.js) that reads the worker transport's streams
// and every range refill: the HTML standard's line and field rules, whatever
// the split of the stream into reads (a UTF-8 character split included), and
// a bounded buffer. Pure, so no server.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SseParser, parseChunkData } from '../../web/lib/sse.js';

const enc = new TextEncoder();

/** Parses the bytes pushed in the given reads; returns the events and the parser. */
function parse(/** @type {Uint8Array[]} */ reads, opts = {}) {
  const events = [];
  const p = new SseParser((ev) => events.push({ type: ev.type, data: ev.data, id: ev.id }), opts);
  for (const r of reads) p.push(r);
  p.end();
  return { events, p };
}

/** Every way of cutting `bytes` into two reads, and into reads of each size 1..7. */
function splits(/** @type {Uint8Array} */ bytes) {
  const out = [];
  for (let k = 0; k <= bytes.length; k++) out.push([bytes.slice(0, k), bytes.slice(k)]);
  for (let n = 1; n < 8; n++) {
    const reads = [];
    for (let k = 0; k < bytes.length; k += n) reads.push(bytes.slice(k, k + n));
    out.push(reads);
  }
  return out;
}

const STREAM = 'retry: 1287\n\nevent: meta\ndata: {"a":"文字 😀"}\n\nid: 0\nevent: chunk\ndata: {"i":0,"b64":"AAEC"}\n\n'
  + ': keep-alive\r\nid: 1\r\nevent: chunk\r\ndata: line one\r\ndata:line two\r\n\r\n'
  + 'id: 2\revent: end\rdata: {"chunks":3}\r\r';

const WANT = [
  { type: 'meta', data: '{"a":"文字 😀"}', id: '' },
  { type: 'chunk', data: '{"i":0,"b64":"AAEC"}', id: '0' },
  { type: 'chunk', data: 'line one\nline two', id: '1' },
  { type: 'end', data: '{"chunks":3}', id: '2' },
];

test('events, comments, retry, multi-line data and multi-byte characters are parsed alike for LF, CRLF and CR, however the stream is split', () => {
  for (const reads of splits(enc.encode(STREAM))) {
    const { events, p } = parse(reads);
    assert.deepEqual(events, WANT, `split ${reads.map((r) => r.length).join('+')}`);
    assert.equal(p.retry, 1287);
  }
});

test('a CRLF split across two reads is one line end, not a line end and a blank line', () => {
  const { events } = parse([enc.encode('data: a\r'), enc.encode('\ndata: b\r\n\r\n')]);
  assert.deepEqual(events, [{ type: 'message', data: 'a\nb', id: '' }]);
});

test('the last event id is that of the last whole event: an event cut before its blank line does not count', () => {
  const p = new SseParser(() => {});
  p.push(enc.encode('id: 5\nevent: chunk\ndata: x\n\nid: 6\nevent: chunk\ndata: partial'));
  p.end();
  assert.equal(p.lastId, '5');
  // An id with NUL is ignored; an empty id resets it.
  const q = parse([enc.encode('id: 7\ndata: a\n\nid: 8\0\ndata: b\n\nid\ndata: c\n\n')]);
  assert.deepEqual(q.events.map((e) => e.id), ['7', '7', '']);
});

test('a partial event at the end of the stream is dropped; an event without data is not dispatched', () => {
  const { events } = parse([enc.encode('event: meta\n\nevent: chunk\ndata: half')]);
  assert.deepEqual(events, []);
});

test('a bad retry (not only digits) is ignored; a field without colon has an empty value', () => {
  const { p, events } = parse([enc.encode('retry: 12a\nretry\ndata\n\n')]);
  assert.equal(p.retry, null);
  assert.deepEqual(events, [{ type: 'message', data: '', id: '' }]);
});

test('a long data line spanning many reads arrives whole', () => {
  const payload = 'A'.repeat(300_000);
  const bytes = enc.encode(`id: 1\nevent: chunk\ndata: ${payload}\n\nid: 2\nevent: chunk\ndata: ${payload}B\n\n`);
  const reads = [];
  for (let k = 0; k < bytes.length; k += 65536) reads.push(bytes.slice(k, k + 65536));
  const { events } = parse(reads);
  assert.equal(events.length, 2);
  assert.equal(events[0].data, payload);
  assert.equal(events[1].data, `${payload}B`);
});

test('a line or an event over maxLine characters is a protocol error, not an unbounded buffer', () => {
  const p = new SseParser(() => {}, { maxLine: 1000 });
  assert.throws(() => { for (let k = 0; k < 10; k++) p.push(enc.encode('x'.repeat(200))); }, (e) => e.code === 'protocol');
  const q = new SseParser(() => {}, { maxLine: 1000 });
  assert.throws(() => q.push(enc.encode('data: 0123456789\n'.repeat(100))), (e) => e.code === 'protocol');
});

test("a chunk event's base64 is sliced out of its data; a text chunk is parsed whole", () => {
  const head = '{"i":3,"off":12,"len":3,"sha256":"ab"';
  assert.deepEqual(parseChunkData(`${head},"b64":"AAEC"}`), { i: 3, off: 12, len: 3, sha256: 'ab', b64: 'AAEC' });
  assert.deepEqual(parseChunkData(`${head},"text":"b64\\"}"}`), { i: 3, off: 12, len: 3, sha256: 'ab', text: 'b64"}' });
  assert.throws(() => parseChunkData('{"i":3,'));
});
