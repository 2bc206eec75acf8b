#!/usr/bin/env node
// Measures the browser client's download speed next to curl's and Chromium's
// own download manager's, on this machine.
//
//   node scripts/bench-browser.mjs [SIZE_MIB ...]      (default: 256 1024)
//
// For each size it generates a file under a temporary root, starts
// target/release/chunkcast (256 KiB chunks; built when missing) on
// 0.0.0.0:0, and opens a bench
// page in /usr/bin/chromium started WITHOUT any automation or debugger (a CDP
// connection copies every SSE message and slows EventSource downloads ~6×).
// Two rows per size (ROWS=secure,insecure picks):
//   secure    http://127.0.0.1:PORT/ (localhost is a secure context): the
//             file goes into OPFS (decode, WebCrypto SHA-256, write through
//             the storage worker), measured as several cases (CASES picks):
//               receive        the page's native EventSource alone (events
//                              counted and dropped: no decode, hash, storage)
//               receive-fetch  a worker that only reads the /events bytes
//                              with fetch(), payload-equivalent
//               receive-files  a worker that only reads /files/NAME with
//                              fetch() (a default reader: a new buffer per read)
//               receive-byob   the same read as the raw path reads it: BYOB
//                              into one reused 4 MiB buffer (cutter.js); the
//                              raw path's ceiling
//               receive-hash   the same, and each 256 KiB chunk hashed in
//                              place with WebCrypto: reading and verifying,
//                              nothing copied or stored; the time inside the
//                              digest calls is printed ("digestMs")
//               receive-write  the same, and the hashed chunks written at
//                              once through an OPFS sync access handle in
//                              the same worker (1 MiB writes, one flush at
//                              the end): the least a verified download into
//                              OPFS can cost, with no copy, no second worker
//                              and no bookkeeping
//               parse-fetch    the same worker also parsing the bytes as
//                              SSE (lib/sse.js), events
//                              dropped: what parsing alone costs (not a
//                              ceiling; off by default)
//               eventsource    the library, transport 'eventsource'
//               worker         the library, transport 'worker' with its
//                              default raw path (the bytes read from /files
//                              with Range, cut into chunks, verified, written
//                              by the OPFS worker: lib/transport/raw.js)
//               worker-sse     the library, transport 'worker' with raw: false
//                              (the event stream: fetch, parse, decode,
//                              verify and write in the OPFS worker)
//               old            the library of COMPARE_WEB=dir (e.g. an older
//                              commit's web/), if given, with the transport
//                              COMPARE_TRANSPORT names (else its default)
//               native         Chromium's own download manager saving
//                              /files/NAME?download=1 (Content-Disposition:
//                              attachment) to disk: Chromium started the same
//                              way but with a fresh HOME, on a page of the
//                              listener here that navigates to the file; timed
//                              from that navigation until HOME/Downloads/NAME
//                              exists at full size (Chromium renames its
//                              .crdownload only once the download is complete),
//                              polled every 10 ms. Plain --headless (the new
//                              headless mode in Chromium 156) saves downloads
//                              with no CDP Browser.setDownloadBehavior and no
//                              Preferences file. The library's download cases
//                              are also printed as "library ÷ native" ratios
//                              (median over median);
//             The two receive cases are the ceiling: each of the library's
//             download cases is printed also as a percentage of the higher
//             receive median of the same run (the machine is shared, so only
//             ratios within one run compare);
//   insecure  http://lan.test:PORT/ with lan.test mapped to 127.0.0.1, as a
//             person on the LAN opens a server over plain HTTP: no WebCrypto,
//             no OPFS, so the vendored WebAssembly SHA-256 and IndexedDB.
// The page POSTs its own progress figures to a small listener here. Then curl fetches
// /files/NAME from the same server, to /dev/null and into a new file (what
// storing the bytes costs on this machine: on a VM whose memory is handed
// back to the host when freed, page-cache pages touched for the first time
// can cost more than the network). Prints MB/s (10^6 bytes/s) for all.
// Each size and row runs RUNS times (default 3), alternating browser and curl, and
// the medians are printed last, with the page's own per-stage timings
// (milliseconds spent in each step of the receive path) for the median run.
// CHROMIUM=/path overrides the browser; STORE=idb|memory overrides the secure row's store
// (INSECURE_STORE=memory the insecure row's: the cost of IndexedDB apart);
// WEB=dir benchmarks another copy of web/ (e.g. an older commit's);
// CASES=receive,receive-fetch,receive-files,receive-byob,receive-hash,receive-write,eventsource,worker,worker-sse,native,old picks the secure row's cases
// (every run goes through each case in turn, so they share the machine's mood).

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { RELEASE_BINARY, REPO, pseudoRandom, startServer } from '../tests/js/helpers.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STORE = process.env.STORE || 'opfs';
const LAN_HOST = 'lan.test';
const ROWS = [
  { row: 'secure', host: '127.0.0.1', store: STORE },
  { row: 'insecure', host: LAN_HOST, store: process.env.INSECURE_STORE || 'idb' },
].filter((r) => (process.env.ROWS || 'secure,insecure').split(',').includes(r.row));
const CASES = (process.env.CASES || 'receive,receive-fetch,receive-files,receive-byob,receive-hash,receive-write,eventsource,worker,worker-sse,native,old').split(',')
  .filter((c) => c !== 'old' || process.env.COMPARE_WEB);
