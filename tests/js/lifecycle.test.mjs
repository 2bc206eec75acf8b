// A download that ended stays ended: the browser's `offline` and `online`
// events revive a live download, never one that failed or found the file
// changed (a listener left behind once restarted those against a discarded
// store). Node has no window: an EventTarget stands in for it as the global
// event source, dispatching the same events a browser would.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { Download, MemoryStore } from '../../web/chunkcast.js';
import { pseudoRandom, startProxy, startServer, until } from './helpers.mjs';

const win = new EventTarget();
Object.assign(globalThis, {
  addEventListener: win.addEventListener.bind(win),
  removeEventListener: win.removeEventListener.bind(win),
});
const net = (/** @type {'online'|'offline'} */ type) => win.dispatchEvent(new Event(type));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv;
before(async () => { srv = await startServer({ files: { 'a.bin': pseudoRandom(4096 * 300, 7) }, args: ['--retry-ms', '100'] }); });
after(async () => { await srv?.stop(); });

function start(base, opts = {}) {
  let verified = 0;
  const states = [];
  const dl = new Download('a.bin', {
    base, EventSource, store: new MemoryStore(), backoffBase: 20, backoffMax: 40,
    onchunk: (i, s) => { if (s === 'verified') verified++; },
    onstate: (s) => states.push(s),
    ...opts,
  });
  dl.start();
  return { dl, states, verified: () => verified };
}

/** Plays offline then online, and checks nothing moved: no state, no request. */
async function assertStaysEnded(dl, states, px) {
  const state = dl.state;
  const seen = states.length;
  const requests = px.requests.length;
  net('offline');
  net('online');
  await sleep(400);
  assert.equal(dl.state, state);
  assert.deepEqual(states.slice(seen), [], 'no state change after the end');
  assert.equal(px.requests.length, requests, 'no request after the end');
}

test('a live download follows offline and online (the control)', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, states, verified } = start(px.url, { rate: 400_000 });
    await until(() => verified() >= 10, 10000, '10 chunks');
    net('offline');
    assert.equal(dl.state, 'offline');
    net('online');
    assert.ok(states.includes('reconnecting'), states.join(' '));
    await dl.done;
    // Done is terminal too.
    await assertStaysEnded(dl, states, px);
  } finally {
    await px.close();
  }
});

test('after giving up (server down), offline then online does not restart the download', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, states, verified } = start(px.url, { rate: 400_000, retries: 2 });
    await until(() => verified() >= 10, 10000, '10 chunks');
    await px.setRefuse(true);
    px.dropAll();
    await assert.rejects(dl.done, (e) => e.code === 'server_down');
    await px.setRefuse(false); // the server is back: a revived download would reach it
    await assertStaysEnded(dl, states, px);
  } finally {
    await px.close();
  }
});

test('a download that moved to a changed file\'s new version still follows offline and online, then stays ended', async () => {
  const px = await startProxy(srv.url);
  try {
    const { dl, states, verified } = start(px.url, { rate: 400_000 });
    await until(() => verified() >= 10, 10000, '10 chunks');
    writeFileSync(path.join(srv.root, 'a.bin'), pseudoRandom(4096 * 300 + 1, 8));
    await until(() => states.includes('changed') && dl.state === 'streaming', 10000, 'the new version streaming');
    net('offline');
    assert.equal(dl.state, 'offline');
    net('online');
    await dl.done;
    await assertStaysEnded(dl, states, px);
  } finally {
    await px.close();
  }
});

test('waiting for received chunks to be verified is a promise, not a 5 ms polling timer', async () => {
  // A range refill waits for the chunks it received to be verified before it
  // judges what is still missing; that wait used to poll every 5 ms.
  const px = await startProxy(srv.url);
  const real = globalThis.setTimeout;
  const delays = [];
  globalThis.setTimeout = /** @type {any} */ ((fn, ms, ...rest) => { delays.push(ms ?? 0); return real(fn, ms, ...rest); });
  try {
    for (const i of [3, 40, 41, 200]) await px.forge(i, 1);
    const { dl } = start(px.url, { parallel: 2, batch: 4 });
    await dl.done;
    const refills = px.requests.filter((r) => /events\/chunk\//.test(r.line));
    assert.ok(refills.length >= 1, 'the corrupted chunks were refilled by range');
    assert.equal(delays.filter((ms) => ms > 0 && ms < 10).length, 0, `short timers: ${delays.filter((ms) => ms < 10).join(',')}`);
  } finally {
    globalThis.setTimeout = real;
    await px.close();
  }
});

test('start() twice runs one download', async () => {
  const px = await startProxy(srv.url);
  try {
    const dl = new Download('a.bin', { base: px.url, EventSource, store: new MemoryStore() });
    const first = dl.start();
    await dl.start(); // a no-op: the download is already under way
    await first;
    await dl.done;
    assert.equal(px.requests.filter((r) => /api\/manifest/.test(r.line)).length, 1);
    assert.equal(px.requests.filter((r) => /GET \/events\?/.test(r.line)).length, 1);
  } finally {
    await px.close();
  }
});
