// Resuming: native reconnects with Last-Event-ID after drops, our own
// backoff while the server is down, stall detection, `need=` for scattered
// gaps, and a clean stop on `end`, 204 and close().
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Download, MemoryStore } from '../../web/chunkcast.js';
import { pseudoRandom, sha256hex, startProxy, startServer, until } from './helpers.mjs';

const CHUNKS = 300;
const big = pseudoRandom(4096 * CHUNKS, 3);
let srv;
before(async () => { srv = await startServer({ files: { 'big.bin': big }, args: ['--retry-ms', '100'] }); });
after(async () => { await srv?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(opts) {
  let verified = 0;
  const states = [];
  const dl = new Download('big.bin', {
    EventSource,
    backoffBase: 100,
    backoffMax: 400,
    onchunk: (i, s) => { if (s === 'verified' || s === 'refetched') verified++; },
    onstate: (s, m) => states.push(`${s}: ${m}`),
    ...opts,
  });
  dl.start();
  return { dl, states, verified: () => verified };
}

async function bytesOf(dl) {
  const { blob } = await dl.done;
  return Buffer.from(await blob.arrayBuffer());
}

test('two dropped connections resume through the native reconnect with Last-Event-ID', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, verified } = start({ base: px.url, rate: 1_000_000 });
    await until(() => verified() >= 60, 10000, '60 chunks');
    assert.ok(px.dropAll() >= 1);
    await until(() => verified() >= 160, 10000, '160 chunks');
    assert.ok(px.dropAll() >= 1);
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    const resumed = px.eventRequests().filter((r) => r.headers['last-event-id'] !== undefined);
    assert.ok(resumed.length >= 2, `${resumed.length} requests carried Last-Event-ID`);
    assert.ok(Number(resumed[0].headers['last-event-id']) >= 59);
    const p = dl.progress();
    assert.ok(p.reconnects >= 2, `${p.reconnects} reconnects`);
    assert.ok(p.bytesReceived < big.length * 1.2, `received ${p.bytesReceived} for ${big.length}: no restart from zero`);
  } finally {
    await px.close();
  }
});

test('a server that is down is retried with backoff until it returns', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, verified, states } = start({ base: px.url, rate: 1_000_000 });
    await until(() => verified() >= 40, 10000, '40 chunks');
    await px.setRefuse(true);
    px.dropAll();
    await until(() => states.some((s) => /retrying in/.test(s)), 5000, 'a retry');
    await sleep(800);
    assert.notEqual(dl.state, 'done');
    await px.setRefuse(false);
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    const retries = states.filter((s) => /retrying in [\d.]+ s \(attempt \d+\)/.test(s));
    assert.ok(retries.length >= 2, retries.join('\n'));
  } finally {
    await px.close();
  }
});

test('giving up after the retries are spent says so, and resume() picks up again', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, verified } = start({ base: px.url, rate: 1_000_000, retries: 2, backoffBase: 20, backoffMax: 40 });
    await until(() => verified() >= 20, 10000, '20 chunks');
    await px.setRefuse(true);
    px.dropAll();
    await assert.rejects(dl.done, (e) => e.code === 'server_down' && /gave up after 2 attempts/.test(e.message));
    await px.setRefuse(false);
    dl.resume();
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
  } finally {
    await px.close();
  }
});

test('a stalled stream is reopened from the first missing chunk', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, verified, states } = start({ base: px.url, rate: 1_000_000, stallTimeout: 500 });
    await until(() => verified() >= 50, 10000, '50 chunks');
    px.stallCurrent();
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    assert.ok(states.some((s) => s.startsWith('stalled')), states.join('\n'));
    const reopened = px.eventRequests().slice(1).find((r) => /[?&]from=\d+/.test(r.line));
    assert.ok(reopened, px.eventRequests().map((r) => r.line).join('\n'));
    assert.ok(Number(/from=(\d+)/.exec(reopened.line)[1]) >= 50);
  } finally {
    await px.close();
  }
});

