// @ts-check
/**
 * @file The file browser, the page's main view: one folder at a time
 * (`/api/files?dir=`), with breadcrumbs, sizes and dates, sorting by column
 * and a filter on names. Names are links: a folder's opens it, a file's
 * downloads it (a text's opens it to read). The folder and the file opened
 * live in the URL (`?dir=`, `?file=`), so Back, Forward, reload and shared
 * addresses work. Each file has a Download button and a small menu (Save
 * to…, Copy link, Read).
 */

import { formatBytes, listFiles } from '../chunkcast.js';
import { formatDate } from './format.js';

/** @typedef {{name: string, size: number, modified: string, type: 'file'|'dir'}} Entry */
/** @typedef {'name'|'size'|'modified'} SortKey */

/** Names that are read as text (the manifest says for sure; this is for the link's promise). */
const TEXT = /\.(txt|md|markdown|log|csv|tsv|json|ya?ml|toml|ini|conf|cfg|xml|html?|css|m?js|ts|py|rs|go|c|h|cpp|java|sh|sql|srt|vtt|rst|adoc|tex)$/i;

/** Whether a name reads as text. @param {string} name */
export function isTextName(name) {
  return TEXT.test(name);
}

/** The folder a name is in ('' for the top). @param {string} name */
export function dirOf(name) {
  const i = name.lastIndexOf('/');
  return i < 0 ? '' : name.slice(0, i);
}

/**
 * The page's address for a folder and an opened file, keeping the other
 * parameters (?store, ?demo).
 * @param {string} dir @param {string|null} file
 */
export function pageUrl(dir, file) {
  const u = new URL(location.href);
  if (dir) u.searchParams.set('dir', dir); else u.searchParams.delete('dir');
  if (file) u.searchParams.set('file', file); else u.searchParams.delete('file');
  return u.pathname + u.search.replace(/%2F/gi, '/') + u.hash;
}

/**
 * The address of a file's raw bytes (`/files/NAME`), each part of the name
 * percent-encoded; with a signed link's `exp` and `sig` when the page was
 * opened through one, since only those let someone else fetch it.
 * @param {string} name @param {Record<string, string>} [params]
 */
export function fileUrl(name, params) {
  const u = new URL(`files/${name.split('/').map(encodeURIComponent).join('/')}`, document.baseURI);
  for (const [k, v] of Object.entries(params ?? {})) u.searchParams.set(k, v);
  return u.href;
}

/**
 * Sorts a folder: folders first, then by `key`; names compare as people
 * expect ("file2" before "file10").
 * @param {Entry[]} list @param {SortKey} key @param {1|-1} dir
 */
export function sortEntries(list, key, dir) {
  const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  return [...list].sort((a, b) => {
    if (a.type !== b.type) return a.type === 'dir' ? -1 : 1;
    let c = 0;
    if (key === 'size') c = a.size - b.size;
    else if (key === 'modified') c = Date.parse(a.modified) - Date.parse(b.modified);
    return dir * (c || byName.compare(a.name, b.name));
  });
}

export class FileBrowser {
  /**
   * @param {{table: HTMLTableElement, crumbs: HTMLElement, filter: HTMLInputElement,
   *   link: {file: string, params: Record<string, string>}|null,
   *   onDownload: (name: string) => void, onRead: (name: string) => void, onSaveTo: ((name: string) => void)|null,
   *   onError: (message: string, retry: () => void) => void, onCopied: (message: string) => void,
   *   onMissing: (name: string) => void}} o
   */
  constructor(o) {
    this.o = o;
    this.dir = '';
    /** @type {string|null} the file named in the URL, shown selected */
    this.file = null;
    /** @type {Entry[]} */
    this.entries = [];
    /** @type {SortKey} */
    this.key = 'name';
    /** @type {1|-1} */
    this.order = 1;
    o.filter.addEventListener('input', () => this.draw());
    for (const th of o.table.querySelectorAll('th[data-sort]')) {
      const b = th.querySelector('button');
      if (b) b.onclick = () => this.sortBy(/** @type {SortKey} */ (/** @type {HTMLElement} */ (th).dataset.sort));
    }
    // One menu open at a time: a click or the focus elsewhere closes it, and
    // Escape closes it with the focus back on its ⋯.
    /** @param {EventTarget|null} at */
    const closeOthers = (at) => {
      for (const m of document.querySelectorAll('details.menu[open]')) if (!(at instanceof Node && m.contains(at))) m.removeAttribute('open');
    };
    document.addEventListener('click', (e) => closeOthers(e.target));
    document.addEventListener('focusin', (e) => closeOthers(e.target));
    document.addEventListener('keydown', (e) => {
      const open = /** @type {HTMLDetailsElement|null} */ (document.querySelector('details.menu[open]'));
      if (e.key !== 'Escape' || !open) return;
      open.removeAttribute('open');
      open.querySelector('summary')?.focus();
    });
  }

