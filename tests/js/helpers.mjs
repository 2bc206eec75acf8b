// Shared by the Node and browser tests: a real chunkcast server on port 0 over
// a temporary root, and a small TCP proxy that can drop, stall, refuse and
// corrupt what passes through it, so failures are injected on the wire
// without mocking any part of the client.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BINARY = path.join(REPO, 'target/debug/chunkcast');
export const RELEASE_BINARY = path.join(REPO, 'target/release/chunkcast');
export const FIXTURES = path.join(REPO, 'fixtures');

/**
 * A temporary root with the fixtures (top level only) and `files`, which maps
 * names to contents (Buffer or string).
 * @param {Record<string, Buffer|string>} [files]
 */
export function makeRoot(files = {}) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-js-'));
  for (const name of readdirSync(FIXTURES)) {
    const p = path.join(FIXTURES, name);
    if (statSync(p).isFile()) cpSync(p, path.join(root, name));
  }
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(root, name), content);
  return root;
}

/** Deterministic pseudo-random bytes (xorshift), fast enough for 64 MiB. */
export function pseudoRandom(size, seed = 1) {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  for (; i < size; i++) buf[i] = i & 255;
  return buf;
}

export const sha256hex = (/** @type {Buffer|Uint8Array} */ b) => createHash('sha256').update(b).digest('hex');

/**
 * Starts `target/debug/chunkcast serve` on `bind` (default 127.0.0.1:0) and
 * reads the URL it prints. `stop()` kills it and removes the root if we made it.
 * `binary` overrides the executable (the speed benchmark uses the release build).
 * Tests that play a remote user (`lan.test`) bind `0.0.0.0:0`, as a LAN server would.
 * Indexes stay in memory unless `indexDir` is given.
 * @param {{root?: string, chunkSize?: string, args?: string[], files?: Record<string, Buffer|string>, binary?: string, bind?: string, indexDir?: string}} [o]
 */
