// @ts-check
// app.js: the chunkcast page, wiring its parts (web/page/): the file
// browser (files.js), the list of downloads (downloads.js: one card each,
// with its chunk map and text view), and after a reload the offers to resume
// what storage holds (offers.js).
//
// URL options: ?store=memory|opfs|idb forces a store kind; ?demo shows the
// "Drop connection" demonstration control. A signed link (`chunkcast link`:
// ?file=NAME&exp=..&sig=..) opens the page on that one file and sends `exp`
// and `sig` with every request the download makes.

import { fileHandleSupported, hasWebCrypto } from './chunkcast.js';
import { DownloadList } from './page/downloads.js';
import { FileBrowser } from './page/files.js';
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

// Storage changes with every download; the figure is refreshed on each
// change and every 10 s (other tabs use the same storage).
const storage = () => showStorage($('storage'));
setInterval(storage, 10_000);

const files = new FileBrowser({
  table: /** @type {HTMLTableElement} */ ($('files')),
  crumbs: $('crumbs'),
  filter: /** @type {HTMLInputElement} */ ($('filter')),
  link,
  onDownload: (name) => { $('alert').hidden = true; downloads.start(name); },
  onSaveTo: fileHandleSupported() ? saveTo : null,
  onError: (text, retry) => alertUser(text, { label: 'Try again', run: retry }),
  onCopied: status,
});

const downloads = new DownloadList({
  list: $('download-list'),
  section: $('downloads'),
  template: /** @type {HTMLTemplateElement} */ ($('download-template')),
  storeKind: params.get('store') || 'auto',
  link,
  demo: params.has('demo'),
  announce: (text) => { $('announce').textContent = text; },
  onStorageChange: storage,
  refreshFiles: () => files.load(),
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
  downloads.start(name, handle);
}

window.addEventListener('offline', () => status('The browser went offline.'));
window.addEventListener('online', () => status('Back online.'));

// Plain HTTP from another host is not a secure context: no WebCrypto, no
// OPFS. The download still verifies every chunk, more slowly; say so once.
if (!window.isSecureContext) $('insecure').hidden = false;
document.documentElement.dataset.sha256 = hasWebCrypto ? 'webcrypto' : 'wasm';

files.load();
offerResume({
  section: $('resume-offer'), list: $('resume-text'),
  all: /** @type {HTMLButtonElement} */ ($('resume-offer-yes')), none: /** @type {HTMLButtonElement} */ ($('resume-offer-no')),
  resume: (name, handle) => downloads.start(name, handle), told: status, changed: storage,
}).catch(() => { /* nothing stored, or no storage here */ });
storage();
