#!/usr/bin/env node
// Measures the browser client's download speed next to curl's, on this machine.
//
//   node scripts/bench-browser.mjs [SIZE_MIB ...]      (default: 256 1024)
//
// For each size it generates a file under a temporary root, starts
// target/debug/chunkcast (256 KiB chunks) on 127.0.0.1:0, and opens a bench
// page in /usr/bin/chromium started WITHOUT any automation or debugger (a CDP
// connection copies every SSE message and slows EventSource downloads ~6×).
// The page downloads the file with chunkcast.js into OPFS (disk-backed
// storage: decode, SHA-256 verify, write through the storage worker) and
// POSTs its own progress figures to a small listener here. Then curl fetches
// /files/NAME from the same server. Prints MB/s (10^6 bytes/s) for both.
// CHROMIUM=/path overrides the browser; STORE=idb|memory overrides the store.

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { REPO, pseudoRandom, startServer } from '../tests/js/helpers.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STORE = process.env.STORE || 'opfs';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (!sizes.length) sizes.push(256, 1024);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-bench-'));
const root = path.join(tmp, 'root');
const web = path.join(tmp, 'web');
mkdirSync(root);
cpSync(path.join(REPO, 'web'), web, { recursive: true });
writeFileSync(path.join(web, 'bench.html'), `<!doctype html><meta charset="utf-8"><title>bench</title>
<p id="out">running</p>
<script type="module">
import { Download, clearStored } from './chunkcast.js';
const q = new URLSearchParams(location.search);
const report = (body) => fetch(q.get('report'), { method: 'POST', body: JSON.stringify(body) });
const file = q.get('file');
await clearStored(file).catch(() => {});
const dl = new Download(file, { store: q.get('store') });
dl.start();
try {
  await dl.done;
  const p = dl.progress();
  await report({ ok: true, file, store: dl.store.kind, size: p.size, elapsed: p.elapsed, average: p.averageBytesPerSecond,
    chunks: p.chunks, failed: p.chunksFailed, native: typeof Uint8Array.fromBase64 === 'function', ua: navigator.userAgent });
  await dl.close();
  await clearStored(file).catch(() => {});
} catch (e) {
  await report({ ok: false, file, error: String(e && e.message || e) });
}
</script>`);

// A listener for the page's figures.
let waiter = null;
const listener = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    res.writeHead(204, { 'Access-Control-Allow-Origin': '*' }).end();
    if (req.method === 'POST' && waiter) waiter(JSON.parse(body));
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
const srv = await startServer({ root, chunkSize: '256K', args: ['--web-dir', web] });
console.log(`server ${srv.url} (256 KiB chunks), store ${STORE}, ${os.cpus().length} cores`);

const results = [];
for (const f of files) {
  // Index first, so neither measurement pays for hashing the file once.
  execFileSync('curl', ['-sf', '-o', '/dev/null', `${srv.url}api/manifest?file=${encodeURIComponent(f.name)}`]);
  const profile = mkdtempSync(path.join(tmp, 'profile-'));
  const url = `${srv.url}bench.html?file=${encodeURIComponent(f.name)}&store=${STORE}&report=${encodeURIComponent(reportUrl)}`;
  const got = new Promise((resolve) => { waiter = resolve; });
  const browser = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, url],
  { stdio: 'ignore' });
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve({ ok: false, error: 'timed out after 600 s' }), 600_000); });
  const r = await Promise.race([got, timeout]);
  clearTimeout(timer);
  browser.kill('SIGTERM');
  await new Promise((res) => { browser.once('exit', res); setTimeout(res, 3000); });
  rmSync(profile, { recursive: true, force: true });
  const curlBps = Number(execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{speed_download}', `${srv.url}files/${encodeURIComponent(f.name)}`]).toString());
  const line = r.ok
    ? `${f.name}: browser (${r.store}) ${(r.average / 1e6).toFixed(0)} MB/s in ${r.elapsed.toFixed(2)} s; curl /files ${(curlBps / 1e6).toFixed(0)} MB/s`
    : `${f.name}: browser FAILED (${r.error}); curl /files ${(curlBps / 1e6).toFixed(0)} MB/s`;
  console.log(line);
  results.push({ ...r, curl: curlBps });
}
await srv.stop();
listener.close();
rmSync(tmp, { recursive: true, force: true });
if (results.some((r) => !r.ok)) process.exit(1);
