// Chaos over HTTPS and HTTP/2: web/chunkcast.js in a real Chromium, both
// transports ('worker' and 'eventsource'), downloading generated files of a
// few MiB (binary and text) from a server speaking TLS (--tls-self-signed
// lan.test), through the chaos proxy forwarding blind (faults {tls: true}:
// it cannot read or edit what it carries). The page comes from the server
// itself (https://lan.test:SERVER/) and downloads with `base` set to the
// proxy (https://lan.test:PROXY/, another origin: the server runs with
// --cors-origin); host-resolver rules map the name to 127.0.0.1 and
// --ignore-certificate-errors takes the self-signed certificate. Chromium
// speaks HTTP/2 to the proxy over one connection, so a cut kills every
// stream on it at once and a stall freezes them all; refused connections and
// one flipped bit of an encrypted record (which TLS turns into a dead
// connection) come on top.
//
// Why not the page through the proxy too: the library starts a worker per
// download (the OPFS store's, the worker transport's), and its script is
// served `no-cache`, so each start revalidates it over the same faulty
// connection. A cut there is a fault of the page's own code loading, not of
// a download, and the library then fails with `storage worker failed:
// undefined` and a close() that never settles (seen with seed 10 that way).
//
// The worker runs take turns between its raw path (the bytes from /files
// with Range, the default) and its event stream (`raw: false`).
//
// Every download must end in a result whose SHA-256 equals the original's,
// or in a clear ChunkcastError (it gave up, could not reach the server),
// after which a fault-free resume in the same page finishes from exactly
// the chunks it had verified. Each run also checks, from Chromium's NetLog,
// that every request through the proxy went out over HTTP/2, and that the
// transport asked for was the one used.
//
// - `node --test tests/browser/chaos-h2.test.mjs` prints the summary line.
// - `CHAOS_H2_RUNS=n` (default 16; seeds alternate the transports),
//   `CHAOS_SEED=n` replays one run, `CHAOS_DEBUG=1` adds the proxy's and
//   the library's log, with times.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, LAN_HOST } from './chromium.mjs';
import { envInt, isClearFailure, mix, mulberry32, pseudoRandom, sha256hex, startProxy, startServer } from '../js/helpers.mjs';

// The server's self-signed certificate goes to a config dir of our own, and
// Chromium's NetLog (which protocol each request went out on) beside it.
const CONFIG = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-chaos-h2-config-'));
process.env.XDG_CONFIG_HOME = CONFIG;
const NETLOG = path.join(CONFIG, 'netlog.json');

const ONLY = envInt('CHAOS_SEED');
const RUNS = envInt('CHAOS_H2_RUNS') ?? 16;
const DEBUG = !!process.env.CHAOS_DEBUG;
const t00 = Date.now();
const debug = (/** @type {string} */ msg) => { if (DEBUG) console.log(`${String(Date.now() - t00).padStart(6)} ms ${msg}`); };

/** 64 KiB chunks: a few MiB is some fifty chunk events, each over several TLS records (of 16 KiB at most). */
const CHUNK = 64 * 1024;
/** The library's stall timeout, as in tests/js/chaos.test.mjs. */
const STALL_MS = 2000;
/**
 * A stall the browser has not ended after this long ends anyway (the proxy
 * closes the connection). Over HTTP/2 the library can only cancel its own
 * streams; the connection is the browser's, and it keeps it, so most stalls
 * end here, which the summary counts.
 */
const STALL_MAX = 6000;
/** A download still unsettled after this long is a hang. */
const HANG_MS = 90_000;

const TEXT_LINE = 'Über HTTP/2 und TLS: ñandú, 数据, emoji 🎉, "quoted" back\\slash\ttab\n';
/** The files: several sizes, binary and text (multi-byte characters across chunk boundaries). */
const FILES = {
  'r3.bin': pseudoRandom(3 * 1024 * 1024 + 123, 31),
  'r1.bin': pseudoRandom(1024 * 1024 + 5, 32),
  'exact.bin': pseudoRandom(32 * CHUNK, 33),
  'story.txt': Buffer.from(TEXT_LINE.repeat(Math.ceil((2 << 20) / Buffer.byteLength(TEXT_LINE)))),
};
const NAMES = ['r3.bin', 'r1.bin', 'exact.bin', 'story.txt'];

/** @type {Awaited<ReturnType<typeof startServer>>} */ let srv;
/** @type {Awaited<ReturnType<typeof launch>>} */ let browser;