const RECEIVE = new Set(['receive', 'receive-fetch', 'receive-files', 'receive-byob']);
/** The cases without the library: RECEIVE, and those that do a part of its work (parse, hash, write). */
const READ_ONLY = new Set([...RECEIVE, 'parse-fetch', 'receive-hash', 'receive-write']);
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (!sizes.length) sizes.push(256, 1024);
const RUNS = Math.max(1, Number(process.env.RUNS) || 3);
if (!existsSync(RELEASE_BINARY)) execFileSync('cargo', ['build', '--release', '--quiet', '--bin', 'chunkcast'], { cwd: REPO, stdio: 'inherit' });

const tmp = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-bench-'));
const root = path.join(tmp, 'root');
const web = path.join(tmp, 'web');
mkdirSync(root);
cpSync(process.env.WEB || path.join(REPO, 'web'), web, { recursive: true });
// The other library is served by a second server on the same root (the page's files are served flat).
const oldWeb = path.join(tmp, 'old-web');
if (process.env.COMPARE_WEB) cpSync(process.env.COMPARE_WEB, oldWeb, { recursive: true });
const benchPage = `<!doctype html><meta charset="utf-8"><title>bench</title>
<p id="out">running</p>
<script type="module">
import * as lib from './chunkcast.js';
const { Download, clearStored } = lib;
const hasWebCrypto = lib.hasWebCrypto ?? !!crypto.subtle; // an older library (COMPARE_WEB) may not export it
const q = new URLSearchParams(location.search);
const report = (body) => fetch(q.get('report'), { method: 'POST', body: JSON.stringify(body) });
const file = q.get('file');
if (['receive-files', 'receive-byob', 'receive-hash', 'receive-write'].includes(q.get('mode'))) {
  // A worker that only reads the raw bytes with fetch() (and, receive-hash, verifies them): the raw path's ceilings.
  const w = new Worker('/bench-receive-files.js?file=' + encodeURIComponent(file) + '&mode=' + q.get('mode'), { type: 'module' });
  w.onmessage = (e) => { report({ ok: true, file, store: 'receive only, /files with fetch in a worker', size: e.data.bytes, elapsed: e.data.elapsed, average: e.data.bytes / e.data.elapsed, stats: e.data.stats }); };
  await new Promise(() => {});
}
if (q.get('mode') === 'receive-fetch' || q.get('mode') === 'parse-fetch') {
  // A worker that only reads the stream's bytes with fetch(): the worker transport's ceiling (parse-fetch: and parses them).
  const w = new Worker('/bench-receive-fetch.js?file=' + encodeURIComponent(file) + '&parse=' + (q.get('mode') === 'parse-fetch' ? 1 : 0), { type: 'module' });
  w.onmessage = (e) => { const size = Number(q.get('size')); report({ ok: true, file, store: 'receive only, fetch in a worker', size, elapsed: e.data.elapsed, average: size / e.data.elapsed, wire: e.data.bytes }); };
  await new Promise(() => {});
}
if (q.get('mode') === 'receive-worker') {
  // The same, with the EventSource in a dedicated worker.
  const w = new Worker('bench-receive.js?file=' + encodeURIComponent(file));
  w.onmessage = (e) => report({ ok: true, file, store: 'receive only, worker', size: e.data.bytes * 0.75, elapsed: e.data.elapsed, average: e.data.bytes * 0.75 / e.data.elapsed });
  await new Promise(() => {});
}
if (q.get('mode') === 'receive') {
  // The ceiling: the native EventSource alone, events counted and dropped.
  const t0 = performance.now();
  let bytes = 0;
  const es = new EventSource('events?file=' + encodeURIComponent(file));
  es.addEventListener('chunk', (e) => { bytes += e.data.length - e.data.indexOf('"b64":"') - 8; });
  es.addEventListener('end', () => {
    es.close();
    const elapsed = (performance.now() - t0) / 1000;
    report({ ok: true, file, store: 'receive only', size: bytes * 3 / 4, elapsed, average: bytes * 0.75 / elapsed });
  });
  await new Promise(() => {});
}
await clearStored(file).catch(() => {});
const stats = {};
const dl = new Download(file, { store: q.get('store'), stats, transport: q.get('transport') || undefined, raw: q.get('raw') === '0' ? false : undefined });
// How late a 20 ms timer fires, summed: time the main thread was busy.
let lag = 0, last = performance.now();
const probe = setInterval(() => { const t = performance.now(); lag += Math.max(0, t - last - 20); last = t; }, 20);
dl.start();
try {
  await dl.done;
  const p = dl.progress();
  clearInterval(probe);
  stats.mainLag = lag;
  Object.assign(stats, dl.store.timing || {}, dl.transport?.timing ? await dl.transport.timing() : {});
  delete stats.lastEvent;
  for (const k in stats) stats[k] = Math.round(stats[k]);
  await report({ ok: true, file, store: dl.store.kind, transport: dl.transportKind, size: p.size, elapsed: p.elapsed, average: p.averageBytesPerSecond,
    chunks: p.chunks, failed: p.chunksFailed, native: typeof Uint8Array.fromBase64 === 'function', ua: navigator.userAgent, stats,
    secure: window.isSecureContext, sha256: hasWebCrypto ? 'webcrypto' : 'wasm' });
  await dl.close();
  await clearStored(file).catch(() => {});
} catch (e) {
  await report({ ok: false, file, error: String(e && e.message || e) });
}
</script>`;
writeFileSync(path.join(web, 'bench.html'), benchPage);
if (process.env.COMPARE_WEB) writeFileSync(path.join(oldWeb, 'bench.html'), benchPage);
writeFileSync(path.join(web, 'bench-receive-fetch.js'), `import { SseParser } from '/lib/sse.js';
const q = new URLSearchParams(location.search);
const parser = q.get('parse') === '1' ? new SseParser(() => {}) : null;
const t0 = performance.now();
const res = await fetch('/events?file=' + encodeURIComponent(q.get('file')), { cache: 'no-store' });
const reader = res.body.getReader();
let bytes = 0;
for (;;) { const { done, value } = await reader.read(); if (done) break; bytes += value.length; parser?.push(value); }
postMessage({ bytes, elapsed: (performance.now() - t0) / 1000 });
`);

