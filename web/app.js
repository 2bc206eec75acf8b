// @ts-check
// app.js: the chunkcast page. Lists the served files and drives one
// download at a time through chunkcast.js, showing its progress, a chunk map
// and, for text, the text as it arrives. State for the tests and for people
// alike is in the DOM: #download carries data-state, data-verified, ...
//
// URL options: ?store=memory|opfs|idb forces a store kind. A signed link
// (`chunkcast link`: ?file=NAME&exp=..&sig=..) opens the page on that one
// file and sends `exp` and `sig` with every request the download makes.

import { clearStored, Download, findStored, formatBytes, hasWebCrypto, listFiles, sha256, toHex } from './chunkcast.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ACTIVE_KEY = 'chunkcast.active';
const params = new URLSearchParams(location.search);
const storeKind = params.get('store') || 'auto';
const link = params.get('sig') && params.get('file')
  ? { file: /** @type {string} */ (params.get('file')), params: { exp: params.get('exp') ?? '', sig: params.get('sig') ?? '' } }
  : null;

/** @type {Download|null} */
let dl = null;

// Chunk map statuses, in drawing colour order.
const MISSING = 0, RECEIVED = 1, VERIFIED = 2, REFETCHED = 3, FAILED = 4;
const COLORS = ['--missing', '--received', '--verified', '--refetched', '--failed']
  .map((v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim());
/** @type {Uint8Array} */
let map = new Uint8Array(0);
/** @type {Set<number>} */
let dirty = new Set();
let redrawAll = true;
let frame = 0;

function status(/** @type {string} */ text) {
  $('status').textContent = text;
}

/**
 * Shows a failure with an optional action button.
 * @param {string} text @param {{label: string, run: () => void}} [action]
 */
function alertUser(text, action) {
  $('alert').hidden = false;
  $('alert-text').textContent = text;
  const b = /** @type {HTMLButtonElement} */ ($('alert-action'));
  b.hidden = !action;
  if (action) {
    b.textContent = action.label;
    b.onclick = () => { clearAlert(); action.run(); };
  }
}

function clearAlert() {
  $('alert').hidden = true;
}

/** The folder being shown ('' for the top), as the server names it. */
let currentDir = '';

/**
 * Lists one folder (the server answers one directory per request): its
 * sub-folders open in place, its files download; a breadcrumb line leads back up.
 * @param {string} [dir]
 */
async function loadFiles(dir = currentDir) {
  const body = /** @type {HTMLTableSectionElement} */ ($('files').querySelector('tbody'));
  if (link) return showLinkedFile(body, link.file);
  try {
    const files = await listFiles(undefined, undefined, dir);
    currentDir = dir;
    drawCrumbs(dir);
    body.replaceChildren();
    if (!files.length) body.innerHTML = `<tr><td colspan="3">${dir ? 'This folder is empty.' : 'The server offers no files.'}</td></tr>`;
    for (const f of files) {
      body.append(f.type === 'dir'
        ? fileRow(f.name, '', { label: 'Open', cls: 'secondary', key: 'dir', aria: `Open folder ${f.name}`, run: () => loadFiles(f.name) })
        : fileRow(f.name, formatBytes(f.size), { label: 'Download', key: 'file', aria: `Download ${f.name}`, run: () => startDownload(f.name) }, `${f.size} bytes`));
    }
  } catch (e) {
    body.innerHTML = '<tr><td colspan="3">The file list is unavailable.</td></tr>';
    alertUser(`Cannot load the file list: ${/** @type {Error} */ (e).message}.`, { label: 'Try again', run: () => loadFiles(dir) });
  }
}

/**
 * One row of the list: the name's last part (a folder's with a slash), a
 * size column, and one button carrying `data-<key>` = the full name.
 * @param {string} full @param {string} sizeText
 * @param {{label: string, cls?: string, key: 'file'|'dir', aria: string, run: () => void}} action
 * @param {string} [sizeTitle]
 */
function fileRow(full, sizeText, action, sizeTitle) {
  const tr = document.createElement('tr');
  const name = document.createElement('td');
  name.textContent = full.slice(full.lastIndexOf('/') + 1) + (action.key === 'dir' ? '/' : '');
  name.title = full;
  const size = document.createElement('td');
  size.className = 'num';
  size.textContent = sizeText;
  if (sizeTitle) size.title = sizeTitle;
  const act = document.createElement('td');
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = action.label;
  if (action.cls) b.className = action.cls;
  b.dataset[action.key] = full;
  b.setAttribute('aria-label', action.aria);
  b.onclick = action.run;
  act.append(b);
  tr.append(name, size, act);
  return tr;
}

/**
 * A signed link authorizes one file and not the list: show that file alone.
 * @param {HTMLTableSectionElement} body @param {string} name
 */
function showLinkedFile(body, name) {
  body.replaceChildren(fileRow(name, 'shared with you', { label: 'Download', key: 'file', aria: `Download ${name}`, run: () => startDownload(name) }));
}

/** The breadcrumb line above the list: "All files / a / b", each part a way back up. */
function drawCrumbs(/** @type {string} */ dir) {
  let nav = document.getElementById('crumbs');
  if (!nav) {
    nav = document.createElement('nav');
    nav.id = 'crumbs';
    nav.setAttribute('aria-label', 'Folder');
    $('files').closest('.table-wrap')?.before(nav);
  }
  const parts = dir ? dir.split('/') : [];
  nav.replaceChildren();
  [''].concat(parts.map((_, i) => parts.slice(0, i + 1).join('/'))).forEach((path, i) => {
    const label = i === 0 ? 'All files' : parts[i - 1];
    if (i > 0) nav.append(' / ');
    if (path === dir) {
      const here = document.createElement('strong');
      here.textContent = label;
      here.setAttribute('aria-current', 'location');
      nav.append(here);
    } else {
      const up = document.createElement('button');
      up.type = 'button';
      up.className = 'secondary';
      up.textContent = label;
      up.dataset.crumb = path;
      up.onclick = () => loadFiles(path);
      nav.append(up);
    }
  });
}

/** Offers to resume a download that a reload interrupted. */
async function offerResume() {
  let active;
  try { active = JSON.parse(localStorage.getItem(ACTIVE_KEY) || 'null'); } catch { active = null; }
  if (!active?.name) return;
  const stored = await findStored(active.name);
  if (!stored) { localStorage.removeItem(ACTIVE_KEY); return; }
  const pct = stored.size ? Math.min(100, (100 * stored.chunks * (active.chunkSize || 0)) / stored.size) : 0;
  $('resume-text').textContent = `The download of “${active.name}” was interrupted with ${stored.chunks} chunks on disk`
    + (pct ? ` (about ${pct.toFixed(0)}%)` : '') + '. Resume it? The chunks on disk are checked again, and only what is missing is fetched.';
  $('resume-offer').hidden = false;
  $('resume-offer').dataset.chunks = String(stored.chunks);
  $('resume-offer-yes').onclick = () => { $('resume-offer').hidden = true; startDownload(active.name); };
  $('resume-offer-no').onclick = async () => {
    $('resume-offer').hidden = true;
    localStorage.removeItem(ACTIVE_KEY);
    await clearStored(active.name).catch(() => {});
    status(`Discarded the unfinished download of ${active.name}.`);
  };
  $('resume-offer-yes').focus();
}

/** @param {number|null} s */
function formatEta(s) {
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** @param {import('./chunkcast.js').Progress} p */
function showProgress(p) {
  const bar = /** @type {HTMLProgressElement} */ ($('bar'));
  bar.value = p.percent;
  $('dl-stats').textContent = `${p.percent.toFixed(1)}% · ${formatBytes(p.bytesVerified)} of ${formatBytes(p.size)} · `
    + `${formatBytes(p.bytesPerSecond)}/s · ETA ${formatEta(p.eta)} · ${p.chunksVerified}/${p.chunks} chunks`
    + (p.chunksResumed ? ` · ${p.chunksResumed} resumed from disk` : '')
    + (p.chunksRefetched ? ` · ${p.chunksRefetched} refetched` : '')
    + (p.reconnects ? ` · ${p.reconnects} reconnects` : '');
  const d = $('download').dataset;
  d.verified = String(p.chunksVerified);
  d.chunks = String(p.chunks);
  d.resumed = String(p.chunksResumed);
  d.received = String(p.bytesReceived);
  d.reconnects = String(p.reconnects);
  d.percent = p.percent.toFixed(2);
  d.speed = String(Math.round(p.bytesPerSecond));
  d.average = String(Math.round(p.averageBytesPerSecond));
  d.elapsed = p.elapsed.toFixed(3);
}

function setButtons(/** @type {string} */ state) {
  const active = !['done', 'error', 'changed', 'closed'].includes(state);
  /** @type {HTMLButtonElement} */ ($('pause')).disabled = !active || state === 'paused';
  /** @type {HTMLButtonElement} */ ($('resume')).disabled = !(state === 'paused' || (state === 'error' && dl?.manifest));
  /** @type {HTMLButtonElement} */ ($('drop')).disabled = !active || state === 'paused';
  /** @type {HTMLButtonElement} */ ($('cancel')).disabled = !active && state !== 'error';
}

function drawMap() {
  frame = 0;
  const canvas = /** @type {HTMLCanvasElement} */ ($('map'));
  const ctx = canvas.getContext('2d');
  const n = map.length;
  if (!ctx || !n) return;
  // Square-ish cells filling the width; the canvas grows to fit the rows.
  const width = canvas.width;
  const cell = Math.min(24, Math.max(1, Math.floor(Math.sqrt((width * 160) / n))));
  const cols = Math.max(1, Math.floor(width / cell));
  const rows = Math.ceil(n / cols);
  if (canvas.height !== rows * cell) { canvas.height = rows * cell; redrawAll = true; }
  const paint = (/** @type {number} */ i) => {
    ctx.fillStyle = COLORS[map[i]];
    ctx.fillRect((i % cols) * cell, Math.floor(i / cols) * cell, cell, cell);
  };
  if (redrawAll) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < n; i++) paint(i);
    redrawAll = false;
  } else {
    for (const i of dirty) paint(i);
  }
  dirty.clear();
  const counts = [0, 0, 0, 0, 0];
  for (const s of map) counts[s]++;
  canvas.setAttribute('aria-label', `Chunk map: ${counts[VERIFIED] + counts[REFETCHED]} of ${n} chunks verified, `
    + `${counts[REFETCHED]} refetched after a failure, ${counts[FAILED]} waiting to be refetched`);
}