before(async () => {
  srv = await startServer({
    files: FILES,
    chunkSize: '64K',
    // The page comes from the server itself, the downloads through the proxy (another port, so another origin).
    args: ['--tls-self-signed', LAN_HOST, '--allowed-host', LAN_HOST, '--cors-origin', '*', '--retry-ms', '50'],
  });
  browser = await launch({ lanHost: LAN_HOST, ignoreCertificateErrors: true, args: [`--log-net-log=${NETLOG}`] });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  rmSync(CONFIG, { recursive: true, force: true });
});

/** The origin Chromium opens for a proxy: its port, under the name the certificate and the server's --allowed-host know. */
const originOf = (/** @type {{url: string}} */ proxy) => `https://${LAN_HOST}:${new URL(proxy.url).port}/`;

test('the blind proxy passes TLS and ALPN through: curl --http2 speaks h2 to the server behind it', { skip: ONLY !== undefined }, async () => {
  const proxy = await startProxy(srv.url, { faults: { tls: true } });
  try {
    const port = new URL(proxy.url).port;
    const curl = spawnSync('curl', ['-sS', '-v', '--http2', '-k', '--max-time', '20', '--resolve', `${LAN_HOST}:${port}:127.0.0.1`,
      '-w', '\n%{http_version}', `${originOf(proxy)}healthz`], { encoding: 'utf8' });
    assert.equal(curl.status, 0, curl.stderr);
    assert.match(curl.stderr, /ALPN[:,] server accepted (to use )?h2/, 'the server picked h2 through the proxy');
    const [body, version] = curl.stdout.trimEnd().split('\n');
    assert.equal(version, '2', curl.stdout);
    assert.deepEqual(JSON.parse(body).protocols, ['h2', 'http/1.1']);
    const stats = await proxy.stats();
    assert.ok(stats.records >= 4 && stats.wireBytes > 0, `forwarded as TLS records: ${JSON.stringify(stats)}`);
  } finally {
    await proxy.close();
  }
});

/**
 * What one seed does: which file, which transport, which faults, which options.
 * @param {number} seed
 */
function planOf(seed) {
  const rng = mulberry32(mix(seed, 0x2b2));
  const name = NAMES[rng.int(0, NAMES.length)];
  // Per connection, and a download over HTTP/2 is one connection unless a
  // fault ends it: fault most of them, so a run meets several in a row.
  const faults = {
    cut: rng.pick([0.5, 0.7, 0.8]),
    stall: rng.pick([0, 0.1, 0.2]),
    corrupt: rng.pick([0.2, 0.4, 0.6]),
    down: rng.pick([0.2, 0.3, 0.5]),
    maxDown: rng.int(1, 4),
  };
  // One run in three is fragile (both transports take turns): it gives up
  // at the first reconnect that fails and is not the EventSource's own,
  // often halfway through, so the clear error and the resume from what it
  // verified are met.
  const fragile = seed % 3 === 2;
  if (fragile) Object.assign(faults, { cut: 0.9, down: 0.5 });
  const retries = fragile ? 0 : rng.int(6, 11);
  // The worker's runs take turns: its raw path (the default), its event stream.
  const transport = seed % 2 === 0 ? 'worker' : 'eventsource';
  return { seed, transport, raw: seed % 4 === 0, name, faults, retries, parallel: rng.int(1, 5) };
}

/**
 * In the page: one download of `name` through the public API, settled or
 * given up after `limitMs`; what it verified, how it ended, its figures.
 * With `debug`, the library's log and states go to the page's console.
 * @param {{name: string, opts: Record<string, any>, limitMs: number, debug: boolean}} a
 */
async function downloadInPage({ name, opts, limitMs, debug }) {
  const lib = await import('/chunkcast.js');
  /** @type {number[]} */
  const verified = [];
  const d = new lib.Download(name, {
    ...opts,
    onchunk: (i, s) => { if (s === 'verified' || s === 'refetched') verified.push(i); },
    ...(debug ? { log: (/** @type {string} */ m) => console.log(`library: ${m}`), onstate: (/** @type {string} */ s, /** @type {string} */ m) => console.log(`library state ${s}: ${m}`) } : {}),
  });
  d.start();
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const outcome = await Promise.race([
    d.done.then(async ({ blob }) => {
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
      return { ok: true, hung: false, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), size: blob.size, code: '', message: '' };
    }, (e) => ({ ok: false, hung: false, sha256: '', size: 0, code: String(e?.code), message: String(e?.message ?? e) })),
    new Promise((resolve) => { timer = setTimeout(() => resolve({ ok: false, hung: true, sha256: '', size: 0, code: '', message: `still ${d.state}` }), limitMs); }),
  ]);
  clearTimeout(timer);
  const progress = d.progress();
  const transport = d.transportKind;
  await d.close();
  return { ...outcome, progress, transport, verified };
}

