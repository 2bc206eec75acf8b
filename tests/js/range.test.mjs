// The one range reader (web/lib/transport/range.js), which both transports
// use (the EventSource transport on the page, the worker transport in its
// worker), against a real server: what it hands on, and what it keeps of a
// refusal (the server's code and words); and the server's limits, which the
// client's constants (protocol.js MAX_RANGE, MAX_NEED) must equal.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { MAX_NEED, MAX_RANGE, parseChunkData } from '../../web/chunkcast.js';
import { readRange } from '../../web/lib/transport/range.js';
import { pseudoRandom, startServer } from './helpers.mjs';

let srv; // --max-range 4
let plain; // the default limits
let version = '';
before(async () => {
  const files = { 'r.bin': pseudoRandom(4096 * 300, 5) }; // 300 chunks of 4 KiB
  srv = await startServer({ files, args: ['--max-range', '4'] });
  plain = await startServer({ files });
  version = (await (await fetch(`${srv.url}api/manifest?file=r.bin`)).json()).version;
});
after(async () => {
  await srv?.stop();
  await plain?.stop();
});

/** Reads `/events/chunk/a/b` of r.bin; `v` defaults to the file's version. */
async function range(a, b, { base = srv.url, v = version } = {}) {
  const chunks = [];
  const r = await readRange({
    fetch: globalThis.fetch, url: `${base}events/chunk/${a}/${b}?file=r.bin&v=${v}`, label: `${a}..${b}`,
    ctl: new AbortController(), stallTimeout: 10000, maxLine: 1 << 20, onChunk: (data) => chunks.push(parseChunkData(data).i),
  });
  return { ...r, chunks };
}

test('a whole range hands on each chunk and ends without a failure', async () => {
  const r = await range(2, 6);
  assert.deepEqual(r.chunks, [2, 3, 4, 5]);
  assert.deepEqual({ failure: r.failure, code: r.code, broken: r.broken, status: r.status }, { failure: null, code: null, broken: null, status: 200 });
});

test("a refused range keeps the server's code and words", async () => {
  const r = await range(0, 10);
  assert.equal(r.status, 416);
  assert.equal(r.code, 'range_not_satisfiable');
  assert.match(r.failure, /^range 0\.\.10 answered 416: 10 chunks asked, at most 4 per request$/);
  assert.deepEqual(r.chunks, []);
});

test('another version is `changed` (412), a file that is not there `gone` (404)', async () => {
  assert.equal((await range(0, 2, { v: '0000000000000000' })).failure, 'changed');
  const gone = await readRange({
    fetch: globalThis.fetch, url: `${srv.url}events/chunk/0/2?file=nothing.bin`, label: '0..2',
    ctl: new AbortController(), stallTimeout: 10000, maxLine: 1 << 20, onChunk: () => assert.fail('no chunk'),
  });
  assert.equal(gone.failure, 'gone');
  assert.equal(gone.status, 404);
});

test("the client's limits are the server's: max_range and max_need in the manifest, and where the server draws the line", async () => {
  const m = await (await fetch(`${plain.url}api/manifest?file=r.bin`)).json();
  assert.equal(m.max_range, MAX_RANGE);
  assert.equal(m.max_need, MAX_NEED);
  // MAX_RANGE chunks in one request are served; one more is refused.
  const most = await range(0, MAX_RANGE, { base: plain.url });
  assert.equal(most.failure, null);
  assert.equal(most.chunks.length, MAX_RANGE);
  const over = await range(0, MAX_RANGE + 1, { base: plain.url });
  assert.equal(over.status, 416);
  assert.match(over.failure, new RegExp(`at most ${MAX_RANGE} per request`));
  // A need= list of MAX_NEED characters is taken; one character more is 414.
  const need = (/** @type {number} */ n) => `${'0,'.repeat((n - 2) / 2)}00${'0'.repeat(n % 2)}`;
  assert.equal(need(MAX_NEED).length, MAX_NEED);
  const ask = async (/** @type {string} */ list) => {
    const res = await fetch(`${plain.url}events?file=r.bin&need=${list}`, { headers: { accept: 'text/event-stream' } });
    await res.body?.cancel();
    return res.status;
  };
  assert.equal(await ask(need(MAX_NEED)), 200);
  assert.equal(await ask(need(MAX_NEED + 1)), 414);
});
