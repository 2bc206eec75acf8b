// Live text in the tests: a real server started with `serve --publish`
// (which needs --auth and an index directory), a producer that POSTs a text
// in parts (`/api/publish`, each part at the offset the last answer gave),
// and the Basic credentials every viewer request needs, for fetch and for
// the `eventsource` package.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { EventSource } from 'eventsource';

import { makeRoot, startServer } from './helpers.mjs';

export const USER = 'ann';
export const PASSWORD = 'secret';
export const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** fetch with the credentials. @type {typeof fetch} */
export const authFetch = (url, init = {}) => fetch(url, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers ?? {})), authorization: AUTH } });

/** The `eventsource` package's EventSource, sending the credentials (on reconnects too). */
export class AuthEventSource extends EventSource {
  /** @param {string|URL} url */
  constructor(url) {
    super(url, { fetch: (u, init) => authFetch(u, init) });
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A server that publishes: `serve --publish --auth ann:secret`, a root and
 * an index directory of its own (kept across `restart()`, which starts it
 * again on the same port, as a server that went down and came back).
 * @param {{args?: string[], chunkSize?: string}} [o]
 */
export async function startLiveServer(o = {}) {
  const root = makeRoot();
  const indexDir = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-live-index-'));
  const args = ['--publish', '--auth', `${USER}:${PASSWORD}`, '--retry-ms', '200', ...(o.args ?? [])];
  const start = (bind) => startServer({ root, indexDir, chunkSize: o.chunkSize ?? '4K', args, bind });
  let srv = await start();
  const live = {
    get url() { return srv.url; },
    get srv() { return srv; },
    root,
    /** Stops the server (SIGTERM) and starts it again on the same port. */
    async restart() {
      const bind = `127.0.0.1:${srv.port}`;
      await srv.stop();
      srv = await start(bind);
    },
    async stop() {
      await srv.stop();
      rmSync(root, { recursive: true, force: true });
      rmSync(indexDir, { recursive: true, force: true });
    },
  };
  return live;
}

/**
 * One part of a publication: POSTs `text` to `/api/publish` at `offset`
 * (the last answer's), the last part with `end`. Returns the answer
 * (`{file, offset, chunks, state, root}`); throws on any other status.
 * `replace` starts a finished one over.
 * @param {string} base @param {string} name @param {string} text @param {{offset?: number, end?: boolean, replace?: boolean}} [o]
 */
export async function publish(base, name, text, o = {}) {
  const u = new URL('api/publish', base);
  u.searchParams.set('file', name);
  if (o.offset) u.searchParams.set('offset', String(o.offset));
  if (o.end) u.searchParams.set('end', '1');
  if (o.replace) u.searchParams.set('replace', '1');
  const res = await authFetch(u.href, { method: 'POST', body: text, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`publish ${name} at ${o.offset ?? 0}: ${res.status} ${body}`);
  return JSON.parse(body);
}

/**
 * A producer: publishes `parts` one after another, `gap` ms apart (a longer
 * pause where `pauses` says, by part index), the last with `end`.
 * Resolves with the last answer.
 * @param {string} base @param {string} name @param {string[]} parts
 * @param {{gap?: number, pauses?: Record<number, number>, end?: boolean, offset?: number, before?: (k: number) => Promise<void>}} [o]
 */
export async function produce(base, name, parts, o = {}) {
  let offset = o.offset ?? 0;
  let last = null;
  for (let k = 0; k < parts.length; k++) {
    await o.before?.(k);
    last = await publish(base, name, parts[k], { offset, end: o.end !== false && k === parts.length - 1 });
    offset = last.offset;
    if (k < parts.length - 1) await sleep(o.pauses?.[k] ?? o.gap ?? 100);
  }
  return last;
}

/**
 * A text of about `n` characters with multi-byte characters throughout
 * (accents, CJK, emoji), so chunks are cut at character boundaries.
 * @param {number} n @param {string} [tag]
 */
export function story(n, tag = 'line') {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `${tag} ${i}: the writer goes on, café 数据 🚀 — every chunk sealed and checked.\n`;
  return s;
}

/** `text` in `k` parts of about equal size (never splitting a surrogate pair). @param {string} text @param {number} k */
export function split(text, k) {
  const chars = [...text];
  const out = [];
  for (let j = 0; j < k; j++) out.push(chars.slice(Math.floor((j * chars.length) / k), Math.floor(((j + 1) * chars.length) / k)).join(''));
  return out;
}
