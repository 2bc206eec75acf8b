// Live text followed by a third-party client: the `eventsource` npm package
// alone (no chunkcast code), through a proxy that cuts its connections
// while the text is written. It resumes with Last-Event-ID by itself; the
// test checks what the protocol promises it: every chunk once and in
// order, each matching the digest its event carries, the text exact, and
// the digests hashing to the `root` of the `end` event and of the finished
// file's manifest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';

import { EventSource } from 'eventsource';

import { startProxy, until } from './helpers.mjs';
import { authFetch, produce, publish, split, startLiveServer, story } from './publish.mjs';

let live;
before(async () => { live = await startLiveServer(); });
after(async () => { await live?.stop(); });

test('the eventsource package follows a live text through cut connections: every chunk once, the root verified', async () => {
  const name = 'third-party.txt';
  const full = story(70_000, 'viewer');
  const parts = split(full, 14);
  const px = await startProxy(live.url);
  try {
    const first = await publish(live.url, name, parts[0]);
    /** @type {Map<number, {text: string, sha256: string}>} */
    const chunks = new Map();
    const ids = [];
    const states = [];
    let meta = null;
    let end = null;
    let problems = 0;
    const es = new EventSource(new URL(`events?file=${name}`, px.url).href, { fetch: authFetch });
    es.addEventListener('meta', (e) => { meta ??= JSON.parse(e.data); });
    es.addEventListener('state', (e) => states.push(JSON.parse(e.data).state));
    es.addEventListener('chunk', (e) => {
      const c = JSON.parse(e.data);
      ids.push(c.i);
      if (String(c.i) !== e.lastEventId) problems++;
      if (createHash('sha256').update(c.text).digest('hex') !== c.sha256 || Buffer.byteLength(c.text) !== c.len) problems++;
      chunks.set(c.i, { text: c.text, sha256: c.sha256 });
    });
    es.addEventListener('end', (e) => { end = JSON.parse(e.data); es.close(); });
    let cuts = 0;
    await until(() => chunks.size > 0, 10000, 'the first chunks');
    await produce(live.url, name, parts.slice(1), {
      offset: first.offset, gap: 120,
      before: async (k) => { if (k % 3 === 2 && px.dropAll() > 0) cuts++; },
    });
    await until(() => end !== null, 20000, 'the end event');
    assert.equal(meta.live, true);
    // A viewer that reconnects after the end is served the finished file,
    // whose `end` carries no reason (docs/PROTOCOL.md).
    assert.ok(end.reason === 'complete' || end.reason === undefined, `ended ${end.reason}`);
    assert.equal(problems, 0, 'every chunk matched its own digest and id');
    assert.ok(cuts >= 3, `${cuts} cuts`);
    assert.deepEqual(ids, [...Array(end.chunks).keys()], 'every chunk once, in order');
    assert.equal(ids.map((i) => chunks.get(i).text).join(''), full);
    const digests = Buffer.concat(ids.map((i) => Buffer.from(chunks.get(i).sha256, 'hex')));
    const root = createHash('sha256').update(digests).digest('hex');
    assert.equal(root, end.root, 'the digests hash to the end event\'s root');
    const m = await (await authFetch(new URL(`api/manifest?file=${name}`, live.url))).json();
    assert.equal(m.root, root, 'and to the finished file\'s');
    assert.deepEqual(m.hashes, ids.map((i) => chunks.get(i).sha256));
    const resumed = px.eventRequests().filter((r) => r.headers['last-event-id'] !== undefined);
    assert.ok(resumed.length >= 3, `${resumed.length} reconnects carried Last-Event-ID`);
  } finally {
    await px.close();
  }
});
