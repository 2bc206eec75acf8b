// @ts-check
/**
 * @file The list of downloads: one card per file, each with its own
 * progress, chunk map, pace, text view, pause, resume, cancel and save.
 * Newest first, like a browser's download list. State for the tests and for
 * people alike is in the DOM: each `.download` card carries data-name,
 * data-state, data-verified, data-percent, data-speed, ...
 */

import { clearStored, Download, FileHandleStore, formatBytes, RUNNING, sha256, TERMINAL, toHex } from '../chunkcast.js';
import { ChunkMap } from './chunk-map.js';
import { formatEta, formatPercent, formatSpeed, plural, retryDeadline, stateText } from './format.js';
import { TextView } from './text-view.js';

/** States worth telling a screen reader about (progress itself is not announced). */
const ANNOUNCED = new Set(['paused', 'done', 'reconnecting', 'offline', 'resuming', 'error', 'changed']);
const RATE_KEY = 'chunkcast.rate';
const KNOWN_KEY = 'chunkcast.downloads';
/** How long a saved copy stays in storage: the browser's save reads it after the click. */
export const RELEASE_AFTER_SAVE_MS = 60_000;

/**
 * The pace new downloads start at: the one last chosen on any download
 * (0: as fast as the network allows).
 */
export function defaultRate() {
  return Number(localStorage.getItem(RATE_KEY)) || 0;
}

/** What the page knows of downloads that may be unfinished in storage: chunk sizes, for percentages. */
export function knownDownloads() {
  try { return /** @type {Record<string, {chunkSize: number}>} */ (JSON.parse(localStorage.getItem(KNOWN_KEY) || '{}')); } catch { return {}; }
}

/** @param {string} name @param {{chunkSize: number}|null} info */
function remember(name, info) {
  const all = knownDownloads();
  if (info) all[name] = info; else delete all[name];
  localStorage.setItem(KNOWN_KEY, JSON.stringify(all));
}

/**
 * @typedef {Object} ListOptions
 * @property {HTMLElement} list  where the cards go
 * @property {HTMLElement} section  the list's section, hidden while empty
 * @property {HTMLTemplateElement} template  one card
 * @property {string} storeKind
 * @property {{file: string, params: Record<string, string>}|null} link
 * @property {boolean} demo  show "Drop connection"
 * @property {(text: string) => void} announce  for screen readers
 * @property {() => void} onStorageChange
 * @property {() => void} refreshFiles
 */

export class DownloadList {
  /** @param {ListOptions} o */
  constructor(o) {
    this.o = o;
    /** @type {Map<string, Card>} */
    this.cards = new Map();
    // Numbers that must move even when no byte arrives: the speed decays to
    // zero during a stall and "reconnecting in N s" counts down.
    setInterval(() => { for (const c of this.cards.values()) c.tick(); }, 1000);
  }

  /**
   * Starts (or shows) the download of `name`. A file already downloading is
   * not started twice: its card is brought into view. With `handle`, the
   * verified chunks are written straight into that file (see file-handle.js).
   * @param {string} name @param {FileSystemFileHandle} [handle]
   */
  async start(name, handle) {
    const had = this.cards.get(name);
    if (had && !TERMINAL.has(had.state)) { // not ended: running, paused, or about to start
      had.reveal();
      return had;
    }
    // The old card lets go of its storage before the new one opens it.
    if (had) await had.remove(false);
    const card = new Card(this, name, handle);
    this.cards.set(name, card);
    this.o.list.prepend(card.el);
    this.o.section.hidden = false;
    card.reveal();
    card.run();
    return card;
  }
}