export async function startServer(o = {}) {
  const binary = o.binary ?? BINARY;
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build first`);
  const ownRoot = !o.root;
  const root = o.root ?? makeRoot(o.files);
  const args = ['serve', '--root', root, '--bind', o.bind ?? '127.0.0.1:0', '--chunk-size', o.chunkSize ?? '4K',
    ...(o.indexDir ? ['--index-dir', o.indexDir] : ['--no-index-dir']), ...(o.args ?? [])];
  const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (stderr.length > 100000) stderr = stderr.slice(-50000); });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = / at (https?:\/\/\S+?:\d+\/)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}: ${stderr}`)); });
  });
  return {
    url,
    port: Number(new URL(url).port),
    root,
    proc,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      if (ownRoot) rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy in front of `target` (an http://host:port/ URL).
 *
 * - `dropAll()` cuts every open connection (both sides), as a network drop;
 * - `refuse = true` accepts and closes at once, as a server that is down;
 * - `stallCurrent()` stops forwarding the server's bytes on the open
 *   connections without closing them;
 * - `cutBeforeEnd = true` cuts the next stream just before its `end` event;
 * - `corrupt.set(i, n)` corrupts chunk `i`'s payload the next `n` times it
 *   passes, and rewrites the event's own `sha256` to match the corrupted
 *   bytes, so only a check against the manifest can catch it;
 * - `requests` records each request's line and headers.
 */
export async function startProxy(target) {
  const t = new URL(target);
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  /** @type {Set<{stalled: boolean, client: net.Socket}>} */
  const conns = new Set();
  const state = {
    refuse: false,
    cutBeforeEnd: false,
    /** @type {Map<number, number>} */
    corrupt: new Map(),
    /** @type {{line: string, headers: Record<string, string>, at: number}[]} */
    requests: [],
    corrupted: 0,
    inFlightRanges: 0,
    maxInFlightRanges: 0,
  };
  const server = net.createServer((client) => {
    if (state.refuse) { client.destroy(); return; }
    const upstream = net.connect(Number(t.port), t.hostname);
    sockets.add(client); sockets.add(upstream);
    const close = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', close); upstream.on('error', close);
    client.on('close', close); upstream.on('close', close);
    let head = '';
    let isRange = false;
    client.on('data', (d) => {
      head += d.toString('latin1');
      let k;
      while ((k = head.indexOf('\r\n\r\n')) >= 0) {
        const [line, ...rest] = head.slice(0, k).split('\r\n');
        const headers = Object.fromEntries(rest.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 1).trim()]));
        state.requests.push({ line, headers, at: Date.now() });
        if (line.includes('/events/chunk/')) {
          if (isRange) state.inFlightRanges--;
          isRange = true;
          state.inFlightRanges++;
          state.maxInFlightRanges = Math.max(state.maxInFlightRanges, state.inFlightRanges);
        }
        head = head.slice(k + 4);
      }
      upstream.write(d);
    });
    client.on('close', () => { if (isRange) { state.inFlightRanges--; isRange = false; } });
    // A range response is over at its `end` event (the connection may stay open).
    let tail = '';
    upstream.on('data', (d) => {
      const s = tail + d.toString('latin1');
      if (isRange && (s.includes('event: end\n') || /^HTTP\/1\.1 [^2]/.test(s))) { state.inFlightRanges--; isRange = false; }
      tail = s.slice(-16);
    });
    let pending = Buffer.alloc(0);
    const conn = { stalled: false, client };
    conns.add(conn);
    client.on('close', () => conns.delete(conn));
    upstream.on('data', (d) => {
      if (state.corrupt.size || state.cutBeforeEnd) {
        pending = Buffer.concat([pending, d]);
        const text = pending.toString('latin1');
        // Forward up to the start of the last incomplete chunk event.
        let cut = text.length;
        const last = text.lastIndexOf('id: ');
        if (last >= 0 && text.indexOf('\n\n', last) < 0) cut = last;
        let out = corruptEvents(text.slice(0, cut), state);
        pending = pending.subarray(cut);
        const end = state.cutBeforeEnd ? out.indexOf('event: end\n') : -1;
        if (end >= 0) {
          state.cutBeforeEnd = false;
          forward(Buffer.from(out.slice(0, end), 'latin1'));
          setTimeout(close, 20);
          return;
        }
        if (out.length) forward(Buffer.from(out, 'latin1'));
      } else {
        if (pending.length) { d = Buffer.concat([pending, d]); pending = Buffer.alloc(0); }
        forward(d);
      }
    });
    /** @param {Buffer} b */
    function forward(b) {
      if (!conn.stalled) client.write(b);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const addr = /** @type {net.AddressInfo} */ (server.address());
  return Object.assign(state, {
    url: `http://127.0.0.1:${addr.port}/`,
    dropAll() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      sockets.clear();
      return n / 2;
    },
    /** Stops forwarding the server's bytes on every open connection, without closing it. */
    stallCurrent() {
      for (const c of conns) c.stalled = true;
    },
    eventRequests() {
      return state.requests.filter((r) => r.line.startsWith('GET /events'));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  });
}

/**
 * Corrupts the payload of targeted chunk events in `text` (latin1 of the raw
 * bytes), keeping every length so the HTTP chunked framing stays valid.
 * @param {string} text @param {{corrupt: Map<number, number>, corrupted: number}} state
 */
function corruptEvents(text, state) {
  return text.replace(/id: (\d+)\nevent: chunk\ndata: (\{[^\n]*\})\n\n/g, (whole, id, data) => {
    const i = Number(id);
    const left = state.corrupt.get(i) ?? 0;
    if (left <= 0) return whole;
    state.corrupt.set(i, left - 1);
    state.corrupted++;
    const ev = JSON.parse(Buffer.from(data, 'latin1').toString('utf8'));
    let bad;
    let newData = data;
    if (typeof ev.b64 === 'string') {
      const bytes = Buffer.from(ev.b64, 'base64');
      bytes[0] ^= 0xff;
      const b64 = bytes.toString('base64');
      newData = newData.replace(ev.b64, b64);
      bad = bytes;
    } else {
      // Swap the case of the first ASCII letter of the text: same length.
      const k = newData.indexOf('"text":"') + 8;
      let j = k;
      while (!/[A-Za-z]/.test(newData[j])) j++;
      const c = newData[j];
      newData = newData.slice(0, j) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + newData.slice(j + 1);
      bad = Buffer.from(JSON.parse(Buffer.from(newData, 'latin1').toString('utf8')).text, 'utf8');
    }
    newData = newData.replace(ev.sha256, sha256hex(bad));
    return `id: ${id}\nevent: chunk\ndata: ${newData}\n\n`;
  });
}

/** Resolves when `pred()` is true, polling; rejects after `ms`. */
export async function until(pred, ms = 10000, what = 'condition') {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
