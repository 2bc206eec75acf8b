// @ts-check
// app.js: the chunkcast page, wiring its parts (web/page/): the file
// browser, the main view (files.js: folders and the file opened live in the
// URL), the list of downloads (downloads.js: one compact row each, row.js,
// with its chunk map and reader on demand), and after a reload the offers to
// resume what storage holds (offers.js).
//
// URL: ?dir=FOLDER shows a folder, ?file=NAME selects a file (a text opens
// to read). ?store=memory|opfs|idb forces a store kind; ?demo shows the
// "Drop connection" demonstration control. A signed link (`chunkcast link`:
// ?file=NAME&exp=..&sig=..) opens the page on that one file and sends `exp`
// and `sig` with every request the download makes; an expired one, or one
// to a file that is gone, says so on load.

import { fileHandleSupported, hasWebCrypto } from './chunkcast.js';
import { DownloadList, HTTP1_STREAMS, knownDownloads } from './page/downloads.js';
import { FileBrowser, isTextName } from './page/files.js';
import { formatDate } from './page/format.js';
import { offerResume, showStorage } from './page/offers.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const params = new URLSearchParams(location.search);
const link = params.get('sig') && params.get('file')
  ? { file: /** @type {string} */ (params.get('file')), params: { exp: params.get('exp') ?? '', sig: params.get('sig') ?? '' } }
  : null;

function status(/** @type {string} */ text) {
  $('status').textContent = text;
}

/**
 * A page-level failure (the file list), with an optional action.
 * @param {string} text @param {{label: string, run: () => void}} [action]
 */
function alertUser(text, action) {
  $('alert').hidden = false;
  $('alert-text').textContent = text;
  const b = /** @type {HTMLButtonElement} */ ($('alert-action'));
  b.hidden = !action;
  if (action) {
    b.textContent = action.label;
    b.onclick = () => { $('alert').hidden = true; action.run(); };
  }
}

// Over HTTP/1.1 the browser keeps at most six connections per server: a few
// streams at once, the rest queued, so the file list still gets through.
// Browsers speak HTTP/2 only over TLS: plain http: is always HTTP/1.1.
const nav = /** @type {PerformanceNavigationTiming|undefined} */ (performance.getEntriesByType('navigation')[0]);
const protocol = nav?.nextHopProtocol || (location.protocol === 'http:' ? 'http/1.1' : '');
const http1 = /^http\/1/i.test(protocol);
document.documentElement.dataset.protocol = protocol;

// Storage changes with every download; the figure is refreshed on each
// change and every 10 s (other tabs use the same storage).
const storage = () => showStorage($('storage'));
setInterval(storage, 10_000);

/** A download started from the list is no longer offered for resuming. @param {string} name */
function dropOffer(name) {
  for (const li of $('resume-text').querySelectorAll('li')) if (/** @type {HTMLElement} */ (li).dataset.name === name) li.remove();
  if (!$('resume-text').children.length) $('resume-offer').hidden = true;
}

const files = new FileBrowser({
  table: /** @type {HTMLTableElement} */ ($('files')),
  crumbs: $('crumbs'),
  filter: /** @type {HTMLInputElement} */ ($('filter')),
  link,
  onDownload: (name) => { $('alert').hidden = true; dropOffer(name); downloads.start(name); },
  onRead: (name) => { $('alert').hidden = true; dropOffer(name); downloads.start(name, { read: true }); },
  onSaveTo: fileHandleSupported() ? saveTo : null,
  onError: (text, retry) => alertUser(text, { label: 'Try again', run: retry }),
  onCopied: status,
  onMissing: (name) => alertUser(`There is no file “${name}” on the server: it was deleted, moved, or the address is wrong.`),
});