writeFileSync(path.join(web, 'bench-receive-files.js'), `const q = new URLSearchParams(location.search);
const mode = q.get('mode');
const t0 = performance.now();
const res = await fetch('/files/' + encodeURIComponent(q.get('file')), { cache: 'no-store' });
let bytes = 0;
const stats = {};
if (mode === 'receive-files') {
  const reader = res.body.getReader();
  for (;;) { const { done, value } = await reader.read(); if (done) break; bytes += value.length; }
} else {
  // As raw.js reads (cutter.js): BYOB into one 4 MiB buffer, handed back by each read.
  const CHUNK = 256 << 10;
  const reader = res.body.getReader({ mode: 'byob' });
  let buf = new ArrayBuffer(4 << 20);
  let fill = 0;
  let reads = 0;
  let digestMs = 0;
  let writeMs = 0;
  const out = mode === 'receive-write'
    ? await (await (await navigator.storage.getDirectory()).getFileHandle('bench-write.part', { create: true })).createSyncAccessHandle()
    : null;
  out?.truncate(0);
  let off = 0;
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(buf, fill, buf.byteLength - fill));
    if (value) buf = value.buffer;
    if (done) break;
    reads++;
    bytes += value.length;
    fill += value.length;
    let at = 0;
    if (mode === 'receive-hash' || mode === 'receive-write') {
      const t = performance.now();
      const ds = [];
      for (; fill - at >= CHUNK; at += CHUNK) ds.push(crypto.subtle.digest('SHA-256', new Uint8Array(buf, at, CHUNK)));
      digestMs += performance.now() - t;
      if (out && at) {
        await Promise.all(ds);
        const t1 = performance.now();
        for (let w = 0; w < at; w += 1 << 20) out.write(new Uint8Array(buf, w, Math.min(1 << 20, at - w)), { at: off + w });
        off += at;
        writeMs += performance.now() - t1;
      }
    } else at = fill;
    new Uint8Array(buf).copyWithin(0, at, fill);
    fill -= at;
  }
  if (mode === 'receive-hash' && fill) await crypto.subtle.digest('SHA-256', new Uint8Array(buf, 0, fill));
  if (out) { out.write(new Uint8Array(buf, 0, fill), { at: off }); out.flush(); out.close(); }
  Object.assign(stats, { reads, digestMs: Math.round(digestMs), writeMs: Math.round(writeMs) });
}
postMessage({ bytes, elapsed: (performance.now() - t0) / 1000, stats });
`);

