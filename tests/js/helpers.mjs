// Shared by the Node and browser tests: a real chunkcast server on port 0 over
// a temporary root, and the chaos proxy (tools/chaos-proxy) that can drop,
// stall, refuse and corrupt what passes through it, so failures are injected
// on the wire without mocking any part of the client.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BINARY = path.join(REPO, 'target/debug/chunkcast');
export const RELEASE_BINARY = path.join(REPO, 'target/release/chunkcast');
/** The chaos proxy's binary (tools/chaos-proxy; scripts/test-web builds it). */
export const PROXY_BINARY = path.join(REPO, 'target/debug/chaos-proxy');
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
 * The chaos proxy (tools/chaos-proxy, spawned as target/debug/chaos-proxy)
 * in front of `target` (an http://host:port/ URL): one proxy for every test
 * that injects failures on the wire. Without `o`, it injects nothing until
 * told to:
 *
 * - `dropAll()` cuts every open connection (both sides), as a network drop,
 *   and returns how many were open;
 * - `await setRefuse(true)` resets every new connection, as a server that is
 *   down (awaited, so a request sent after it meets the new rule);
 * - `stallCurrent()` stops forwarding the server's bytes on the open
 *   connections without closing them;
 * - `await setCutBeforeEnd(true)` cuts the next stream just before its `end`
 *   event;
 * - `await forge(i, n)` forges chunk `i` the next `n` times it passes: one
 *   payload character changed and the event's own `sha256` rewritten to
 *   match, so only a check against the manifest can catch it; `corrupted`
 *   counts the forged chunks that reached the client;
 * - `requests` records each request's line and headers (names in lower
 *   case), `maxInFlightRanges` the most `/events/chunk/` requests awaiting
 *   their `end` at once.
 *
 * The seeded chaos runs use the rest: `o.seed` and `o.faults` (rates and
 * aims, as the binary's `faults` command takes them: `{cut, stall, corrupt,
 * down, maxDown, chunks, payloadChars, stallMaxMs}`), `setFaults(f)`,
 * `script(plans)` (`null` refuses a connection), `settle()`, `stats()`,
 * `takeLedger()`, `idle(ms)`, and `log` (set to a function, with
 * `o.verbose`, to follow each connection's plan, faults and chunk events).
 * `o.feedSize` (or `setFeedSize(n)`) makes the proxy scan in pieces of at
 * most that many bytes.
 * Commands reach the proxy in order; the ones that answer return a promise.
 * @param {string} target
 * @param {{seed?: number, faults?: Record<string, number>, feedSize?: number, verbose?: boolean}} [o]
 */
export async function startProxy(target, o = {}) {
  if (!existsSync(PROXY_BINARY)) throw new Error(`${PROXY_BINARY} is missing: run cargo build -p chaos-proxy first`);
  const args = ['--upstream', target, '--seed', String(o.seed ?? 0), '--faults', JSON.stringify(o.faults ?? {})];
  if (o.feedSize) args.push('--feed-size', String(o.feedSize));
  if (o.verbose) args.push('--verbose');
  const proc = spawn(PROXY_BINARY, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdin.on('error', () => {});
  /** @type {{resolve: (v: any) => void, reject: (e: Error) => void}[]} replies awaited, in command order */
  const waiting = [];
  /** @type {Set<number>} */
  const open = new Set();
  /** Sends one command; resolves with its reply. @param {string} line @returns {Promise<any>} */
  const send = (line) => new Promise((resolve, reject) => {
    if (proc.exitCode !== null || proc.stdin.destroyed) { reject(new Error(`chaos-proxy has exited: ${stderr}`)); return; }
    waiting.push({ resolve, reject });
    proc.stdin.write(`${line}\n`);
  });
  /** A command whose reply nobody awaits. @param {string} line */
  const tell = (line) => { send(line).catch(() => {}); };
  const px = {
    url: '',
    /** @type {{line: string, headers: Record<string, string>, at: number}[]} */
    requests: [],
    corrupted: 0,
    inFlightRanges: 0,
    maxInFlightRanges: 0,
    /** @type {((msg: string) => void)|null} */
    log: null,
    /** @param {boolean} on */
    setRefuse: (on) => send(`refuse ${on ? 'on' : 'off'}`),
    /** @param {boolean} on */
    setCutBeforeEnd: (on) => send(`cut-before-end ${on ? 'on' : 'off'}`),
    /** @param {number} i @param {number} n */
    forge: (i, n) => send(`corrupt ${i} ${n}`),
    dropAll() {
      const n = open.size;
      tell('drop');
      return n;
    },
    /** Stops forwarding the server's bytes on every open connection, without closing it. */
    stallCurrent() { tell('stall'); },
    eventRequests() {
      return px.requests.filter((r) => r.line.startsWith('GET /events'));
    },
    /** @param {Record<string, number>} faults */
    setFaults: (faults) => send(`faults ${JSON.stringify(faults)}`),
    /** @param {(object|null)[]} plans */
    script: (plans) => send(`script ${JSON.stringify(plans)}`),
    settle: () => send('settle'),
    /** @param {number} bytes */
    setFeedSize: (bytes) => send(`feed-size ${bytes}`),
    stats: async () => (await send('stats')).stats,
    async takeLedger() {
      const l = (await send('ledger')).ledger;
      return { ...l, intact: new Set(l.intact), corruptOnStream: new Set(l.corruptOnStream) };
    },
    /** @param {number} ms */
    idle: async (ms) => (await send(`idle ${ms}`)).idle,
    async close() {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.stdin.end('quit\n');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
    },
  };
  const lines = createInterface({ input: proc.stdout });
  px.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chaos-proxy did not start: ${stderr}`)), 10000);
    lines.once('line', (first) => {
      clearTimeout(timer);
      const m = /listening on (http:\/\/\S+\/)/.exec(first);
      if (m) resolve(m[1]); else reject(new Error(`chaos-proxy said ${JSON.stringify(first)}: ${stderr}`));
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`chaos-proxy exited with ${code}: ${stderr}`)); });
  });
  lines.on('line', (line) => {
    /** @type {any} */
    let m;
    try { m = JSON.parse(line); } catch { return; } // a line cut short by the proxy's exit
    if (m.reply !== undefined) {
      const w = waiting.shift();
      if (m.error) w?.reject(new Error(`chaos-proxy ${m.reply}: ${m.error}`)); else w?.resolve(m);
      return;
    }
    switch (m.event) {
      case 'open': open.add(m.conn); break;
      case 'close': open.delete(m.conn); break;
      case 'request': px.requests.push({ line: m.line, headers: m.headers, at: m.at }); break;
      case 'forged': px.corrupted++; break;
      case 'ranges':
        px.inFlightRanges = m.inFlight;
        px.maxInFlightRanges = Math.max(px.maxInFlightRanges, m.inFlight);
        break;
      default: px.log?.(`conn ${m.conn}: ${JSON.stringify(m)}`);
    }
  });
  proc.once('exit', () => { for (const w of waiting.splice(0)) w.reject(new Error(`chaos-proxy exited: ${stderr}`)); });
  return px;
}