const downloads = new DownloadList({
  list: $('download-list'),
  section: $('downloads'),
  template: /** @type {HTMLTemplateElement} */ ($('download-template')),
  storeKind: params.get('store') || 'auto',
  link,
  demo: params.has('demo'),
  streams: http1 ? HTTP1_STREAMS : Infinity,
  announce: (text) => { $('announce').textContent = text; },
  onStorageChange: storage,
  refreshFiles: () => files.load(),
  onQueued: () => { $('http1').hidden = false; },
});

/**
 * Asks where to save `name`, then downloads straight into that file.
 * @param {string} name
 */
async function saveTo(name) {
  let handle;
  try {
    handle = await /** @type {any} */ (window).showSaveFilePicker({ suggestedName: name.slice(name.lastIndexOf('/') + 1) });
  } catch (e) {
    if (/** @type {Error} */ (e).name !== 'AbortError') alertUser(`The browser could not open a file to save into: ${/** @type {Error} */ (e).message}`);
    return;
  }
  $('alert').hidden = true;
  dropOffer(name);
  downloads.start(name, { handle });
}

/**
 * A signed link, read on load: expired or to a missing file, the page says
 * so and offers no Download; else it says until when it works.
 * @param {{file: string, params: Record<string, string>}} l
 */
async function checkLink(l) {
  const box = $('link-state');
  const exp = Number(l.params.exp) * 1000;
  const when = Number.isFinite(exp) && exp > 0 ? formatDate(new Date(exp).toISOString()) : '';
  const refuse = (/** @type {string} */ text, /** @type {string} */ why) => {
    box.hidden = false;
    box.dataset.link = why;
    box.textContent = text;
    $('browser').hidden = true;
  };
  if (exp && exp <= Date.now()) return refuse(`This link expired on ${when}. Ask whoever shared “${l.file}” for a new one.`, 'expired');
  const u = new URL('api/manifest', document.baseURI);
  u.searchParams.set('file', l.file);
  for (const [k, v] of Object.entries(l.params)) u.searchParams.set(k, v);
  let res;
  try { res = await fetch(u, { cache: 'no-store' }); } catch { return; /* the download will say */ }
  if (res.ok) {
    box.hidden = false;
    box.dataset.link = 'ok';
    box.textContent = `Shared with you: “${l.file}”${when ? `. The link works until ${when}.` : '.'}`;
    return;
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 404) refuse(`There is no file “${l.file}” on the server any more: it was deleted or moved.`, 'missing');
  else if (body.code === 'link_expired') refuse(`This link expired on ${when}. Ask whoever shared “${l.file}” for a new one.`, 'expired');
  else if (body.code === 'link_invalid') refuse('This link is not valid: it was changed or is incomplete.', 'invalid');
}

window.addEventListener('offline', () => status('The browser went offline.'));
window.addEventListener('online', () => status('Back online.'));
// Back and Forward: the folder and file of that entry.
window.addEventListener('popstate', () => { $('alert').hidden = true; files.fromUrl(); });

// Plain HTTP from another host is not a secure context: no WebCrypto, no
// OPFS. The download still verifies every chunk, more slowly; say so once.
if (!window.isSecureContext) $('insecure').hidden = false;
document.documentElement.dataset.sha256 = hasWebCrypto ? 'webcrypto' : 'wasm';

if (link) checkLink(link);
files.fromUrl().then(() => {
  // A shared address of a text opens it to read; so does a reload while a
  // live text was followed (it resumes from what this browser stored).
  const file = link ? null : params.get('file');
  if (file && (isTextName(file) || knownDownloads()[file]?.live) && files.entries.some((f) => f.name === file)) {
    dropOffer(file);
    downloads.start(file, { read: true });
  }
});
offerResume({
  section: $('resume-offer'), list: $('resume-text'),
  all: /** @type {HTMLButtonElement} */ ($('resume-offer-yes')), none: /** @type {HTMLButtonElement} */ ($('resume-offer-no')),
  resume: (name, handle) => downloads.start(name, { handle }), told: status, changed: storage,
  skip: (name) => downloads.rows.has(name),
}).catch(() => { /* nothing stored, or no storage here */ });
storage();