function scheduleDraw() {
  if (!frame) frame = requestAnimationFrame(drawMap);
}

/** @param {string} name */
async function startDownload(name) {
  clearAlert();
  if (dl) await dl.close();
  $('download').hidden = false;
  $('done').hidden = true;
  $('text-view').hidden = true;
  $('text').textContent = '';
  $('dl-name').textContent = name;
  $('dl-stats').textContent = ' ';
  $('download').dataset.state = 'starting';
  /** @type {HTMLProgressElement} */ ($('bar')).value = 0;
  map = new Uint8Array(0);
  redrawAll = true;
  const rate = Number(/** @type {HTMLSelectElement} */ ($('rate')).value) || 0;
  const textNode = document.createTextNode('');
  $('text').append(textNode);
  const textBox = $('text');

  const d = new Download(name, {
    store: storeKind,
    rate,
    params: link?.file === name ? link.params : undefined,
    onstate: (state, message) => {
      if (d !== dl) return;
      $('download').dataset.state = state;
      $('dl-state').textContent = stateText(state, message);
      setButtons(state);
      if (state === 'opening' && d.manifest) {
        map = new Uint8Array(d.manifest.chunks);
        redrawAll = true;
        scheduleDraw();
        const text = d.manifest.kind === 'text';
        $('text-view').hidden = !text;
        $('resume').textContent = text ? 'Continue' : 'Resume';
      }
      if (state === 'streaming' && d.store?.persistent) {
        localStorage.setItem(ACTIVE_KEY, JSON.stringify({ name, chunkSize: d.manifest?.chunk_size }));
      }
    },
    onprogress: (p) => { if (d === dl) showProgress(p); },
    onchunk: (i, s) => {
      if (d !== dl || i >= map.length) return;
      map[i] = s === 'received' ? (map[i] === FAILED ? FAILED : RECEIVED)
        : s === 'verified' ? VERIFIED : s === 'refetched' ? REFETCHED : s === 'failed' ? FAILED : MISSING;
      dirty.add(i);
      scheduleDraw();
    },
    ontext: (piece) => {
      if (d !== dl) return;
      const atBottom = textBox.scrollTop + textBox.clientHeight >= textBox.scrollHeight - 8;
      textNode.appendData(piece);
      if (atBottom) textBox.scrollTop = textBox.scrollHeight;
    },
    onchanged: (c) => {
      if (d !== dl) return;
      status(`${name} changed on the server (${c.why}).`);
    },
    onerror: (e) => {
      if (d !== dl) return;
      if (e.code === 'changed') {
        alertUser(`“${name}” changed on the server while it was downloading. The old chunks were discarded.`,
          { label: 'Download the new version', run: () => startDownload(name) });
      } else if (e.code === 'not_found') {
        localStorage.removeItem(ACTIVE_KEY);
        alertUser(`“${name}” is no longer on the server.`, { label: 'Refresh the file list', run: () => loadFiles() });
      } else if (e.code === 'server_down') {
        alertUser(`The server cannot be reached: ${e.message}`, { label: 'Try again', run: () => d.resume() });
      } else if (e.code === 'storage') {
        alertUser(`The browser's storage failed: ${e.message}`, { label: 'Start over', run: () => startDownload(name) });
      } else if (e.code === 'unsupported') {
        alertUser(`This browser cannot download here: ${e.message}`, { label: 'Try again', run: () => startDownload(name) });
      } else if (e.code === 'internal') {
        alertUser(`The download failed because of a bug in chunkcast: ${e.message}`, { label: 'Start over', run: () => startDownload(name) });
      } else if (e.code !== 'closed') {
        alertUser(`The download failed: ${e.message}`, { label: 'Start over', run: () => startDownload(name) });
      }
    },
  });
  dl = d;
  setButtons('starting');
  d.start();
  try {
    const { blob, manifest } = await d.done;
    if (d !== dl) return;
    localStorage.removeItem(ACTIVE_KEY);
    drawMap();
    $('done').hidden = false;
    $('sha256').textContent = manifest.sha256;
    $('sha-check').textContent = '';
    status(`${name} is complete and verified.`);
    /** @type {HTMLButtonElement} */ ($('save')).focus();
    // Small files are hashed whole as well, as a second, independent check.
    if (blob.size <= 64 << 20) {
      const got = toHex(await sha256(await blob.arrayBuffer()));
      $('sha-check').textContent = got === manifest.sha256 ? '✓ recomputed over the whole file' : `✗ the whole file hashes to ${got}`;
      $('download').dataset.wholeSha256 = got;
    }
  } catch {
    // Reported through onerror.
  }
}

