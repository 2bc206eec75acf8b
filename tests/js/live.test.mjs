// Live text, the library against a real `serve --publish`: a download of a
// text still being written receives each chunk as it is sealed, once, in
// order, is told when the writer goes and comes back, resumes after its
// connection is cut or the server restarts, and ends verified: the text
// exact, its digests hashing to the finished file's root.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Download, MemoryStore } from '../../web/chunkcast.js';
import { sha256hex, startProxy, until } from './helpers.mjs';
import { AuthEventSource, authFetch, produce, publish, split, startLiveServer, story } from './publish.mjs';

let live;
before(async () => { live = await startLiveServer(); });
after(async () => { await live?.stop(); });

/**
 * Follows `name` with the library; records what it says.
 * @param {string} name @param {string} [base]
 */
function follow(name, base = live.url) {
  const seen = { texts: [], verified: new Map(), states: [], live: [], log: [] };
  const dl = new Download(name, {
    base, EventSource: AuthEventSource, fetch: authFetch, backoffBase: 100, backoffMax: 500,
    ontext: (t, info) => seen.texts.push({ t, i: info.i }),
    onchunk: (i, s) => { if (s === 'verified' || s === 'refetched') seen.verified.set(i, (seen.verified.get(i) ?? 0) + 1); },
    onstate: (s) => seen.states.push(s),
    onlive: (s) => seen.live.push(s),
    log: (m) => seen.log.push(m),
  });
  dl.start();
  return { dl, seen, text: () => seen.texts.map((x) => x.t).join('') };
}

/** The finished file's manifest, as any client would fetch it. @param {string} name */
async function finished(name) {
  return (await authFetch(new URL(`api/manifest?file=${encodeURIComponent(name)}`, live.url))).json();
}

/** Every chunk verified exactly once, the text in order, the whole proven. */
async function checkWhole(f, name, full) {
  const { blob, manifest } = await f.dl.done;
  const m = await finished(name);
  assert.equal(m.live, undefined, 'the finished manifest is an ordinary one');
  assert.equal(manifest.root, m.root);
  assert.equal(manifest.chunks, m.chunks);
  assert.equal(await blob.text(), full, 'the stored file is the text');
  assert.equal(f.text(), full, 'the text handed out in order is the text');
  assert.deepEqual(f.seen.texts.map((x) => x.i), [...Array(m.chunks).keys()], 'each chunk\'s text once, in order');
  for (let i = 0; i < m.chunks; i++) assert.equal(f.seen.verified.get(i), 1, `chunk ${i} verified once`);
  assert.equal(m.sha256, sha256hex(Buffer.from(full)));
  assert.equal(f.dl.state, 'done');
  return m;
}

test('a text published in parts with pauses arrives as it is sealed, every chunk once, and ends verified', async () => {
  const name = 'parts.txt';
  const full = story(60_000);
  const parts = split(full, 12);
  const first = await publish(live.url, name, parts[0]);
  assert.equal(first.state, 'live');
  const f = follow(name);
  await until(() => f.text().length > 0, 10000, 'the first part');
  assert.equal(f.dl.manifest.live, true);
  assert.ok(full.startsWith(f.text()));
  // The rest, with a pause long enough (> 2 s) for the publication to be interrupted.
  const shownBefore = [];
  const last = await produce(live.url, name, parts.slice(1), {
    offset: first.offset, gap: 150, pauses: { 4: 2600 },
    before: async () => { shownBefore.push(f.text().length); },
  });
  assert.equal(last.state, 'complete');
  const m = await checkWhole(f, name, full);
  assert.equal(m.root, last.root);
  // The text grew while it was being written, not all at the end.
  assert.ok(new Set(shownBefore).size >= 6, `text shown before each part: ${shownBefore}`);
  assert.ok(shownBefore[shownBefore.length - 1] > full.length / 2, 'most of it had arrived before the last part');
  assert.ok(f.seen.live.includes('interrupted'), `told of the pause: ${f.seen.live}`);
  assert.ok(f.seen.live.lastIndexOf('live') > f.seen.live.indexOf('interrupted'), 'and of the writer coming back');
  assert.equal(f.seen.live.at(-1), 'complete');
  const p = f.dl.progress();
  assert.equal(p.live, 'complete');
  assert.equal(p.bytesReceived, Buffer.byteLength(full), 'no chunk was received twice');
  assert.equal(p.chunksFailed, 0);
});

