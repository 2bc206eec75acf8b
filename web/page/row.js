// @ts-check
/**
 * @file One download's row, as in a browser's downloads page: name, size, a
 * progress bar, speed · ETA or its state, one primary action (pause, resume,
 * save again) and a remove/cancel control; the chunk map, hashes, counts,
 * bandwidth limit and the rest in a details panel opened on demand. A text
 * can be read in the row as it arrives (text-view.js), typed out at the
 * reader's pace. A finished download is handed to the browser's own download
 * by itself (one click to disk), unless it was written into a picked file.
 */

import { clearStored, Download, FileHandleStore, formatBytes, RUNNING, sha256, TERMINAL, toHex } from '../chunkcast.js';
import { ChunkMap } from './chunk-map.js';
import { defaultRate, keepRate, RELEASE_AFTER_SAVE_MS, remember, rememberSaved } from './downloads.js';
import { changedText, formatEta, formatPercent, formatSpeed, plural, retryDeadline, stateText } from './format.js';
import { isGrowing, liveLine, liveStats, markLive } from './live.js';
import { Meter } from './meter.js';
import { PACES, TextView } from './text-view.js';

/** States worth telling a screen reader about (progress itself is not announced). */
const ANNOUNCED = new Set(['paused', 'done', 'reconnecting', 'offline', 'resuming', 'error', 'changed']);
/** States in which bytes flow: the speed is measured; in the others it is 0 (no connection) or unknown. */
const FLOWING = new Set(['streaming', 'refilling']);
const WAITING = new Set(['reconnecting', 'stalled', 'offline', 'checking']);
/** The reader's pace when a text is opened to read, characters per second. */
export const READING_PACE = 60;

export class Row {
  /** @param {import('./downloads.js').DownloadList} list @param {string} name @param {import('./downloads.js').StartOptions} how */
  constructor(list, name, how) {
    this.list = list;
    this.name = name;
    /** @type {FileHandleStore|null} the picked file the chunks are written into, if any */
    this.picked = how.handle ? new FileHandleStore(name, how.handle) : null;
    /** Opened to read: typed out in the row, saved only when asked. */
    this.reading = !!how.read;
    /** @type {import('../chunkcast.js').State|'queued'} the download's state, as it last said */
    this.state = 'idle';
    /** @type {'gone'|'cancelled'|null} how the row ended, when more than its download's state says (shown as its state) */
    this.outcome = null;
    /** @type {number|null} */
    this.retryAt = null;
    /** @type {string|null} a live text's state (live.js), null for a file */
    this.live = null;
    this.released = false;
    this.saved = false;
    this.toldReconnecting = -Infinity;
    this.meter = new Meter();
    const el = /** @type {HTMLElement} */ (/** @type {DocumentFragment} */ (list.o.template.content.cloneNode(true)).firstElementChild);
    this.el = el;
    el.dataset.name = name;
    el.dataset.state = this.state;
    const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (el.querySelector(s));
    this.q = q;
    q('.dl-name').textContent = name.slice(name.lastIndexOf('/') + 1);
    q('.dl-name').title = name;
    if (this.picked) q('.dl-target').textContent = `Writing into “${this.picked.handle.name}” as verified chunks arrive: no second copy is kept in this browser.`;
    q('.dl-target').hidden = !this.picked;
    const id = `dl-${Math.random().toString(36).slice(2)}`;
    q('.dl-name').id = id;
    el.setAttribute('aria-labelledby', id);
    q('.dl-details').id = `${id}-details`;
    q('.more').setAttribute('aria-controls', `${id}-details`);
    q('.more').setAttribute('aria-label', `Details of ${name}`);
    this.map = new ChunkMap(/** @type {HTMLCanvasElement} */ (q('.map-canvas')), q('.counts'));
    this.text = new TextView(q('.text'));
    this.rateSel = /** @type {HTMLSelectElement} */ (q('select.rate'));
    this.keep = /** @type {HTMLInputElement} */ (q('input.keep-rate'));
    const rate = defaultRate();
    this.rateSel.value = String(rate);
    if (this.rateSel.selectedIndex < 0) this.rateSel.add(new Option(`${formatBytes(rate)}/s`, String(rate), true, true));
    this.keep.checked = rate > 0;
    this.rateSel.onchange = () => {
      const r = this.rate();
      if (this.keep.checked) keepRate(r);
      this.d?.setRate(r);
      this.meter.reset(performance.now(), this.d?.progress().bytesVerified ?? 0);
    };
    this.keep.onchange = () => keepRate(this.keep.checked ? this.rate() : 0);
    this.paceButtons();
    q('.drop').hidden = !list.o.demo;
    q('.pause').onclick = () => this.d?.pause();
    q('.resume').onclick = () => this.d?.resume();
    q('.drop').onclick = () => { if (this.d?.dropConnection()) this.say('Connection dropped: watch it resume.'); };
    q('.cancel').onclick = () => this.cancel();
    q('.save').onclick = () => this.save();
    q('.forget').onclick = () => this.remove(true);
    q('.x').onclick = () => (this.cancellable() ? this.cancel() : this.remove(true));
    q('.more').onclick = () => this.toggleDetails();
    q('.read').onclick = () => this.openReader();
    q('.typing').onclick = () => this.toggleTyping();
    if (this.reading) this.openReader();
    this.setButtons();
  }