  /**
   * Goes to a folder (and file) and records it in the history, so Back
   * returns here. @param {string} dir @param {string|null} [file]
   */
  go(dir, file = null) {
    history.pushState({ dir, file }, '', pageUrl(dir, file));
    this.file = file;
    return this.load(dir);
  }

  /** The file opened is recorded in the URL (its folder stays). @param {string|null} file */
  mark(file) {
    if (this.o.link || file === this.file) return;
    this.file = file;
    history.pushState({ dir: this.dir, file }, '', pageUrl(this.dir, file));
    this.highlight();
  }

  /** Shows the URL's folder and file (on load, Back and Forward). */
  fromUrl() {
    const p = new URLSearchParams(location.search);
    const file = this.o.link ? null : p.get('file');
    this.file = file;
    return this.load(p.get('dir') ?? (file ? dirOf(file) : ''));
  }

  get body() {
    return /** @type {HTMLTableSectionElement} */ (this.o.table.tBodies[0]);
  }

  /** Lists one folder ('' for the top). @param {string} [dir] */
  async load(dir = this.dir) {
    const link = this.o.link;
    if (link) {
      // A signed link authorizes one file and not the list: show that file alone.
      this.entries = [{ name: link.file, size: NaN, modified: '', type: 'file' }];
      this.o.crumbs.hidden = true;
      return this.draw();
    }
    try {
      this.entries = await listFiles(undefined, undefined, dir);
      if (this.dir !== dir) this.o.filter.value = '';
      this.dir = dir;
      this.drawCrumbs();
      this.draw();
      if (this.file && dirOf(this.file) === dir && !this.entries.some((f) => f.name === this.file)) this.o.onMissing(this.file);
    } catch (e) {
      if (/** @type {{status?: number}} */ (e).status === 404 && dir) return this.noFolder(dir);
      this.body.innerHTML = '<tr><td colspan="4">The file list is unavailable.</td></tr>';
      this.o.onError(`Cannot load the file list: ${/** @type {Error} */ (e).message}.`, () => this.load(dir));
    }
  }

  /**
   * A folder that is not (or no longer) on the server: said in the list,
   * with the breadcrumbs and a link as ways back up; trying again would
   * not help. @param {string} dir
   */
  noFolder(dir) {
    this.dir = dir;
    this.entries = [];
    this.drawCrumbs();
    const up = document.createElement('a');
    up.textContent = 'Open all files';
    up.href = pageUrl('', null);
    up.onclick = (e) => { if (plain(e)) { e.preventDefault(); this.go(''); } };
    this.body.replaceChildren();
    const td = this.body.insertRow().insertCell();
    td.colSpan = 4;
    td.append(`There is no folder “${dir}” on the server. `, up);
    this.o.table.dataset.shown = '0';
    this.o.table.dataset.dir = dir;
  }

  /** @param {SortKey} key */
  sortBy(key) {
    this.order = this.key === key ? /** @type {1|-1} */ (-this.order) : 1;
    this.key = key;
    this.draw();
  }

  draw() {
    for (const th of this.o.table.querySelectorAll('th[data-sort]')) {
      const k = /** @type {HTMLElement} */ (th).dataset.sort;
      th.setAttribute('aria-sort', k === this.key ? (this.order > 0 ? 'ascending' : 'descending') : 'none');
    }
    const q = this.o.filter.value.trim().toLowerCase();
    const shown = sortEntries(this.entries, this.key, this.order)
      .filter((f) => !q || baseOf(f.name).toLowerCase().includes(q));
    this.body.replaceChildren(...shown.map((f) => this.row(f)));
    if (!shown.length) {
      const msg = q ? `No name in this folder contains “${q}”.` : this.dir ? 'This folder is empty.' : 'The server offers no files.';
      const tr = this.body.insertRow();
      const td = tr.insertCell();
      td.colSpan = 4;
      td.textContent = msg;
    }
    this.o.table.dataset.shown = String(shown.length);
    this.o.table.dataset.dir = this.dir;
    this.highlight();
  }

  /** Marks the URL's file in the list. */
  highlight() {
    for (const tr of this.body.rows) {
      const on = !!this.file && tr.dataset.name === this.file;
      tr.classList.toggle('selected', on);
      if (on) tr.setAttribute('aria-current', 'true'); else tr.removeAttribute('aria-current');
    }
  }