class Card {
  /** @param {DownloadList} list @param {string} name @param {FileSystemFileHandle} [handle] */
  constructor(list, name, handle) {
    this.list = list;
    this.name = name;
    /** @type {FileHandleStore|null} the picked file the chunks are written into, if any */
    this.picked = handle ? new FileHandleStore(name, handle) : null;
    /** @type {import('../chunkcast.js').State} the download's state, as it last said */
    this.state = 'idle';
    /** @type {'gone'|'cancelled'|null} how the card ended, when more than its download's state says (shown as its state) */
    this.outcome = null;
    /** @type {number|null} */
    this.retryAt = null;
    this.released = false;
    this.toldReconnecting = -Infinity;
    const el = /** @type {HTMLElement} */ (/** @type {DocumentFragment} */ (list.o.template.content.cloneNode(true)).firstElementChild);
    this.el = el;
    el.dataset.name = name;
    el.dataset.state = this.state;
    const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (el.querySelector(s));
    this.q = q;
    q('.dl-name').textContent = name;
    if (this.picked) q('.dl-target').textContent = `Writing into “${this.picked.handle.name}” as verified chunks arrive: no second copy is kept in this browser.`;
    q('.dl-target').hidden = !this.picked;
    const id = `dl-${Math.random().toString(36).slice(2)}`;
    q('.dl-name').id = id;
    el.setAttribute('aria-labelledby', id);
    this.map = new ChunkMap(/** @type {HTMLCanvasElement} */ (q('.map-canvas')), q('.counts'));
    this.text = new TextView(q('.text'));
    this.rateSel = /** @type {HTMLSelectElement} */ (q('select.rate'));
    const rate = defaultRate();
    this.rateSel.value = String(rate);
    if (this.rateSel.selectedIndex < 0) this.rateSel.add(new Option(`${formatBytes(rate)}/s`, String(rate), true, true));
    this.rateSel.onchange = () => {
      const rate = Number(this.rateSel.value) || 0;
      localStorage.setItem(RATE_KEY, String(rate));
      this.d?.setRate(rate);
      this.text.setRate(rate);
    };
    q('.drop').hidden = !list.o.demo;
    q('.pause').onclick = () => this.d?.pause();
    q('.resume').onclick = () => this.d?.resume();
    q('.drop').onclick = () => { if (this.d?.dropConnection()) this.say('Connection dropped: watch it resume.'); };
    q('.cancel').onclick = () => this.cancel();
    q('.save').onclick = () => this.save();
    q('.forget').onclick = () => this.remove(true);
    this.setButtons();
  }

  /** Brings the card into view (on a phone the list may be far above the file just tapped). */
  reveal() {
    const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
    // Its top (name, state, buttons) in view, not only some part of it.
    if (this.inView()) return;
    this.el.scrollIntoView({ block: 'start', behavior: smooth ? 'smooth' : 'auto' });
    // A smooth scroll can be cut short, and the card moves as it and the
    // parts above it grow: if its top is still out of view once the scroll
    // should have ended, jump to it.
    setTimeout(() => { if (!this.inView()) this.el.scrollIntoView({ block: 'start' }); }, 1000);
  }

  /** Whether the card's top is on screen with room below it. */
  inView() {
    const r = this.el.getBoundingClientRect();
    return r.top >= 0 && r.top < window.innerHeight - 100;
  }

  /** A line for people in the card's state area. @param {string} text */
  say(text) {
    this.q('.dl-state').textContent = text;
  }

  run() {
    const name = this.name;
    const o = this.list.o;
    const rate = Number(this.rateSel.value) || 0;
    const d = new Download(name, {
      store: this.picked ?? o.storeKind,
      rate,
      params: o.link?.file === name ? o.link.params : undefined,
      onstate: (state, message) => this.onState(state, message),
      onprogress: (p) => this.showProgress(p),
      onchunk: (i, s) => this.map.set(i, s),
      ontext: (piece) => this.text.push(piece),
      onerror: (e) => this.onError(e),
    });
    this.d = d;
    d.start();
    d.done.then((r) => this.finished(r.blob, r.manifest.sha256), () => { /* told through onerror */ });
  }

  /** @param {string} state @param {string} message */
  onState(state, message) {
    const d = /** @type {Download} */ (this.d);
    const was = this.state;
    this.state = /** @type {import('../chunkcast.js').State} */ (state);
    this.el.dataset.state = this.outcome ?? state;
    this.retryAt = state === 'reconnecting' || state === 'stalled' ? retryDeadline(message) : null;
    this.say(stateText(state, message, this.retryAt));
    this.setButtons();
    this.text.hold(state === 'paused');
    // Out of the live states, the last speed and ETA no longer hold.
    if (!RUNNING.has(this.state) && d.manifest) this.showProgress(d.progress());
    if (state === 'opening' && d.manifest) {
      this.map.reset(d.manifest.chunks);
      const text = d.manifest.kind === 'text';
      this.q('.text-view').hidden = !text;
      this.q('.resume').textContent = text ? 'Continue' : 'Resume';
      if (text) this.text.setRate(Number(this.rateSel.value) || 0, d.manifest.chunk_size);
    }
    if (state === 'streaming' && d.store?.persistent) {
      remember(this.name, { chunkSize: d.manifest?.chunk_size ?? 0 });
      this.list.o.onStorageChange();
    }
    // Failures are read out by the card's alert (role=alert). A connection
    // that keeps failing is announced once a minute, not at every attempt.
    const quiet = state === 'reconnecting' && performance.now() - this.toldReconnecting < 60_000;
    if (ANNOUNCED.has(state) && state !== was && state !== 'error' && state !== 'changed' && !quiet) {
      if (state === 'reconnecting') this.toldReconnecting = performance.now();
      this.list.o.announce(`${this.name}: ${stateText(state, '', null)}`);
    }
  }

