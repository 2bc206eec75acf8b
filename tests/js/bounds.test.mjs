// A server that never ends a line cannot make the client buffer without
// limit: the range response's SSE parser stops at a few MiB above the
// largest legal event and the download fails with a clear `protocol` error.
// The real chunkcast server serves the manifest and the stream (through the
// test proxy, which corrupts one chunk so a range request is needed); the
// range request goes to a hostile server on a real socket that streams one
// endless line.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Download, MemoryStore, checkManifest } from '../../web/chunkcast.js';
import { pseudoRandom, startProxy, startServer } from './helpers.mjs';

let srv;
before(async () => { srv = await startServer({ files: { 'a.bin': pseudoRandom(4096 * 50, 9) } }); });
after(async () => { await srv?.stop(); });

test('an endless line in a range response ends the download with a protocol error, after a bounded read', async () => {
  let sent = 0;
  let closed;
  const done = new Promise((resolve) => { closed = resolve; });
  const piece = 'x'.repeat(64 << 10);
  const hostile = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: chunk\ndata: ');
    const pump = () => {
      while (!res.destroyed && sent < (256 << 20)) {
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
    };
    res.on('close', () => closed(sent));
    pump();
  });
  await new Promise((r) => hostile.listen(0, '127.0.0.1', r));
  const hostileUrl = `http://127.0.0.1:${hostile.address().port}/`;
  const px = await startProxy(srv.url);
  try {
    await px.forge(7, 1);
    const dl = new Download('a.bin', {
      base: px.url, EventSource, store: new MemoryStore(), backoffBase: 20,
      // Range requests go to the hostile server; everything else to chunkcast.
      fetch: (url, init) => fetch(String(url).includes('/events/chunk/') ? hostileUrl : url, init),
    });
    dl.start();
    await assert.rejects(dl.done, (e) => e.code === 'protocol' && /longer than \d+ characters/.test(e.message));
    const total = await done;
    // The limit for 4 KiB chunks is 6 × 4 KiB + 4 MiB; the client stops soon after.
    assert.ok(total < 32 << 20, `the client read ${total} bytes of one line before stopping`);
  } finally {
    await px.close();
    hostile.close();
  }
});

test('a manifest is read up to 64 MiB and checked before anything is made of it', async () => {
  // An endless manifest: the client stops reading it.
  let sent = 0;
  const endless = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"hashes":[');
    const piece = `"${'ab'.repeat(32)}",`.repeat(4096);
    const pump = () => {
      while (!res.destroyed && sent < (512 << 20)) {
        sent += piece.length;
        if (!res.write(piece)) return res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise((r) => endless.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${endless.address().port}/`;
    const dl = new Download('x.bin', { base, EventSource, store: new MemoryStore() });
    dl.start();
    const err = await dl.done.then(() => assert.fail('an endless manifest downloaded'), (e) => e);
    assert.equal(err.code, 'protocol', String(err));
    assert.match(err.message, /larger than 64 MiB/);
    assert.ok(sent < (200 << 20), `the client stopped reading (${sent >> 20} MiB sent)`);
  } finally {
    endless.closeAllConnections();
    await new Promise((r) => endless.close(r));
  }

  // Manifests outside the protocol are refused by the same checks as get's.
  const good = await (await fetch(`${srv.url}api/manifest?file=a.bin`)).json();
  for (const [change, why] of [
    [{ chunk_size: 4294967295 }, /chunk size outside/],
    [{ chunk_size: 1024 }, /chunk size outside/],
    [{ sha256: 'nope' }, /bad file digest/],
    [{ size: 0 }, /chunk count/],
    [{ size: 2 ** 40 }, /chunk count/],
  ]) {
    await assert.rejects(checkManifest({ ...good, ...change }, 'a.bin'), why, JSON.stringify(change));
  }
  assert.equal((await checkManifest(good, 'a.bin')).length, 50 * 32, 'the server\'s own manifest passes');
});