/**
 * The requests Chromium sent to `port` (the proxy's), from its NetLog: the
 * paths of those sent over HTTP/2 (an `:authority` pseudo-header, which
 * HTTP/1.1 has not; QUIC is off), and how many went out as HTTP/1.1 (a
 * `Host` header).
 * @param {number|string} port
 */
function requestsTo(port) {
  const log = readFileSync(NETLOG, 'utf8');
  const authority = new RegExp(`":authority: ${LAN_HOST.replace('.', '\\.')}:${port}",":scheme: https",":path: ([^"]*)"`, 'g');
  return {
    h2: [...log.matchAll(authority)].map((m) => m[1]),
    http1: log.split(`"Host: ${LAN_HOST}:${port}"`).length - 1,
  };
}

/**
 * `evaluated`, or an error a little after the page's own limit: a page whose
 * download (or its `close()`) never settles must not hold the suite.
 * @template T @param {Promise<T>} evaluated @returns {Promise<T>}
 */
function settled(evaluated) {
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the page did not settle within ${(HANG_MS + 15_000) / 1000} s`)), HANG_MS + 15_000);
  });
  return /** @type {Promise<T>} */ (Promise.race([evaluated, late]).finally(() => clearTimeout(timer)));
}

/** The page, from the server itself. @returns {Promise<import('playwright-core').Page>} */
async function openPage() {
  const page = await browser.context.newPage();
  await page.goto(`https://${LAN_HOST}:${srv.port}/healthz`);
  return page;
}

/**
 * Fails unless every request Chromium sent to `proxy` went out over HTTP/2,
 * the download's data among them (event streams, or for the worker's raw
 * path `/files/` Range requests); returns how many.
 * @param {{url: string}} proxy @param {boolean} [raw]  the data came raw
 */
function assertAllH2(proxy, raw = false) {
  const sent = requestsTo(new URL(proxy.url).port);
  if (sent.http1 > 0 || !sent.h2.some((p) => p.startsWith(raw ? '/files/' : '/events?'))) {
    throw new Error(`not HTTP/2 throughout: ${sent.http1} HTTP/1.1 requests, HTTP/2 ones: ${sent.h2.join(' ')}`);
  }
  return sent.h2.length;
}

// The scripted case the seeded runs meet only by chance: a download well
// under way, its one connection cut while the server refuses any other,
// stops with a clear error (`retries: 0`), and a resume finds in OPFS
// exactly the chunks it verified.
for (const transport of ['worker', 'eventsource']) {
  test(`${transport}: one HTTP/2 connection carries a download; cut with the server refusing, it stops clearly and resumes from OPFS`, { skip: ONLY !== undefined }, async () => {
    const name = 'r3.bin';
    const proxy = await startProxy(srv.url, { faults: { tls: true } });
    const page = await openPage();
    try {
      // Paced to 512 KiB/s, so the cut comes some way into the file.
      const opts = { base: originOf(proxy), transport, store: 'opfs', stallTimeout: STALL_MS, backoffBase: 50, backoffMax: 200 };
      await page.evaluate(async ({ name, opts }) => {
        const lib = await import('/chunkcast.js');
        await lib.clearStored(name);
        const w = /** @type {any} */ (window);
        w.verified = [];
        w.first = new lib.Download(name, { ...opts, retries: 0, rate: 512 * 1024, onchunk: (/** @type {number} */ i, /** @type {string} */ s) => { if (s === 'verified') w.verified.push(i); } });
        w.first.start();
        w.outcome = w.first.done.then(() => ({ ok: true, code: '', message: '' }), (/** @type {any} */ e) => ({ ok: false, code: String(e.code), message: String(e.message) }));
      }, { name, opts });
      await page.waitForFunction(() => /** @type {any} */ (window).verified.length >= 8, null, { timeout: 30_000, polling: 20 });
      await proxy.setRefuse(true);
      const dropped = proxy.dropAll();
      const first = await settled(page.evaluate(async () => {
        const w = /** @type {any} */ (window);
        const outcome = await w.outcome;
        await w.first.close();
        return { ...outcome, verified: w.verified.length };
      }));
      assert.equal(dropped, 1, 'one connection carried the download');
      assert.equal(first.ok, false, 'the download went on after its connection was cut and the server refused');
      assert.ok(isClearFailure(first.code, first.message), `a clear error: ${first.code}: ${first.message}`);
      await proxy.setRefuse(false);
      const r = await settled(page.evaluate(downloadInPage, { name, opts: { ...opts, retries: 10 }, limitMs: HANG_MS, debug: false }));
      assert.ok(r.ok, `the resume: ${r.code}: ${r.message}`);
      assert.equal(r.sha256, sha256hex(FILES[name]));
      assert.equal(r.transport, transport);
      assert.ok(first.verified >= 8 && first.verified < Math.ceil(FILES[name].length / CHUNK), `${first.verified} chunks verified before the cut`);
      assert.equal(r.progress.chunksResumed, first.verified, 'resumed exactly what was verified');
      assertAllH2(proxy);
    } finally {
      await page.close();
      await proxy.close();
    }
  });
}