test('scattered gaps are asked for with need= and only they are sent', async () => {
  const store = new MemoryStore();
  const first = start({ base: srv.url, store });
  await first.dl.done;
  const gone = [0, 1, 2, 3, 4, 17, ...Array.from({ length: 10 }, (_, k) => 30 + k), 299];
  for (const i of gone) store.chunks.delete(i);
  const px = await startProxy(srv.url);
  try {
    const { dl } = start({ base: px.url, store });
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    const reqs = px.eventRequests();
    assert.equal(reqs.length, 1);
    assert.match(reqs[0].line, /need=0-4%2C17%2C30-39%2C299[& ]/);
    const p = dl.progress();
    assert.equal(p.chunksResumed, CHUNKS - gone.length);
    assert.equal(p.bytesReceived, gone.length * 4096);
  } finally {
    await px.close();
  }
});

test('one missing tail is asked for with from=', async () => {
  const store = new MemoryStore();
  await start({ base: srv.url, store }).dl.done;
  for (let i = 250; i < CHUNKS; i++) store.chunks.delete(i);
  const px = await startProxy(srv.url);
  try {
    const { dl } = start({ base: px.url, store });
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    assert.match(px.eventRequests()[0].line, /[?&]from=250[& ]/);
    assert.doesNotMatch(px.eventRequests()[0].line, /need=/);
  } finally {
    await px.close();
  }
});

test('a 204 on reconnect stops the stream cleanly and the refill finishes the file', async () => {
  const px = await startProxy(srv.url);
  try {
    // The last chunk arrives forged and the stream is cut before `end`: the
    // native reconnect asks for what follows chunk 299, gets 204, and must not
    // loop; the forged chunk is refetched by range.
    await px.forge(CHUNKS - 1, 1);
    await px.setCutBeforeEnd(true);
    const { dl } = start({ base: px.url });
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    const reqs = px.eventRequests();
    const lines = reqs.map((r) => `${r.line} ${r.headers['last-event-id'] ?? ''}`).join('\n');
    assert.ok(reqs.some((r) => r.headers['last-event-id'] === String(CHUNKS - 1)), lines);
    assert.ok(reqs.some((r) => r.line.includes(`/events/chunk/${CHUNKS - 1}/${CHUNKS}`)), lines);
    assert.equal(reqs.length, 3, lines);
    await sleep(600);
    assert.equal(px.eventRequests().length, 3, 'no request after the end');
  } finally {
    await px.close();
  }
});

test('after `end` nothing reconnects; after close() nothing either', async () => {
  const px = await startProxy(srv.url);
  try {
    const done = start({ base: px.url });
    await done.dl.done;
    await sleep(500); // the server's retry is 100-150 ms
    assert.equal(px.eventRequests().length, 1);

    const { dl, verified } = start({ base: px.url, rate: 500_000 });
    await until(() => verified() >= 10, 10000, '10 chunks');
    await dl.close();
    await assert.rejects(dl.done, (e) => e.code === 'closed');
    const n = px.eventRequests().length;
    const v = verified();
    await sleep(600);
    assert.equal(px.eventRequests().length, n);
    assert.equal(verified(), v);
    assert.equal(dl.state, 'closed');
  } finally {
    await px.close();
  }
});

test('pause() stops the network and resume() continues from the first missing chunk', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, verified } = start({ base: px.url, rate: 1_000_000 });
    await until(() => verified() >= 30, 10000, '30 chunks');
    dl.pause();
    await sleep(300);
    const v = verified();
    await sleep(400);
    assert.equal(verified(), v, 'nothing arrives while paused');
    assert.equal(dl.state, 'paused');
    dl.resume();
    assert.equal(sha256hex(await bytesOf(dl)), sha256hex(big));
    const last = px.eventRequests().at(-1);
    assert.match(last.line, new RegExp(`from=${v}[& ]`));
  } finally {
    await px.close();
  }
});