  /** One row: the name's last part as a link (a folder's with a slash), size, date, actions. @param {Entry} f */
  row(f) {
    const tr = document.createElement('tr');
    tr.dataset.name = f.name;
    tr.className = f.type;
    const name = tr.insertCell();
    name.className = 'name';
    const size = tr.insertCell();
    size.className = 'num';
    const date = tr.insertCell();
    date.className = 'date';
    const act = tr.insertCell();
    act.className = 'actions';
    const a = document.createElement('a');
    a.textContent = baseOf(f.name) + (f.type === 'dir' ? '/' : '');
    a.title = f.name;
    name.append(a);
    if (f.type === 'dir') {
      a.href = pageUrl(f.name, null);
      a.dataset.dir = f.name;
      a.onclick = (e) => { if (plain(e)) { e.preventDefault(); this.go(f.name); } };
    } else {
      size.textContent = Number.isFinite(f.size) ? formatBytes(f.size) : 'shared with you';
      if (Number.isFinite(f.size)) size.title = `${f.size} bytes`;
      const link = this.o.link?.file === f.name ? this.o.link.params : undefined;
      const url = fileUrl(f.name, link);
      const text = isTextName(f.name);
      // The name: a text opens to read, anything else downloads (verified, to disk).
      a.href = text ? pageUrl(dirOf(f.name), f.name) : url;
      a.dataset.open = f.name;
      if (text) a.classList.add('is-text');
      a.onclick = (e) => {
        if (!plain(e)) return;
        e.preventDefault();
        if (text) { this.mark(f.name); this.o.onRead(f.name); } else this.o.onDownload(f.name);
      };
      const dl = button('', `Download ${f.name}`, 'icon get', { file: f.name }, () => this.o.onDownload(f.name));
      dl.innerHTML = '<span aria-hidden="true">↓</span><span class="label">Download</span>';
      dl.title = 'Download, every chunk verified';
      const menu = document.createElement('details');
      menu.className = 'menu';
      menu.dataset.menu = f.name;
      const sum = document.createElement('summary');
      sum.className = 'icon';
      sum.textContent = '⋯';
      sum.title = 'More';
      sum.setAttribute('aria-label', `More for ${f.name}`);
      const pop = document.createElement('div');
      pop.className = 'menu-pop';
      const close = () => menu.removeAttribute('open');
      if (text) pop.append(button('Read it here', `Read ${f.name} here`, 'secondary', { read: f.name }, () => { close(); this.mark(f.name); this.o.onRead(f.name); }));
      const saveTo = this.o.onSaveTo;
      if (saveTo) {
        // Written straight into a file the person picks: no second copy.
        pop.append(button('Save to…', `Download ${f.name} into a file you pick`, 'secondary', { saveTo: f.name }, () => { close(); saveTo(f.name); }));
      }
      pop.append(button('Copy link', `Copy the link to ${f.name}`, 'secondary', { copy: f.name, link: url }, () => { close(); this.copy(url, f.name); }));
      menu.append(sum, pop);
      act.append(dl, menu);
    }
    if (f.modified) {
      date.textContent = formatDate(f.modified);
      date.title = f.modified;
    }
    return tr;
  }

  /** Copies a link; where the clipboard is refused (plain HTTP), shows it to copy by hand. @param {string} url @param {string} name */
  async copy(url, name) {
    try {
      await navigator.clipboard.writeText(url);
      this.o.onCopied(`Copied the link to ${name}: ${url}`);
    } catch {
      this.o.onCopied(`The browser refused the clipboard; the link to ${name} is ${url}`);
    }
  }

  /** The breadcrumb line above the list: "All files / a / b", each part a way back up. */
  drawCrumbs() {
    const nav = this.o.crumbs;
    const dir = this.dir;
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
        const a = document.createElement('a');
        a.textContent = label;
        a.href = pageUrl(path, null);
        a.dataset.crumb = path;
        a.onclick = (e) => { if (plain(e)) { e.preventDefault(); this.go(path); } };
        nav.append(a);
      }
    });
  }
}

/** A plain left click (not one meant to open a new tab). @param {MouseEvent} e */
function plain(e) {
  return e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey;
}

/** @param {string} name */
function baseOf(name) {
  return name.slice(name.lastIndexOf('/') + 1);
}

/**
 * @param {string} label @param {string} aria @param {string} cls
 * @param {Record<string, string>} data @param {() => void} run
 */
function button(label, aria, cls, data, run) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (cls) b.className = cls;
  Object.assign(b.dataset, data);
  b.setAttribute('aria-label', aria);
  b.onclick = run;
  return b;
}