writeFileSync(path.join(web, 'bench-receive.js'), `const t0 = performance.now();
let bytes = 0;
const es = new EventSource('events?file=' + encodeURIComponent(new URLSearchParams(location.search).get('file')));
es.addEventListener('chunk', (e) => { bytes += e.data.length - e.data.indexOf('"b64":"') - 8; });
es.addEventListener('end', () => { es.close(); postMessage({ bytes, elapsed: (performance.now() - t0) / 1000 }); });
`);

// A listener for the page's figures. A report is answered only once the
// browser's CPU time is read (`answer`): the page closes its download (and
// its workers, whose threads take their CPU time with them) after that.
let waiter = null;
let answer = () => {};
// The native case's page: it tells the listener it is about to navigate
// (`navigating` notes the time), waits for the answer, then navigates to
// the file, which Chromium hands to its download manager.
let navigating = () => {};
const nativePage = (/** @type {string} */ to) => `<!doctype html><meta charset="utf-8"><title>native</title>
<script>fetch('/native-start', { method: 'POST' }).then(() => { location.href = ${JSON.stringify(to)}; });</script>`;
const listener = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const reply = () => res.writeHead(204, { 'Access-Control-Allow-Origin': '*' }).end();
    const url = new URL(req.url || '/', 'http://listener');
    if (req.method === 'GET' && url.pathname === '/native') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(nativePage(url.searchParams.get('to') || ''));
    } else if (req.method === 'POST' && url.pathname === '/native-start') { navigating(); reply(); }
    else if (req.method === 'POST' && waiter) { answer = reply; waiter(JSON.parse(body)); } else reply();
  });
});
await new Promise((r) => listener.listen(0, '127.0.0.1', r));
const reportUrl = `http://127.0.0.1:${listener.address().port}/`;