test('a viewer whose connections are cut resumes with Last-Event-ID: nothing twice, nothing lost', async () => {
  const name = 'cut.txt';
  const full = story(80_000, 'cut');
  const parts = split(full, 16);
  const px = await startProxy(live.url);
  try {
    const first = await publish(live.url, name, parts[0]);
    const f = follow(name, px.url);
    await until(() => f.text().length > 0, 10000, 'the first part');
    let cuts = 0;
    await produce(live.url, name, parts.slice(1), {
      offset: first.offset, gap: 120,
      before: async (k) => { if (k % 4 === 3 && px.dropAll() > 0) cuts++; },
    });
    await checkWhole(f, name, full);
    assert.ok(cuts >= 2, `${cuts} cuts`);
    const resumed = px.eventRequests().filter((r) => r.line.startsWith('GET /events?') && r.headers['last-event-id'] !== undefined);
    assert.ok(resumed.length >= 2, `${resumed.length} reconnects carried Last-Event-ID`);
    assert.ok(px.eventRequests().every((r) => /^Basic /.test(r.headers.authorization ?? '')), 'every request carried the credentials');
    assert.equal(f.dl.progress().bytesReceived, Buffer.byteLength(full), 'no chunk was received twice');
  } finally {
    await px.close();
  }
});

test('the server restarts mid-stream: the publication reopens interrupted, the writer and the viewer resume', async () => {
  const name = 'restart.txt';
  const full = story(40_000, 'restart');
  const parts = split(full, 8);
  let at = (await publish(live.url, name, parts[0])).offset;
  const f = follow(name);
  at = (await produce(live.url, name, parts.slice(1, 4), { offset: at, end: false, gap: 100 })).offset;
  await until(() => f.text().length === [...parts.slice(0, 4)].join('').length, 10000, 'the first half');
  await live.restart();
  // The writer asks where it stands, then goes on.
  const res = await authFetch(new URL(`api/publish?file=${name}`, live.url));
  const st = await res.json();
  assert.equal(st.state, 'interrupted');
  assert.equal(st.offset, at, 'every acknowledged byte survived the restart');
  await until(() => f.seen.live.includes('interrupted'), 20000, 'the viewer hears the publication is interrupted');
  await produce(live.url, name, parts.slice(4), { offset: at, gap: 100 });
  await checkWhole(f, name, full);
  assert.ok(f.dl.progress().reconnects >= 1);
});

test('an empty start, a few bytes at a time: every character once and in order', async () => {
  const name = 'drip.txt';
  const full = 'Ä drip of text, é by é, 🚀 by 🚀.\n'.repeat(12);
  const drops = split(full, 30);
  const first = await publish(live.url, name, drops[0]);
  const f = follow(name);
  await produce(live.url, name, drops.slice(1), { offset: first.offset, gap: 30 });
  await checkWhole(f, name, full);
  assert.ok(f.seen.texts.length > 1, `${f.seen.texts.length} chunks`);
});

test('a reload follows where the stored chunks stop: started again, it fetches only the rest', async () => {
  // What a page reload does: a new Download over the same store.
  const name = 'again.txt';
  const full = story(30_000, 'again');
  const parts = split(full, 6);
  let at = (await publish(live.url, name, parts[0])).offset;
  at = (await produce(live.url, name, parts.slice(1, 3), { offset: at, end: false, gap: 100 })).offset;
  const store = new MemoryStore();
  const one = new Download(name, { base: live.url, EventSource: AuthEventSource, fetch: authFetch, store });
  one.start();
  await until(() => one.progress().chunksVerified === one.manifest?.chunks && one.progress().chunks > 0, 10000, 'the first half');
  const had = one.progress().chunksVerified;
  await one.close();
  const texts = [];
  const two = new Download(name, { base: live.url, EventSource: AuthEventSource, fetch: authFetch, store, ontext: (t) => texts.push(t) });
  two.start();
  await produce(live.url, name, parts.slice(3), { offset: at, gap: 100 });
  const { blob } = await two.done;
  assert.equal(await blob.text(), full);
  assert.equal(texts.join(''), full, 'the stored text first, then the rest, once');
  const p = two.progress();
  assert.equal(p.chunksResumed, had);
  assert.equal(p.bytesReceived, Buffer.byteLength(full) - Buffer.byteLength(parts.slice(0, 3).join('')), 'only the rest came over the network');
});

test('a publication that ended abandoned says so to a download that starts after the end', async () => {
  // Invalid UTF-8 ends a publication abandoned with the text before it.
  const name = 'left.txt';
  await publish(live.url, name, 'the first words ');
  const u = new URL('api/publish', live.url);
  u.searchParams.set('file', name);
  u.searchParams.set('offset', String(Buffer.byteLength('the first words ')));
  const res = await authFetch(u.href, { method: 'POST', body: Buffer.from([0x61, 0xff, 0x62]) });
  assert.equal(res.status, 400);
  const states = [];
  const dl = new Download(name, { base: live.url, EventSource: AuthEventSource, fetch: authFetch, store: new MemoryStore(), onlive: (s) => states.push(s) });
  dl.start();
  const { blob } = await dl.done;
  assert.equal(await blob.text(), 'the first words a');
  assert.deepEqual(states, ['abandoned'], 'the reader learns the writer abandoned it');
});