/** Resolves when `pred()` is true, polling; rejects after `ms`. */
export async function until(pred, ms = 10000, what = 'condition') {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * mulberry32: a tiny, fast, well-mixed 32-bit PRNG for a test's own seeded
 * choices (which file, which rates), the same sequence on every platform.
 * (The chaos proxy draws its faults from its own seeded generator.)
 * @param {number} seed
 */
export function mulberry32(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** An integer in [lo, hi). */
    int: (/** @type {number} */ lo, /** @type {number} */ hi) => lo + Math.floor(next() * Math.max(1, hi - lo)),
    /** One element of `xs`. @template T @param {T[]} xs @returns {T} */
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  };
}

/** Mixes a run's seed with a salt, so streams drawn for different purposes are not correlated. */
export function mix(/** @type {number} */ seed, /** @type {number} */ salt) {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt >>> 0, 0xc2b2ae35);
  h ^= h >>> 16; h = Math.imul(h, 0x7feb352d); h ^= h >>> 15;
  return h >>> 0;
}

/**
 * Whether a download's failure (its ChunkcastError's `code` and `message`,
 * also as a page hands them back) is one the library promises under
 * network faults: it gave up, could not reach the server, or one chunk kept
 * failing verification.
 * @param {string|undefined} code @param {string} message
 */
export function isClearFailure(code, message) {
  if (code === 'server_down') return /gave up after \d+ attempts|cannot reach the server/.test(message);
  if (code === 'corrupt') return /chunk \d+ failed verification \d+ times/.test(message);
  return false;
}

/**
 * A whole number from the environment variable `name` (CHAOS_RUNS and the
 * like), undefined when unset or empty.
 * @param {string} name
 */
export function envInt(name) {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`);
  return Number(v);
}
