// @ts-check
/**
 * @file The list of downloads, like a browser's downloads page: one compact
 * row per file (row.js), newest first, several at once. Over HTTP/1.1 the
 * browser opens at most six connections to a server, shared by the page's
 * streams and its file list: downloads beyond the budget wait in a queue so
 * the list never starves. State for the tests and for people alike is in the
 * DOM: each `.download` row carries data-name, data-state, data-verified,
 * data-percent, data-speed, ...
 */

import { TERMINAL } from '../chunkcast.js';
import { Row } from './row.js';

const RATE_KEY = 'chunkcast.rate';
const KNOWN_KEY = 'chunkcast.downloads';
/** How long a saved copy stays in storage: the browser's save reads it after the click. */
export const RELEASE_AFTER_SAVE_MS = 60_000;
/** Streams at once over HTTP/1.1 (of the browser's six connections per server). */
export const HTTP1_STREAMS = 4;

/**
 * The bandwidth new downloads start with: 0 (as fast as the network
 * allows) unless a person asked for a limit to be kept for new downloads.
 */
export function defaultRate() {
  return Number(localStorage.getItem(RATE_KEY)) || 0;
}

/** Keeps `rate` for new downloads (0 forgets it). @param {number} rate */
export function keepRate(rate) {
  if (rate > 0) localStorage.setItem(RATE_KEY, String(rate)); else localStorage.removeItem(RATE_KEY);
}

/**
 * What the page knows of downloads that may be unfinished in storage: chunk
 * sizes, for percentages, and whether it is a live text (resumed on reload).
 */
export function knownDownloads() {
  try { return /** @type {Record<string, {chunkSize: number, live?: boolean, saved?: boolean}>} */ (JSON.parse(localStorage.getItem(KNOWN_KEY) || '{}')); } catch { return {}; }
}

/**
 * Marks `name`'s stored copy as saved to the browser's downloads: a reload
 * before its release (RELEASE_AFTER_SAVE_MS) releases it then, instead of
 * offering to save it again.
 * @param {string} name
 */
export function rememberSaved(name) {
  const info = knownDownloads()[name];
  if (info) remember(name, { ...info, saved: true });
}

/** @param {string} name @param {{chunkSize: number, live?: boolean, saved?: boolean}|null} info */
export function remember(name, info) {
  const all = knownDownloads();
  if (info) all[name] = info; else delete all[name];
  localStorage.setItem(KNOWN_KEY, JSON.stringify(all));
}

/**
 * @typedef {Object} ListOptions
 * @property {HTMLElement} list  where the rows go
 * @property {HTMLElement} section  the list's section, hidden while empty
 * @property {HTMLTemplateElement} template  one row
 * @property {string} storeKind
 * @property {{file: string, params: Record<string, string>}|null} link
 * @property {boolean} demo  show "Drop connection"
 * @property {number} streams  downloads streaming at once (Infinity: no limit)
 * @property {(text: string) => void} announce  for screen readers
 * @property {() => void} onStorageChange
 * @property {() => void} refreshFiles
 * @property {() => void} onQueued  a download had to wait for a connection
 */

/** @typedef {{handle?: FileSystemFileHandle, read?: boolean}} StartOptions */

export class DownloadList {
  /** @param {ListOptions} o */
  constructor(o) {
    this.o = o;
    /** @type {Map<string, Row>} */
    this.rows = new Map();
    // Numbers that must move even when no byte arrives: the speed falls
    // during a stall and "reconnecting in N s" counts down.
    setInterval(() => { for (const r of this.rows.values()) r.tick(); }, 1000);
  }

  /**
   * Starts (or shows) the download of `name`. A file already downloading is
   * not started twice: its row is brought into view (and its reader opened
   * when asked). With `handle`, the verified chunks are written straight
   * into that file (see file-handle.js); with `read`, a text is typed out
   * to read and not saved by itself.
   * @param {string} name @param {StartOptions} [how]
   */
  async start(name, how = {}) {
    const had = this.rows.get(name);
    if (had && !TERMINAL.has(/** @type {any} */ (had.state)) && !had.outcome) { // not ended: running, paused, queued
      if (how.read) had.openReader();
      had.reveal();
      return had;
    }
    // The old row lets go of its storage before the new one opens it.
    if (had) await had.remove(false);
    const row = new Row(this, name, how);
    this.rows.set(name, row);
    this.o.list.prepend(row.el);
    this.o.section.hidden = false;
    row.reveal();
    if (this.busy() >= this.o.streams) {
      row.queue();
      this.o.onQueued();
    } else {
      row.run();
    }
    return row;
  }

  /** Downloads holding a connection (started, not paused nor ended). */
  busy() {
    let n = 0;
    for (const r of this.rows.values()) if (r.holdsConnection()) n++;
    return n;
  }

  /** A connection may have come free: start the oldest queued downloads that fit. */
  next() {
    const queued = [...this.rows.values()].filter((r) => r.state === 'queued'); // oldest first
    for (const r of queued) {
      if (this.busy() >= this.o.streams) return;
      r.run();
    }
  }

  /** Whether `row` may (re)start streaming now. @param {Row} row */
  hasRoomFor(row) {
    return row.holdsConnection() || this.busy() < this.o.streams;
  }
}
