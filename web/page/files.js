// @ts-check
/**
 * @file The file browser: one folder at a time (`/api/files?dir=`), with
 * breadcrumbs, sizes and dates, sorting by column, a filter on names, and a
 * copy-link button per file.
 */

import { formatBytes, listFiles } from '../chunkcast.js';
import { formatDate } from './format.js';

/** @typedef {{name: string, size: number, modified: string, type: 'file'|'dir'}} Entry */
/** @typedef {'name'|'size'|'modified'} SortKey */

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
   *   onDownload: (name: string) => void, onSaveTo: ((name: string) => void)|null, onError: (message: string, retry: () => void) => void,
   *   onCopied: (message: string) => void}} o
   */
  constructor(o) {
    this.o = o;
    this.dir = '';
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
    } catch (e) {
      this.body.innerHTML = '<tr><td colspan="4">The file list is unavailable.</td></tr>';
      this.o.onError(`Cannot load the file list: ${/** @type {Error} */ (e).message}.`, () => this.load(dir));
    }
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
  }

  /** One row: the name's last part (a folder's with a slash), size, date, actions. @param {Entry} f */
  row(f) {
    const tr = document.createElement('tr');
    const name = tr.insertCell();
    name.textContent = baseOf(f.name) + (f.type === 'dir' ? '/' : '');
    name.title = f.name;
    const size = tr.insertCell();
    size.className = 'num';
    const date = tr.insertCell();
    date.className = 'date';
    const act = tr.insertCell();
    act.className = 'actions';
    if (f.type === 'dir') {
      act.append(button('Open', `Open folder ${f.name}`, 'secondary', { dir: f.name }, () => this.load(f.name)));
    } else {
      size.textContent = Number.isFinite(f.size) ? formatBytes(f.size) : 'shared with you';
      if (Number.isFinite(f.size)) size.title = `${f.size} bytes`;
      const link = this.o.link?.file === f.name ? this.o.link.params : undefined;
      const url = fileUrl(f.name, link);
      act.append(button('Download', `Download ${f.name}`, '', { file: f.name }, () => this.o.onDownload(f.name)));
      const saveTo = this.o.onSaveTo;
      if (saveTo) {
        // Written straight into a file the person picks: no second copy.
        act.append(button('Save to…', `Download ${f.name} into a file you pick`, 'secondary', { saveTo: f.name }, () => saveTo(f.name)));
      }
      act.append(button('Copy link', `Copy the link to ${f.name}`, 'secondary', { copy: f.name, link: url }, () => this.copy(url, f.name)));
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
        nav.append(button(label, `Go to ${label}`, 'secondary', { crumb: path }, () => this.load(path)));
      }
    });
  }
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