/** @param {ReturnType<typeof planOf>} plan */
async function run(plan) {
  const bytes = FILES[/** @type {keyof typeof FILES} */ (plan.name)];
  const want = sha256hex(bytes);
  const text = plan.name.endsWith('.txt');
  const chunks = Math.ceil(bytes.length / CHUNK);
  const payloadChars = text ? CHUNK : Math.ceil(CHUNK / 3) * 4;
  const report = {
    ...plan,
    size: bytes.length,
    attempts: 0,
    gaveUp: 0,
    wrong: 0,
    hung: 0,
    reconnects: 0,
    resumed: 0,
    /** requests the browser sent over HTTP/2 through the proxy */
    h2Requests: 0,
    /** @type {Record<string, any>|null} */ stats: null,
    /** @type {string[]} */ errors: [],
    /** @type {string[]} */ problems: [],
  };
  const faults = { ...plan.faults, tls: true, chunks, payloadChars, stallMaxMs: STALL_MAX };
  const proxy = await startProxy(srv.url, { seed: plan.seed, faults, verbose: DEBUG });
  if (DEBUG) proxy.log = (m) => debug(`proxy ${m}`);
  debug(`seed ${plan.seed}: ${JSON.stringify(plan)}`);
  const page = await openPage();
  if (DEBUG) page.on('console', (m) => debug(`page ${m.text()}`));
  const fail = (/** @type {string} */ p) => report.problems.push(`seed ${plan.seed} (${plan.transport}${plan.raw ? ' raw' : ''}, ${plan.name}, ${JSON.stringify(plan.faults)}, retries ${plan.retries}): ${p}`);
  try {
    const opts = { base: originOf(proxy), transport: plan.transport, raw: plan.raw, store: 'opfs', stallTimeout: STALL_MS, backoffBase: 50, backoffMax: 800, parallel: plan.parallel };
    await page.evaluate(async (n) => (await import('/chunkcast.js')).clearStored(n), plan.name);
    /** @type {Set<number>} */
    const verifiedBefore = new Set();
    for (let attempt = 0; attempt < 2; attempt++) {
      const fresh = attempt === 1;
      if (fresh) {
        // The resume: no more faults, on connections planned without them.
        await proxy.setFaults({ tls: true, stallMaxMs: STALL_MAX });
        proxy.dropAll();
      }
      report.attempts++;
      const r = await settled(page.evaluate(downloadInPage, { name: plan.name, opts: { ...opts, retries: fresh ? 10 : plan.retries }, limitMs: HANG_MS, debug: DEBUG }));
      debug(`download ${attempt + 1}: ${r.ok ? 'ok' : `${r.code} ${r.message}`}`);
      report.reconnects += r.progress.reconnects;
      report.resumed += r.progress.chunksResumed;
      if (r.progress.chunksResumed !== verifiedBefore.size) {
        fail(`resumed ${r.progress.chunksResumed} chunks from the store, but ${verifiedBefore.size} were verified before`);
      }
      if (r.hung) {
        report.hung++;
        fail(`HUNG: no outcome after ${HANG_MS / 1000} s (${r.message}, ${JSON.stringify(r.progress)})`);
        break;
      }
      if (!r.ok) {
        report.gaveUp++;
        // The manifest is fetched once, not retried: a fault on its way is
        // the end of that download ("cannot reach the server at ...").
        report.errors.push(/^cannot reach the server/.test(r.message) ? `${r.code} (manifest)` : r.code);
        if (!isClearFailure(r.code, r.message)) fail(`unclear or unexpected failure: ${r.code}: ${r.message}`);
        if (fresh) fail(`the fault-free resume failed: ${r.code}: ${r.message}`);
        for (const i of r.verified) verifiedBefore.add(i);
        continue;
      }
      if (r.transport !== plan.transport) fail(`asked for the ${plan.transport} transport, used ${r.transport}`);
      if (r.sha256 !== want || r.size !== bytes.length) {
        report.wrong++;
        fail(`WRONG FILE: ${r.size} bytes with sha256 ${r.sha256}`);
      }
      break;
    }
    // HTTP/2 for real: every request through the proxy, event streams included.
    report.h2Requests = assertAllH2(proxy, plan.raw);
  } catch (e) {
    fail(`the run itself failed: ${e instanceof Error ? e.stack : e}`);
  } finally {
    await page.close();
    report.stats = await proxy.stats().catch(() => null);
    await proxy.close();
  }
  return report;
}