  /** Called every second: the speed decays during a stall, the countdown counts. */
  tick() {
    if (!this.d || !RUNNING.has(this.state)) return;
    this.showProgress(this.d.progress());
    if (this.state === 'reconnecting' || this.state === 'stalled') this.say(stateText(this.state, '', this.retryAt));
  }

  /** @param {import('../chunkcast.js').Progress} p */
  showProgress(p) {
    /** @type {HTMLProgressElement} */ (this.q('.bar')).value = p.percent;
    const live = RUNNING.has(this.state) && this.state !== 'verifying';
    const parts = [formatPercent(p.percent), `${formatBytes(p.bytesVerified)} of ${formatBytes(p.size)}`];
    if (live) parts.push(formatSpeed(p.bytesPerSecond), `ETA ${formatEta(p.eta)}`);
    parts.push(`${p.chunksVerified}/${plural(p.chunks, 'chunk')}`);
    if (p.chunksResumed) parts.push(`${p.chunksResumed} resumed from disk`);
    if (p.chunksRefetched) parts.push(`${p.chunksRefetched} refetched`);
    if (p.reconnects) parts.push(plural(p.reconnects, 'reconnect'));
    this.q('.dl-stats').textContent = parts.join(' · ');
    const d = this.el.dataset;
    d.verified = String(p.chunksVerified);
    d.chunks = String(p.chunks);
    d.resumed = String(p.chunksResumed);
    d.received = String(p.bytesReceived);
    d.reconnects = String(p.reconnects);
    d.percent = p.percent.toFixed(2);
    d.speed = String(live ? Math.round(p.bytesPerSecond) : 0);
    d.average = String(Math.round(p.averageBytesPerSecond));
    d.elapsed = p.elapsed.toFixed(3);
  }

  setButtons() {
    const s = this.state;
    const live = RUNNING.has(s) && s !== 'verifying';
    const ended = TERMINAL.has(s);
    const over = this.outcome !== null; // gone or cancelled: nothing to resume or cancel
    const set = (/** @type {string} */ sel, /** @type {boolean} */ on) => { /** @type {HTMLButtonElement} */ (this.q(sel)).disabled = !on; };
    set('.pause', live);
    set('.resume', !over && (s === 'paused' || (s === 'error' && !!this.d?.manifest)));
    set('.drop', live && s !== 'paused');
    set('.cancel', !over && (live || s === 'paused' || s === 'error'));
    this.rateSel.disabled = ended;
    // Save only while there is a verified copy to save.
    this.q('.done').hidden = s !== 'done';
    this.q('.save').hidden = s !== 'done' || this.released || !!this.picked;
    this.q('.forget').hidden = !ended;
    this.q('.forget').textContent = s === 'done' && !this.released && !this.picked && this.d?.store?.persistent ? 'Remove the stored copy' : 'Remove from the list';
  }

  /** @param {Blob} blob @param {string} sha */
  async finished(blob, sha) {
    if (this.picked) {
      remember(this.name, null);
      this.say(`Done: verified, and saved in “${this.picked.handle.name}”.`);
    }
    this.map.draw();
    this.q('.sha256').textContent = sha;
    this.q('.sha-check').textContent = '';
    this.setButtons();
    // The Save button takes the focus if the person was on this card (or
    // nowhere): Enter then saves. Another card's focus is left alone.
    const active = document.activeElement;
    if (!active || active === document.body || this.el.contains(active) || /** @type {HTMLElement} */ (active).dataset?.file === this.name) {
      /** @type {HTMLButtonElement} */ (this.q('.save')).focus();
    }
    this.list.o.onStorageChange();
    // Small files are hashed whole as well, as a second, independent check.
    if (blob.size <= 64 << 20) {
      const got = toHex(await sha256(await blob.arrayBuffer()));
      this.q('.sha-check').textContent = got === sha ? '✓ recomputed over the whole file' : `✗ the whole file hashes to ${got}`;
      this.el.dataset.wholeSha256 = got;
    }
  }

  /**
   * What was received no longer counts (the file changed or is gone): the
   * numbers say where it stopped, the bar and map start from zero.
   */
  discarded() {
    const p = this.d?.progress();
    this.map.clear();
    this.text.stop();
    /** @type {HTMLProgressElement} */ (this.q('.bar')).value = 0;
    if (p) this.q('.dl-stats').textContent = `Stopped at ${formatPercent(p.percent)} (${p.chunksVerified}/${plural(p.chunks, 'chunk')}); what was received was discarded.`;
  }