const files = [];
for (const mib of sizes) {
  const name = `bench-${mib}MiB.bin`;
  const fd = openSync(path.join(root, name), 'w', 0o644);
  for (let k = 0; k < mib; k += 64) writeSync(fd, pseudoRandom(Math.min(64, mib - k) << 20, 1000 + k));
  closeSync(fd);
  files.push({ name, bytes: mib << 20 });
}
const srv = await startServer({ root, chunkSize: '256K', bind: '0.0.0.0:0', args: ['--web-dir', web], binary: RELEASE_BINARY });
const local = `http://127.0.0.1:${srv.port}/`;
const srvOld = process.env.COMPARE_WEB
  ? await startServer({ root, chunkSize: '256K', bind: '0.0.0.0:0', args: ['--web-dir', oldWeb], binary: RELEASE_BINARY })
  : null;
console.log(`server ${local} (release, 256 KiB chunks), rows ${ROWS.map((r) => `${r.row} (${r.host}, ${r.store})`).join(', ')}, ${os.cpus().length} cores, ${RUNS} runs each`);

const mb = (/** @type {number} */ bps) => (bps / 1e6).toFixed(0);
const median = (/** @type {number[]} */ xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

/**
 * The native case: resolves once `dir` holds `name` at `bytes`, with the
 * seconds from the page's navigation to then. Chromium writes
 * `Unconfirmed N.crdownload` (or `NAME.crdownload`) and renames it to NAME
 * only when the download is complete, after its Safe Browsing check (a ping
 * that fails at once here, with no route out), so a file of that name at
 * full size is the end. `written` is when the partial file first held every
 * byte: the gap to the rename is what Chromium does after the transfer
 * (0.1-0.2 s in most runs; by hand, a download that finished within ~3 s of
 * Chromium's start waited up to 2.5 s for the rename).
 */
function nativeDownload(/** @type {string} */ dir, /** @type {string} */ name, /** @type {number} */ bytes) {
  let t0 = 0;
  let written = 0;
  let poll;
  navigating = () => { t0 = performance.now(); };
  const done = new Promise((resolve) => {
    poll = setInterval(() => {
      if (!t0) return;
      let entries = [];
      try { entries = readdirSync(dir); } catch { return; }
      const now = performance.now();
      for (const e of entries) {
        let size = -1;
        try { size = statSync(path.join(dir, e)).size; } catch { continue; }
        if (e === name && size === bytes) {
          clearInterval(poll);
          const elapsed = (now - t0) / 1000;
          resolve({ ok: true, file: name, store: 'Chromium download manager, HOME/Downloads', size: bytes, elapsed, average: bytes / elapsed,
            written: written ? (written - t0) / 1000 : null });
          return;
        }
        if (!written && e.endsWith('.crdownload') && size === bytes) written = now;
      }
    }, 10);
  });
  return { done, stop: () => { clearInterval(poll); navigating = () => {}; } };
}

/** One download in a fresh Chromium profile; resolves with the page's report. */
async function browserRun(f, /** @type {typeof ROWS[number]} */ row, /** @type {string} */ kase) {
  const profile = mkdtempSync(path.join(tmp, 'profile-'));
  const mode = READ_ONLY.has(kase) ? kase : 'download';
  const transport = kase === 'worker' || kase === 'eventsource' ? kase : kase === 'worker-sse' ? 'worker' : kase === 'old' ? process.env.COMPARE_TRANSPORT ?? '' : '';
  const port = kase === 'old' && srvOld ? srvOld.port : srv.port;
  // The native case: a HOME of its own, whose Downloads is where Chromium saves.
  const home = kase === 'native' ? mkdtempSync(path.join(tmp, 'home-')) : null;
  const url = home
    ? `${reportUrl}native?to=${encodeURIComponent(`http://${row.host}:${srv.port}/files/${encodeURIComponent(f.name)}?download=1`)}`
    : `http://${row.host}:${port}/bench.html?file=${encodeURIComponent(f.name)}&size=${f.bytes}&store=${row.store}&mode=${mode}&transport=${transport}&raw=${kase === 'worker-sse' ? 0 : 1}&report=${encodeURIComponent(reportUrl)}`;
  const native = home ? nativeDownload(path.join(home, 'Downloads'), f.name, f.bytes) : null;
  const got = native ? native.done : new Promise((resolve) => { waiter = resolve; });
  const browser = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`,
    `--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1`, url],
  { stdio: 'ignore', env: home ? { ...process.env, HOME: home } : process.env });
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve({ ok: false, error: 'timed out after 600 s' }), 600_000); });
  const server0 = cpuByThread([srv.proc.pid]);
  // A browser that exits (or crashes) before its page reports fails the run at once.
  const exited = new Promise((resolve) => browser.once('exit', (code, sig) => resolve({ ok: false, error: `chromium exited (${sig ?? code}) before the page reported` })));
  const r = await Promise.race([got, timeout, exited]);
  clearTimeout(timer);
  native?.stop();
  const cpu = cpuByThread([browser.pid]);
  answer();
  answer = () => {}; // the native case has no report to answer
  const server1 = cpuByThread([srv.proc.pid]);
  for (const k in server1) cpu[`server ${k}`] = server1[k] - (server0[k] || 0);
  r.cpu = Object.fromEntries(Object.entries(cpu).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +v.toFixed(2)]));
  browser.kill('SIGTERM');
  await new Promise((res) => { browser.once('exit', res); setTimeout(res, 3000); });
  // Chromium's helpers may still be writing into the profile for a moment.
  try { rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); } catch { /* removed with tmp */ }
  if (home) try { rmSync(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); } catch { /* removed with tmp */ }
  return r;
}

/**
 * CPU seconds per thread name of `pid` and its descendants, from /proc (Linux
 * only; empty elsewhere): which threads the download kept busy, with no
 * profiler attached. Thread names with a number suffix are merged.
 * @param {number[]} pids
 */
function cpuByThread(pids) {
  /** @type {Record<string, number>} */
  const out = {};
  try {
    const parent = new Map();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8');
        parent.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
      } catch { /* gone */ }
    }
    const all = new Set(pids);
    for (let grew = true; grew;) {
      grew = false;
      for (const [p, pp] of parent) if (!all.has(p) && all.has(pp)) { all.add(p); grew = true; }
    }
    for (const p of all) {
      let kind = '';
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        const m = /--type=([\w-]+)/.exec(cmd);
        const u = /--utility-sub-type=[\w.]*?(\w+)\u0000/.exec(cmd);
        kind = m ? (u ? u[1] : m[1]) : '';
      } catch { /* gone */ }
      let tasks = [];
      try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; }
      for (const t of tasks) {
        try {
          const st = readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8');
          const name = `${kind ? `${kind}/` : ''}${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')).replace(/[\d:]+$/, '').trim()}`;
          const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
          const sec = (Number(f[11]) + Number(f[12])) / 100;
          if (sec > 0) out[name] = (out[name] || 0) + sec;
        } catch { /* gone */ }
      }
    }
  } catch { /* no /proc */ }
  return out;
}

