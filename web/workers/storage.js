// @ts-check
/** @file The OPFS store's worker (a module worker): writes a download's chunks through a sync access handle, off the page's main thread. */
//
// Files, in the OPFS directory `chunkcast/`:
//   <key>.part    the file's bytes, each chunk at its offset
//   <key>.state0, <key>.state1  JSON {seq, version, size, chunks, bitmap}:
//                 which chunks are on disk, in two alternating slots (see
//                 lib/store/state.js: a torn write never loses the last record)
// The state is written only after the data it describes has been flushed, so
// a reload never trusts a chunk that did not reach the disk; on open, every
// recorded chunk is read back and hashed again anyway (a torn write or a
// tampered file costs a re-download of that chunk, never a wrong result).
//
// Messages (see OpfsStore in lib/store/opfs.js): open, put, flush, read, finish,
// discard, close. Each but `put` is answered with {id, result|error}; `put`
// ({buf, list}: verified chunks staged in a transferred buffer) is answered
// with {op: 'written', bytes, buf}, the buffer transferred back for reuse, so
// the page can bound what it has posted and not yet seen written.
//
// The worker transport (lib/transport/, workers/transport.js) reads, decodes
// and verifies chunks in a worker of its own and puts them here directly,
// without the page in between: `port` ({port}, a MessagePort for the open
// file) takes the same `put` messages and answers `written` on the port.
// The port is closed with the file, so a put meant for an earlier open (or
// an earlier version of the file) can never land in a later one.

import { decodeBase64, encodeBase64, toHex } from '../lib/bytes.js';
import { span } from '../lib/protocol.js';
import { sha256 } from '../lib/sha256.js';
import { opfsFiles } from '../lib/store/common.js';
import { newest, stateSlots } from '../lib/store/state.js';

/** @type {FileSystemSyncAccessHandle|null} */
let data = null;
/** @type {FileSystemSyncAccessHandle[]} the two record slots */
let slots = [];
let nextSlot = 0; // the slot the next record goes to: never the newest one
let seq = 0; // the newest record's sequence number
/** @type {FileSystemDirectoryHandle|null} */
let dir = null;
let key = '';
/** @type {{version: string, size: number, chunks: number, name: string}|null} */
let info = null;
let bitmap = new Uint8Array(0);
/** @type {MessagePort|null} the worker transport's port for the open file (see `port`) */
let port = null;
let dirty = false;
/** @type {any} */
let saveTimer = null;

// Milliseconds spent writing chunks and flushing, reported by `finish`.
const timing = { writeMs: 0, flushMs: 0, puts: 0 };

// Persist the record at most this often while chunks stream in: each save
// flushes the data file, which costs a disk sync.
const SAVE_EVERY_MS = 500;

// Bytes per write call at most. Consecutive chunks are written together,
// but never more than this at once: on this machine's kernel (Linux 6.18,
// ext4, in a VM) a write of 4 MiB into new pages of the page cache cost 12×
// one of 1 MiB (1 GiB through a sync access handle in 4 MiB writes: 3.0 s;
// in 1 MiB writes: 0.25 s; 256 KiB: 0.37 s; `dd bs=4M` against `bs=256K`
// alike), and that write was the download's bottleneck.
const WRITE_MAX = 1 << 20;

async function directory() {
  if (!dir) dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('chunkcast', { create: true });
  return dir;
}

/** Writes the record into the older slot; the newer one is left untouched. */
function saveState() {
  if (!data || slots.length !== 2 || !info) return;
  const t0 = performance.now();
  data.flush(); // data before the record of it
  const json = new TextEncoder().encode(JSON.stringify({ seq: seq + 1, ...info, bitmap: encodeBase64(bitmap) }));
  const slot = slots[nextSlot];
  slot.truncate(0);
  slot.write(json, { at: 0 });
  slot.flush();
  seq += 1;
  nextSlot = 1 - nextSlot;
  dirty = false;
  timing.flushMs += performance.now() - t0;
}

function scheduleSave() {
  dirty = true;
  if (!saveTimer) {
    saveTimer = setTimeout(() => {
      saveTimer = null;
      try { if (dirty) saveState(); } catch (e) { fatal(e); }
    }, SAVE_EVERY_MS);
  }
}

function closeHandles() {
  port?.close();
  port = null;
  clearTimeout(saveTimer);
  saveTimer = null;
  data?.close();
  for (const s of slots) s.close();
  data = null;
  slots = [];
}

/** @param {unknown} e */
function fatal(e) {
  postMessage({ op: 'fatal', error: `storage: ${e instanceof Error ? e.message : String(e)}` });
}