  /** @param {import('../chunkcast.js').ChunkcastError} e */
  onError(e) {
    const name = this.name;
    if (e.code === 'closed') return;
    if (e.code === 'changed') {
      this.discarded();
      this.alert(`“${name}” changed on the server while it was downloading. The chunks received so far were discarded.`,
        { label: 'Download the new version', run: () => this.list.start(name, this.picked?.handle) });
    } else if (e.code === 'not_found') {
      // Gone is not changed: there is no new version to fetch. What was
      // verified belongs to a file that no longer exists, so it is dropped.
      this.outcome = 'gone';
      this.el.dataset.state = 'gone';
      this.discarded();
      remember(name, null);
      this.dropStored().then(() => this.list.o.onStorageChange());
      this.say('Gone from the server.');
      this.alert(`“${name}” is no longer on the server: it was deleted or moved. The partial download was removed.`,
        { label: 'Refresh the file list', run: () => this.list.o.refreshFiles() });
      this.setButtons();
    } else if (e.code === 'server_down') {
      this.alert(`The server cannot be reached: ${e.message}`, { label: 'Try again', run: () => this.d?.resume() });
    } else if (e.code === 'storage') {
      this.alert(`The browser's storage failed: ${e.message}`, { label: 'Start over', run: () => this.list.start(name, this.picked?.handle) });
    } else if (e.code === 'unsupported') {
      this.alert(`This browser cannot download here: ${e.message}`, { label: 'Try again', run: () => this.list.start(name, this.picked?.handle) });
    } else if (e.code === 'internal') {
      this.alert(`The download failed because of a bug in chunkcast: ${e.message}`, { label: 'Start over', run: () => this.list.start(name, this.picked?.handle) });
    } else {
      this.alert(`The download failed: ${e.message}`, { label: 'Start over', run: () => this.list.start(name, this.picked?.handle) });
    }
  }

  /**
   * A failure, in the card (role=alert: read out once), with one action.
   * @param {string} text @param {{label: string, run: () => void}} action
   */
  alert(text, action) {
    const box = this.q('.dl-alert');
    box.hidden = false;
    this.q('.dl-alert-text').textContent = text;
    const b = /** @type {HTMLButtonElement} */ (this.q('.dl-alert-action'));
    b.textContent = action.label;
    b.onclick = () => { box.hidden = true; action.run(); };
  }

  async cancel() {
    if (!this.d) return;
    await this.d.close();
    remember(this.name, null);
    await this.dropStored();
    this.outcome = 'cancelled';
    this.el.dataset.state = 'cancelled';
    this.text.stop();
    this.say('Cancelled; the partial download was removed.');
    this.list.o.announce(`${this.name}: cancelled`);
    this.setButtons();
    this.list.o.onStorageChange();
  }

  /** Removes the partial download: from the browser's storage, or the picked file. */
  async dropStored() {
    if (this.picked) await this.picked.drop();
    else await clearStored(this.name).catch(() => {});
  }

  /**
   * Saves the verified file, then releases the stored copy once the
   * browser has had time to read it: a second copy in the browser's
   * storage serves nothing after the save.
   */
  async save() {
    if (!this.d || this.released) return;
    await this.d.save();
    if (!this.d.store?.persistent) return; // in memory: freed with the card
    this.say(`Saved. The copy kept in this browser is released in ${RELEASE_AFTER_SAVE_MS / 1000} s (the save reads it until then).`);
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(() => this.release(), RELEASE_AFTER_SAVE_MS);
  }

  async release() {
    remember(this.name, null);
    await this.d?.close();
    await clearStored(this.name).catch(() => {});
    this.released = true;
    this.say('Saved. The copy kept in this browser was released.');
    this.setButtons();
    this.list.o.onStorageChange();
  }

  /**
   * Takes the card off the list; with `dropStored`, the stored chunks too.
   * @param {boolean} dropStored
   */
  async remove(dropStored) {
    clearTimeout(this.releaseTimer);
    this.text.stop();
    this.el.remove();
    if (this.list.cards.get(this.name) === this) this.list.cards.delete(this.name);
    await this.d?.close();
    if (dropStored) {
      remember(this.name, null);
      if (this.state !== 'done' || !this.picked) await this.dropStored();
      this.list.o.onStorageChange();
    }
    if (!this.list.cards.size) this.list.o.section.hidden = true;
  }
}

/** @typedef {Card} DownloadCard */