/** @param {string} state @param {string} message */
function stateText(state, message) {
  switch (state) {
    case 'streaming': return 'Receiving…';
    case 'done': return 'Done: verified.';
    case 'paused': return 'Paused. Nothing is lost: Resume continues from the first missing chunk.';
    case 'offline': return 'You are offline. The download continues when the network is back.';
    default: return message ? message[0].toUpperCase() + message.slice(1) + (/[.…]$/.test(message) ? '' : '…') : state;
  }
}

$('pause').onclick = () => dl?.pause();
$('resume').onclick = () => dl?.resume();
$('drop').onclick = () => {
  if (dl?.dropConnection()) status('Connection dropped: watch it resume.');
};
$('cancel').onclick = async () => {
  if (!dl) return;
  const name = dl.name;
  await dl.close();
  localStorage.removeItem(ACTIVE_KEY);
  await clearStored(name).catch(() => {});
  $('download').dataset.state = 'cancelled';
  $('dl-state').textContent = 'Cancelled; the partial download was removed.';
  setButtons('closed');
};
$('rate').onchange = () => dl?.setRate(Number(/** @type {HTMLSelectElement} */ ($('rate')).value) || 0);
$('save').onclick = () => dl?.save();
$('forget').onclick = async () => {
  if (!dl) return;
  await clearStored(dl.name).catch(() => {});
  status(`The stored copy of ${dl.name} was removed from this browser.`);
};

window.addEventListener('offline', () => status('The browser went offline.'));
window.addEventListener('online', () => status('Back online.'));

// Plain HTTP from another host is not a secure context: no WebCrypto, no
// OPFS. The download still verifies every chunk, more slowly; say so once.
if (!window.isSecureContext) $('insecure').hidden = false;
document.documentElement.dataset.sha256 = hasWebCrypto ? 'webcrypto' : 'wasm';

loadFiles();
offerResume();