test('seeded downloads over HTTP/2 through a blind faulty proxy never yield a wrong file', { timeout: 30 * 60_000 }, async () => {
  const started = Date.now();
  const seeds = ONLY !== undefined ? [ONLY] : Array.from({ length: RUNS }, (_, k) => k);
  /** @type {Awaited<ReturnType<typeof run>>[]} */
  const reports = [];
  // One at a time: each is a page, a proxy and Chromium's one connection,
  // and a busy event loop would fire stall timeouts on data that waits.
  for (const seed of seeds) {
    const report = await run(planOf(seed));
    for (const p of report.problems) console.log(`chaos.h2: FAILED ${p}\n  replay: CHAOS_SEED=${seed} node --test tests/browser/chaos-h2.test.mjs`);
    reports.push(report);
  }
  const sum = (/** @type {(r: typeof reports[0]) => number} */ f) => reports.reduce((a, r) => a + f(r), 0);
  const stat = (/** @type {(s: Record<string, any>) => number} */ f) => sum((r) => (r.stats ? f(r.stats) : 0));
  const wrong = sum((r) => r.wrong);
  const hung = sum((r) => r.hung);
  const [cuts, stalls, ended, refused] = [stat((s) => s.cuts), stat((s) => s.stalls), stat((s) => s.stallsDetected), stat((s) => s.refused)];
  const [flips, corrupted] = [stat((s) => s.corruptions), stat((s) => s.recordsCorrupted)];
  const gaveUp = reports.filter((r) => r.gaveUp > 0).length;
  const resumedRuns = reports.filter((r) => r.resumed > 0).length;
  /** @type {Record<string, number>} */
  const codes = {};
  for (const c of reports.flatMap((r) => r.errors)) codes[c] = (codes[c] ?? 0) + 1;
  const errors = Object.entries(codes).map(([c, n]) => `${n} ${c}`).join(', ') || 'none';
  const at = ['anywhere on the wire', 'in a record header', 'mid-record', 'between records'].map((w, k) => `${stat((s) => s.blindAt[k])} ${w}`).join(', ');
  const byTransport = ['worker', 'eventsource'].map((t) => `${reports.filter((r) => r.transport === t).length} ${t}`).join(', ')
    + ` (${reports.filter((r) => r.raw).length} worker raw)`;
  console.log(
    `chaos.h2: ${reports.length} runs over HTTP/2 (${byTransport}; ${sum((r) => r.attempts)} downloads, ${gaveUp} stopped with an error (${errors}) and then resumed), ` +
    `${wrong} wrong files, ${hung} hung; injected: ${cuts} drops of the connection, ${stalls} stalls (${ended} ended by the browser, the rest by the proxy after ${STALL_MAX / 1000} s), ` +
    `${refused} refused connections, ${flips} bits flipped in encrypted records (${corrupted} of those records reached the browser whole); cuts and stalls hit: ${at}; ` +
    `${stat((s) => s.connections)} connections carrying ${sum((r) => r.h2Requests)} HTTP/2 requests (none over HTTP/1.1); client: ${sum((r) => r.reconnects)} reconnects, ${sum((r) => r.resumed)} chunks resumed from OPFS in ${resumedRuns} runs; ` +
    `${stat((s) => s.records)} TLS records, ${stat((s) => s.wireBytes)} bytes on the wire for ${sum((r) => r.size)} file bytes; ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  const problems = reports.flatMap((r) => r.problems);
  assert.deepEqual(problems, [], `${problems.length} problems`);
  assert.equal(wrong, 0, 'a download produced a wrong file');
  assert.equal(hung, 0, 'a download hung');
  if (seeds.length >= 12) {
    // The faults really happened, on both transports, and were handled.
    assert.ok(cuts > 0 && stalls > 0 && refused > 0, `${cuts} drops, ${stalls} stalls, ${refused} refused`);
    assert.ok(corrupted > 0, 'no corrupted TLS record reached the browser');
    for (const t of ['worker', 'eventsource']) {
      assert.ok(reports.some((r) => r.transport === t && (r.stats?.cuts ?? 0) > 0), `no ${t} run met a drop`);
    }
    assert.ok(gaveUp > 0, 'no download gave up; the clear-error path went untested');
  }
});
