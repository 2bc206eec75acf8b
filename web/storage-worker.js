// storage-worker.js: writes a download's chunks into the Origin Private File
// System through a sync access handle, off the page's main thread.
//
// Files, in the OPFS directory `chunkcast/`:
//   <key>.part   the file's bytes, each chunk at its offset
//   <key>.state  JSON {version, size, chunks, bitmap}: which chunks are on disk
// The state is written only after the data it describes has been flushed, so
// a reload never trusts a chunk that did not reach the disk; on open, every
// recorded chunk is read back and hashed again anyway (a torn write or a
// tampered file costs a re-download of that chunk, never a wrong result).
//
// Messages (see OpfsStore in chunkcast.js): open, put, flush, read, finish,
// discard, close. Each but `put` is answered with {id, result|error}; `put`
// ({buf, list}: verified chunks staged in a transferred buffer) is answered
// with {op: 'written', bytes, buf}, the buffer transferred back for reuse, so
// the page can bound what it has posted and not yet seen written.

/** @type {FileSystemSyncAccessHandle|null} */
let data = null;
/** @type {FileSystemSyncAccessHandle|null} */
let stateFile = null;
/** @type {FileSystemDirectoryHandle|null} */
let dir = null;
let key = '';
/** @type {{version: string, size: number, chunks: number}|null} */
let info = null;
let bitmap = new Uint8Array(0);
let dirty = false;
/** @type {any} */
let saveTimer = null;

// Milliseconds spent writing chunks and flushing, reported by `finish`.
const timing = { writeMs: 0, flushMs: 0, puts: 0 };

// Persist the record at most this often while chunks stream in: each save
// flushes the data file, which costs a disk sync.
const SAVE_EVERY_MS = 500;

async function directory() {
  if (!dir) dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('chunkcast', { create: true });
  return dir;
}

/** @param {Uint8Array} bytes */
function toBase64(bytes) {
  // @ts-ignore: new in 2025 browsers
  if (typeof bytes.toBase64 === 'function') return bytes.toBase64();
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** @param {string} s */
function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** @param {Uint8Array} d */
function hex(d) {
  let s = '';
  for (const b of d) s += (b < 16 ? '0' : '') + b.toString(16);
  return s;
}

function saveState() {
  if (!data || !stateFile || !info) return;
  const t0 = performance.now();
  data.flush(); // data before the record of it
  const json = new TextEncoder().encode(JSON.stringify({ ...info, bitmap: toBase64(bitmap) }));
  stateFile.truncate(0);
  stateFile.write(json, { at: 0 });
  stateFile.flush();
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
  clearTimeout(saveTimer);
  saveTimer = null;
  data?.close();
  stateFile?.close();
  data = stateFile = null;
}

/** @param {unknown} e */
function fatal(e) {
  postMessage({ op: 'fatal', error: `storage: ${e instanceof Error ? e.message : String(e)}` });
}

/** @param {any} m  the manifest's fields the store needs */
async function open(m) {
  const d = await directory();
  closeHandles();
  try {
    data = await (await d.getFileHandle(`${key}.part`, { create: true })).createSyncAccessHandle();
    stateFile = await (await d.getFileHandle(`${key}.state`, { create: true })).createSyncAccessHandle();
  } catch (e) {
    closeHandles();
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new Error(`cannot open the OPFS file (is this download open in another tab?) ${why}`);
  }
  info = { version: m.version, size: m.size, chunks: m.chunks, name: m.name };
  bitmap = new Uint8Array(Math.ceil(m.chunks / 8));
  /** @type {any} */
  let st = null;
  try {
    const size = stateFile.getSize();
    const buf = new Uint8Array(size);
    stateFile.read(buf, { at: 0 });
    st = size ? JSON.parse(new TextDecoder().decode(buf)) : null;
  } catch {
    st = null; // a torn record: start over
  }
  const chunks = [];
  const digests = [];
  if (st && st.version === m.version && st.chunks === m.chunks) {
    const old = fromBase64(st.bitmap || '');
    const span = (/** @type {number} */ i) => {
      const off = m.offsets ? m.offsets[i] : i * m.chunk_size;
      const end = m.offsets ? (i + 1 < m.chunks ? m.offsets[i + 1] : m.size) : Math.min(m.size, off + m.chunk_size);
      return [off, end - off];
    };
    const fileSize = data.getSize();
    for (let i = 0; i < m.chunks; i++) {
      if (!(old[i >> 3] & (1 << (i & 7)))) continue;
      const [off, len] = span(i);
      if (off + len > fileSize) continue;
      const buf = new Uint8Array(len);
      if (data.read(buf, { at: off }) !== len) continue;
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
      if (hex(digest) !== m.hashes[i]) continue;
      bitmap[i >> 3] |= 1 << (i & 7);
      chunks.push(i);
      digests.push(digest);
    }
  } else {
    data.truncate(0);
  }
  // The file at its full size at once: one quota request instead of one
  // each time a write grows the file.
  try { if (data.getSize() < m.size) data.truncate(m.size); } catch { /* grows as written */ }
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
    while (done < len) done += data.write(bytes.subarray(done), { at: first.off + done });
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
    case 'finish':
      if (data) {
        saveState();
        closeHandles();
      }
      return { ...timing };
    case 'discard': {
      closeHandles();
      const d = await directory();
      for (const f of [`${key}.part`, `${key}.state`]) await d.removeEntry(f).catch(() => {});
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
onmessage = (e) => {
  const msg = e.data;
  key = msg.key;
  if (msg.op === 'put') {
    chain = chain.then(() => {
      try {
        const bytes = put(msg.buf, msg.list);
        // The buffer goes back to the page for the next batch.
        postMessage({ op: 'written', bytes, buf: msg.buf }, [msg.buf]);
      } catch (err) {
        fatal(err);
      }
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