  rate() {
    return Number(this.rateSel.value) || 0;
  }

  /** The reader's pace presets, one pressed. */
  paceButtons() {
    const box = this.q('.paces');
    box.replaceChildren(...PACES.map((p) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      b.dataset.pace = String(p);
      b.textContent = p ? String(p) : 'instant';
      b.setAttribute('aria-label', p ? `${p} characters per second` : 'Instant');
      b.onclick = () => this.setPace(p);
      return b;
    }));
    this.setPace(this.reading ? READING_PACE : 0);
  }

  /** @param {number} pace characters per second, 0 for instant */
  setPace(pace) {
    this.text.setPace(pace, !isGrowing(this.live));
    for (const b of this.q('.paces').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.pace === String(pace)));
  }

  /** Pause or Continue the typing (not the download). */
  toggleTyping() {
    this.text.hold(!this.text.held);
    const b = this.q('.typing');
    b.textContent = this.text.held ? 'Continue typing' : 'Pause typing';
    b.setAttribute('aria-pressed', String(this.text.held));
  }

  /** Shows the reader (a text's words, typed out as they arrive). */
  openReader() {
    this.reading = true;
    this.q('.text-view').hidden = false;
    this.q('.read').hidden = true;
    if (!this.text.pace && !this.text.shown) this.setPace(READING_PACE);
  }

  toggleDetails() {
    const open = this.q('.dl-details').hidden;
    this.q('.dl-details').hidden = !open;
    this.q('.more').setAttribute('aria-expanded', String(open));
    this.el.classList.toggle('open', open);
    if (open) this.map.draw();
  }

  /** Brings the row into view (on a phone the list may be far above the file just tapped). */
  reveal() {
    const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
    if (this.inView()) return;
    this.el.scrollIntoView({ block: 'start', behavior: smooth ? 'smooth' : 'auto' });
    // A smooth scroll can be cut short, and the row moves as the parts above
    // it grow: if its top is still out of view afterwards, jump to it.
    setTimeout(() => { if (!this.inView()) this.el.scrollIntoView({ block: 'start' }); }, 1000);
  }

  /** Whether the row's top is on screen with room below it. */
  inView() {
    const r = this.el.getBoundingClientRect();
    return r.top >= 0 && r.top < window.innerHeight - 100;
  }

  /** A line for people in the row's state area. @param {string} text */
  say(text) {
    this.q('.dl-state').textContent = text;
  }

  /** Waits for a connection (HTTP/1.1's budget is taken). */
  queue() {
    this.state = 'queued';
    this.el.dataset.state = 'queued';
    this.say('Queued: starts when a connection is free');
    this.q('.dl-stats').textContent = 'ETA\u00a0—';
    this.setButtons();
  }

  /** Whether this download holds one of the browser's connections to the server. */
  holdsConnection() {
    return !!this.d && RUNNING.has(/** @type {any} */ (this.state)) && !this.outcome;
  }

  cancellable() {
    return this.outcome === null && (this.state === 'queued' || !TERMINAL.has(/** @type {any} */ (this.state)));
  }

  run() {
    const name = this.name;
    const o = this.list.o;
    const d = new Download(name, {
      store: this.picked ?? o.storeKind,
      rate: this.rate(),
      params: o.link?.file === name ? o.link.params : undefined,
      onstate: (state, message) => this.onState(state, message),
      onprogress: (p) => this.showProgress(p),
      onchunk: (i, s) => this.map.set(i, s),
      onlive: (s) => this.showLive(s),
      ontext: (piece) => this.text.push(piece),
      onchanged: (c) => this.onChanged(c),
      onerror: (e) => this.onError(e),
    });
    this.d = d;
    /** @type {import('../chunkcast.js').Change|null} the last change of version, told in the row's note */
    this.change = null;
    this.state = 'idle';
    d.start();
    d.done.then((r) => this.finished(r.blob, r.manifest.sha256), () => { /* told through onerror */ });
  }

  /** @param {string} state @param {string} message */
  onState(state, message) {
    const d = /** @type {Download} */ (this.d);
    const was = this.state;
    this.state = /** @type {import('../chunkcast.js').State} */ (state);
    this.el.dataset.state = this.outcome ?? state;
    this.retryAt = WAITING.has(state) ? retryDeadline(message) : null;
    this.say(liveLine(state, this.live) ?? stateText(state, message, this.retryAt));
    if (state === 'connecting' || state === 'resuming') this.meter.reset(performance.now(), d.progress().bytesVerified);
    this.setButtons();
    // Out of the live states, the last speed and ETA no longer hold.
    if (!RUNNING.has(this.state) && d.manifest) this.showProgress(d.progress());
    if (state === 'opening' && d.manifest) {
      this.map.reset(d.manifest.chunks);
      this.el.dataset.kind = d.manifest.kind;
      this.q('.read').hidden = d.manifest.kind !== 'text' || this.reading;
      // A live text is followed to be read, as it is written.
      if (d.manifest.live) { this.openReader(); this.showLive(d.manifest.state ?? 'live'); }
    }
    if (state === 'streaming' && d.store?.persistent) {
      remember(this.name, { chunkSize: d.manifest?.chunk_size ?? 0, live: !!this.live });
      this.list.o.onStorageChange();
    }
    if (RUNNING.has(/** @type {any} */ (was)) && !RUNNING.has(this.state)) this.list.next();
    // Failures are read out by the row's alert (role=alert). A connection
    // that keeps failing is announced once a minute, not at every attempt.
    const quiet = state === 'reconnecting' && performance.now() - this.toldReconnecting < 60_000;
    if (ANNOUNCED.has(state) && state !== was && state !== 'error' && state !== 'changed' && !quiet) {
      if (state === 'reconnecting') this.toldReconnecting = performance.now();
      this.list.o.announce(`${this.name}: ${stateText(state, '', null)}`);
    }
  }

  /**
   * The file changed on the server (or the stored copy was of an older
   * version): the download goes on with the new one, and the note says how
   * much was kept. @param {import('../chunkcast.js').Change} c
   */
  onChanged(c) {
    this.change = c;
    if (c.textFrom === 0) this.text.clear(); // told again from its start
    Object.assign(this.q('.dl-note'), { hidden: false, textContent: changedText(c, false) });
    this.el.dataset.kept = String(c.kept);
  }

  /** A live text's publication changed state (or was first read). @param {string} live */
  showLive(live) {
    this.live = live;
    markLive(this.el, live);
    const line = liveLine(this.state, live);
    if (line) this.say(line);
  }

  /** Called every second: the speed falls during a stall, the countdown counts. */
  tick() {
    if (!this.d || !RUNNING.has(/** @type {any} */ (this.state))) return;
    this.showProgress(this.d.progress());
    if (WAITING.has(this.state)) this.say(stateText(this.state, '', this.retryAt));
  }

  /** @param {import('../chunkcast.js').Progress} p */
  showProgress(p) {
    const now = performance.now();
    this.meter.feed(now, p.bytesVerified);
    /** @type {HTMLProgressElement} */ (this.q('.bar')).value = p.percent;
    const live = RUNNING.has(/** @type {any} */ (this.state)) && this.state !== 'verifying';
    const speed = FLOWING.has(this.state) ? this.meter.speed(now, this.rate(), this.d?.manifest?.chunk_size) : WAITING.has(this.state) ? 0 : null;
    const eta = speed === null || !live ? null : Meter.eta(p.size - p.bytesVerified, speed);
    let parts;
    if (this.state === 'done') {
      parts = [formatBytes(p.size), 'verified'];
    } else if (isGrowing(this.live)) {
      parts = [liveStats(p, live && speed !== null ? formatSpeed(speed) : null)];
    } else {
      parts = [formatPercent(p.percent), `${formatBytes(p.bytesVerified)} of ${formatBytes(p.size)}`];
      if (live) parts.push(speed === null ? '— B/s' : formatSpeed(speed), `ETA\u00a0${formatEta(eta)}`); // never "ETA" / "35 s" on two lines
      if (p.reconnects) parts.push(plural(p.reconnects, 'reconnect'));
    }
    this.q('.dl-stats').textContent = parts.join(' · ');
    const more = [];
    if (p.chunksResumed) more.push(`${p.chunksResumed} ${this.change && !this.change.stored ? 'kept from the older version' : 'resumed from disk'}`);
    if (p.chunksRefetched) more.push(`${p.chunksRefetched} refetched`);
    if (p.reconnects) more.push(plural(p.reconnects, 'reconnect'));
    more.push(`${formatSpeed(p.averageBytesPerSecond)} on average`);
    this.q('.dl-more').textContent = more.join(' · ');
    const d = this.el.dataset;
    d.verified = String(p.chunksVerified);
    d.chunks = String(p.chunks);
    d.resumed = String(p.chunksResumed);
    d.received = String(p.bytesReceived);
    d.reconnects = String(p.reconnects);
    d.percent = p.percent.toFixed(2);
    d.speed = String(live && speed !== null ? Math.round(speed) : 0);
    d.eta = eta === null ? '' : eta.toFixed(1);
    d.average = String(Math.round(p.averageBytesPerSecond));
    d.elapsed = p.elapsed.toFixed(3);
  }

  setButtons() {
    const s = /** @type {any} */ (this.state);
    const live = RUNNING.has(s) && s !== 'verifying';
    const ended = TERMINAL.has(s);
    const over = this.outcome !== null; // gone or cancelled: nothing to resume or cancel
    const show = (/** @type {string} */ sel, /** @type {boolean} */ on) => {
      const b = /** @type {HTMLButtonElement} */ (this.q(sel));
      b.disabled = !on;
      b.hidden = !on;
    };
    show('.pause', !over && live);
    show('.resume', !over && (s === 'paused' || s === 'reconnecting' || (s === 'error' && !!this.d?.manifest))); // reconnecting: try now
    this.q('.resume').textContent = s === 'reconnecting' ? 'Retry now' : 'Resume';
    /** @type {HTMLButtonElement} */ (this.q('.drop')).disabled = !(live && s !== 'paused');
    show('.cancel', this.cancellable() && !ended && s !== 'done'); // a finished row: no cancel, no bandwidth
    this.rateSel.disabled = ended || over;
    this.q('.rate-line').hidden = ended || over;
    this.el.dataset.ended = String(ended || over);
    // Save only while there is a verified copy to save.
    this.q('.done').hidden = s !== 'done';
    show('.save', s === 'done' && !this.released && !this.picked);
    this.q('.save').textContent = this.saved ? 'Save again' : 'Save';
    // Once saved, saving again is a quiet option, as in Chrome's downloads
    // page: the row is done, not asking for a click.
    this.q('.save').classList.toggle('secondary', this.saved);
    this.q('.save').setAttribute('aria-label', `${this.saved ? 'Save again' : 'Save'} ${this.name}`);
    this.q('.forget').hidden = !(ended || over);
    this.q('.forget').textContent = s === 'done' && !this.released && !this.picked && this.d?.store?.persistent ? 'Remove the stored copy' : 'Remove from the list';
    const x = this.q('.x');
    x.setAttribute('aria-label', this.cancellable() ? `Cancel ${this.name}` : `Remove ${this.name} from the list`);
    x.title = this.cancellable() ? 'Cancel' : 'Remove from the list';
  }

  /** @param {Blob} blob @param {string} sha */
  async finished(blob, sha) {
    if (this.change) this.q('.dl-note').textContent = changedText(this.change, true);
    this.map.complete();
    this.map.draw();
    this.q('.sha256').textContent = sha;
    this.q('.sha-check').textContent = '';
    if (this.picked) {
      remember(this.name, null);
      this.say(`Verified and saved in “${this.picked.handle.name}”`);
    } else if (!this.reading) {
      // One click to disk: the verified file goes to the browser's downloads.
      await this.save();
    } else {
      this.say(`${this.live === 'abandoned' ? 'Its writer stopped: this is what was written. ' : ''}Save puts a copy in your downloads.`);
    }
    this.setButtons();
    this.list.o.onStorageChange();
    // Small files are hashed whole as well, as a second, independent check.
    if (blob.size <= 64 << 20) {
      const got = toHex(await sha256(await blob.arrayBuffer()));
      this.q('.sha-check').textContent = got === sha ? '✓ recomputed over the whole file' : `✗ the whole file hashes to ${got}`;
      this.el.dataset.wholeSha256 = got;
    }
  }

  /** What was received no longer counts (the file changed or is gone): the numbers say where it stopped, the bar and map start from zero. */
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
    const again = () => this.list.start(name, { handle: this.picked?.handle, read: this.reading });
    if (e.code === 'closed') return;
    if (e.code === 'changed') { // changed again and again, faster than a chunk arrives
      this.alert(`“${name}” kept changing on the server while it was downloading.`, { label: 'Try again', run: again });
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
    } else if (e.code === 'http' && /expired/i.test(e.message)) {
      this.outcome = 'gone';
      this.el.dataset.state = 'expired';
      this.say('The link expired.');
      this.alert(`The link to “${name}” expired: ask for a new one.`, null);
      this.setButtons();
    } else if (e.code === 'server_down') {
      this.alert(`The server cannot be reached: ${e.message}`, { label: 'Try again', run: () => this.d?.resume() });
    } else if (e.code === 'storage') {
      this.alert(`The browser's storage failed: ${e.message}`, { label: 'Start over', run: again });
    } else if (e.code === 'unsupported') {
      this.alert(`This browser cannot download here: ${e.message}`, { label: 'Try again', run: again });
    } else if (e.code === 'internal') {
      this.alert(`The download failed because of a bug in chunkcast: ${e.message}`, { label: 'Start over', run: again });
    } else {
      this.alert(`The download failed: ${e.message}`, { label: 'Start over', run: again });
    }
  }

  /**
   * A failure, in the row (role=alert: read out once), with one action or none.
   * @param {string} text @param {{label: string, run: () => void}|null} action
   */
  alert(text, action) {
    const box = this.q('.dl-alert');
    box.hidden = false;
    this.q('.dl-alert-text').textContent = text;
    const b = /** @type {HTMLButtonElement} */ (this.q('.dl-alert-action'));
    b.hidden = !action;
    if (action) {
      b.textContent = action.label;
      b.onclick = () => { box.hidden = true; action.run(); };
    }
  }

  async cancel() {
    const queued = this.state === 'queued';
    if (!this.d && !queued) return;
    await this.d?.close();
    remember(this.name, null);
    if (!queued) await this.dropStored();
    this.outcome = 'cancelled';
    this.el.dataset.state = 'cancelled';
    this.text.stop();
    this.say('Cancelled; the partial download was removed.');
    this.list.o.announce(`${this.name}: cancelled`);
    this.setButtons();
    this.list.next();
    this.list.o.onStorageChange();
  }

  /** Removes the partial download: from the browser's storage, or the picked file. */
  async dropStored() {
    if (this.picked) await this.picked.drop();
    else await clearStored(this.name).catch(() => {});
  }

  /**
   * Hands the verified file to the browser's download, then releases the
   * stored copy once the browser has had time to read it: a second copy in
   * the browser's storage serves nothing after the save.
   */
  async save() {
    if (!this.d || this.released) return;
    await this.d.save();
    this.saved = true;
    this.setButtons();
    if (!this.d.store?.persistent) { // in memory: kept with the row, freed with it
      this.say('Saved to your downloads');
      return;
    }
    this.say(`Saved to your downloads · the copy kept here is released in ${RELEASE_AFTER_SAVE_MS / 1000} s`);
    rememberSaved(this.name); // a reload before then releases it (offers.js)
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(() => this.release(), RELEASE_AFTER_SAVE_MS);
  }

  async release() {
    remember(this.name, null);
    await this.d?.close();
    await clearStored(this.name).catch(() => {});
    this.released = true;
    this.say('Saved to your downloads · the copy kept here was released');
    this.setButtons();
    this.list.o.onStorageChange();
  }

  /**
   * Takes the row off the list; with `dropStored`, the stored chunks too.
   * @param {boolean} dropStored
   */
  async remove(dropStored) {
    clearTimeout(this.releaseTimer);
    this.text.stop();
    this.el.remove();
    if (this.list.rows.get(this.name) === this) this.list.rows.delete(this.name);
    const wasQueued = this.state === 'queued';
    await this.d?.close();
    if (dropStored && !wasQueued) {
      remember(this.name, null);
      if (this.state !== 'done' || !this.picked) await this.dropStored();
      this.list.o.onStorageChange();
    }
    if (!this.list.rows.size) this.list.o.section.hidden = true;
    this.list.next();
  }
}