/** @param {any} m  the manifest's fields the store needs */
async function open(m) {
  const d = await directory();
  // Reopened (the file changed while downloading): what was written is recorded first.
  if (data && dirty) saveState();
  closeHandles();
  try {
    data = await (await d.getFileHandle(`${key}.part`, { create: true })).createSyncAccessHandle();
    for (const f of stateSlots(key)) slots.push(await (await d.getFileHandle(f, { create: true })).createSyncAccessHandle());
  } catch (e) {
    closeHandles();
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new Error(`cannot open the OPFS file (is this download open in another tab?) ${why}`);
  }
  info = { version: m.version, size: m.size, chunks: m.chunks, name: m.name };
  bitmap = new Uint8Array(Math.ceil(m.chunks / 8));
  const texts = slots.map((h) => {
    try {
      const buf = new Uint8Array(h.getSize());
      h.read(buf, { at: 0 });
      return new TextDecoder().decode(buf);
    } catch {
      return ''; // unreadable: as if empty
    }
  });
  const found = newest(texts);
  const st = found.record; // null when both slots are empty or torn: start over
  seq = st ? st.seq : 0;
  nextSlot = found.next;
  const chunks = [];
  const digests = [];
  if (st) {
    // The recorded chunks are read back and hashed: the bytes decide. For
    // another version (the file grew or changed on the server), a chunk is
    // kept when the bytes at the NEW chunk's place hash to the NEW
    // manifest's digest, that is, when the new version repeats it there
    // (lib/delta.js); its bytes are not rewritten, and the rest is fetched.
    let old;
    try { old = decodeBase64(st.bitmap); } catch { old = new Uint8Array(0); }
    const fileSize = data.getSize();
    for (let i = 0; i < m.chunks; i++) {
      if (!(old[i >> 3] & (1 << (i & 7)))) continue;
      const { off, len } = span(m, i);
      if (off + len > fileSize) continue;
      const buf = new Uint8Array(len);
      if (data.read(buf, { at: off }) !== len) continue;
      const digest = await sha256(buf);
      if (toHex(digest) !== m.hashes[i]) continue;
      bitmap[i >> 3] |= 1 << (i & 7);
      chunks.push(i);
      digests.push(digest);
    }
  } else {
    data.truncate(0);
  }
  // The file at its full size at once: one quota request instead of one
  // each time a write grows the file (and a shorter new version cut to size).
  try { if (data.getSize() !== m.size) data.truncate(m.size); } catch { /* grows as written */ }
  const stale = st && st.version !== m.version ? st.version : null;
  saveState();
  const all = new Uint8Array(digests.length * 32);
  digests.forEach((dg, k) => all.set(dg, k * 32));
  return { chunks, digests: all, stale };
}

/**
 * Writes a batch of verified chunks staged in `buf` (chunk `i` at `at`, `len`
 * bytes, goes to file offset `off`). Chunks that follow each other both in
 * the buffer and in the file (the usual case) go out as one write.
 * @param {ArrayBuffer} buf @param {{i: number, off: number, at: number, len: number}[]} list
 */
function put(buf, list) {
  if (!data) throw new Error('storage is not open');
  const all = new Uint8Array(buf);
  let n = 0;
  const t0 = performance.now();
  timing.puts++;
  for (let k = 0; k < list.length;) {
    const first = list[k];
    let end = k + 1;
    let len = first.len;
    while (end < list.length && list[end].at === first.at + len && list[end].off === first.off + len) len += list[end++].len;
    const bytes = all.subarray(first.at, first.at + len);
    let done = 0;
    while (done < len) done += data.write(bytes.subarray(done, Math.min(len, done + WRITE_MAX)), { at: first.off + done });
    for (; k < end; k++) bitmap[list[k].i >> 3] |= 1 << (list[k].i & 7);
    n += len;
  }
  timing.writeMs += performance.now() - t0;
  scheduleSave();
  return n;
}

/** @param {any} msg */
async function handle(msg) {
  switch (msg.op) {
    case 'open':
      return open(msg.manifest);
    case 'flush':
      if (data) saveState();
      return null;
    case 'read': {
      if (!data) throw new Error('storage is not open');
      const buf = new Uint8Array(msg.len);
      data.read(buf, { at: msg.off });
      return buf;
    }
    case 'finish': {
      if (data) {
        saveState();
        closeHandles();
      }
      return { ...timing };
    }
    case 'discard': {
      closeHandles();
      const d = await directory();
      for (const f of opfsFiles(key)) await d.removeEntry(f).catch(() => {});
      return null;
    }
    case 'close':
      if (data && dirty) saveState();
      closeHandles();
      return null;
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

// Messages are handled one at a time, in order: a `flush` after `put`s sees
// their bytes, and `open` finishes before the first `put`.
let chain = Promise.resolve();

/**
 * A put (from the page, or from the worker transport through `to`), in turn
 * with the other messages; the buffer goes back for the next batch. `live`
 * says, when its turn comes, whether it still belongs to the open file.
 * @param {{buf: ArrayBuffer, list: {i: number, off: number, at: number, len: number}[]}} msg
 * @param {{postMessage: (m: any, t: Transferable[]) => void}} to
 * @param {() => boolean} [live]
 */
function queuePut(msg, to, live) {
  chain = chain.then(() => {
    if (live && !live()) return;
    try {
      const bytes = put(msg.buf, msg.list);
      to.postMessage({ op: 'written', bytes, buf: msg.buf }, [msg.buf]);
    } catch (err) {
      fatal(err);
    }
  });
}

onmessage = (e) => {
  const msg = e.data;
  key = msg.key;
  if (msg.op === 'put') return queuePut(msg, self);
  if (msg.op === 'port') {
    // For the file open now (messages are in order: after its `open`).
    chain = chain.then(() => {
      const p = /** @type {MessagePort} */ (msg.port);
      if (!data) { p.close(); return; }
      port?.close();
      port = p;
      p.onmessage = (ev) => { if (ev.data?.op === 'put') queuePut(ev.data, p, () => port === p); };
    });
    return;
  }
  chain = chain.then(async () => {
    try {
      const result = await handle(msg);
      const transfer = result instanceof Uint8Array ? [result.buffer] : [];
      postMessage({ id: msg.id, result }, transfer);
    } catch (err) {
      postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  });
};