const curl = (/** @type {string} */ url, out = '/dev/null') => Number(execFileSync('curl', ['-s', '-o', out, '-w', '%{speed_download}', url]).toString());
/** curl of `url` into a new file on this disk (removed after): what storing alone allows here. */
const curlToFile = (/** @type {string} */ url) => {
  const out = path.join(tmp, 'curl-out');
  try { return curl(url, out); } finally { rmSync(out, { force: true }); }
};

const results = [];
for (const f of files) {
  // Index first, so neither measurement pays for hashing the file once.
  execFileSync('curl', ['-sf', '-o', '/dev/null', `${local}api/manifest?file=${encodeURIComponent(f.name)}`]);
  if (srvOld) execFileSync('curl', ['-sf', '-o', '/dev/null', `http://127.0.0.1:${srvOld.port}/api/manifest?file=${encodeURIComponent(f.name)}`]);
  for (const row of ROWS) {
    // The insecure row has neither OPFS nor the worker transport: the library through EventSource only.
    const cases = row.row === 'secure' ? CASES : ['eventsource'];
    /** @type {Record<string, any[]>} */
    const runs = Object.fromEntries(cases.map((c) => [c, []]));
    const curls = [];
    const curlFiles = [];
    for (let k = 0; k < RUNS; k++) {
      for (const kase of cases) {
        const r = await browserRun(f, row, kase);
        const label = READ_ONLY.has(kase) ? kase
          : kase === 'native' ? `native (${r.store ?? 'Chromium download manager'}${r.written ? `; every byte on disk after ${r.written.toFixed(2)} s` : ''})`
          : `${kase} (${r.store ?? row.store}${r.transport ? `, transport ${r.transport}` : ''}${r.sha256 ? `, SHA-256 ${r.sha256}` : ''})`;
        console.log(r.ok
          ? `${f.name} ${row.row} #${k + 1} ${label}: ${mb(r.average)} MB/s in ${r.elapsed.toFixed(2)} s`
          : `${f.name} ${row.row} #${k + 1} ${label}: FAILED (${r.error})`);
        runs[kase].push(r);
      }
      const curlBps = curl(`${local}files/${encodeURIComponent(f.name)}`);
      const toFile = curlToFile(`${local}files/${encodeURIComponent(f.name)}`);
      console.log(`${f.name} ${row.row} #${k + 1} curl /files: ${mb(curlBps)} MB/s; into a file: ${mb(toFile)} MB/s`);
      curls.push(curlBps);
      curlFiles.push(toFile);
    }
    results.push({ f, row, runs, curls, curlFiles });
  }
}
console.log('\nmedians (MB/s = 10^6 bytes/s of payload; ratios are within this run, the only fair comparison on a shared machine):');
for (const { f, row, runs, curls, curlFiles } of results) {
  console.log(`${f.name} ${row.row} (${row.host}): curl /files ${mb(median(curls))} MB/s (runs: ${curls.map(mb).join(', ')}); into a new file ${mb(median(curlFiles))} MB/s (runs: ${curlFiles.map(mb).join(', ')})`);
  /** @type {Record<string, number>} */
  const med = {};
  for (const [kase, list] of Object.entries(runs)) {
    const ok = list.filter((r) => r.ok);
    if (ok.length) med[kase] = median(ok.map((r) => r.average));
  }
  const ceiling = Math.max(0, ...[...RECEIVE].map((c) => med[c] ?? 0));
  for (const [kase, list] of Object.entries(runs)) {
    const ok = list.filter((r) => r.ok);
    const mid = ok.length ? ok.find((r) => r.average === med[kase]) : null;
    const ratio = mid && ceiling && !READ_ONLY.has(kase) && kase !== 'native' ? `, ${((100 * mid.average) / ceiling).toFixed(0)}% of the receive-only ceiling${
      ['receive-hash', 'receive-write'].filter((c) => med[c]).map((c) => `, ${((100 * mid.average) / med[c]).toFixed(0)}% of ${c}`).join('')}` : '';
    console.log(`  ${kase}: ${mid ? `${mb(mid.average)} MB/s` : '-'}${ratio} (runs: ${ok.map((r) => mb(r.average)).join(', ')}${list.length > ok.length ? `; ${list.length - ok.length} failed` : ''})`);
    if (mid?.written) console.log(`    every byte on disk (.crdownload) after ${mid.written.toFixed(2)} s, renamed to the name (finished) after ${mid.elapsed.toFixed(2)} s`);
    if (mid?.stats && Object.keys(mid.stats).length) console.log(`    stages (ms): ${JSON.stringify(mid.stats)}`);
    if (mid?.cpu) console.log(`    CPU seconds by thread: ${JSON.stringify(mid.cpu)}`);
  }
  if (ceiling) console.log(`  ceiling (higher receive-only median): ${mb(ceiling)} MB/s`);
  // The issue's target: the verified download at >= 1.0x Chromium's own download of the same file.
  const library = Object.keys(med).filter((k) => !READ_ONLY.has(k) && k !== 'native');
  if (med.native && library.length) {
    console.log(`  library ÷ native (median over median; native ${mb(med.native)} MB/s): ${library.map((k) => `${k} ${(med[k] / med.native).toFixed(2)}×`).join(', ')}`);
  }
}
await srv.stop();
await srvOld?.stop();
listener.close();
rmSync(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
if (results.some(({ runs }) => Object.values(runs).some((list) => list.some((r) => !r.ok)))) process.exit(1);
