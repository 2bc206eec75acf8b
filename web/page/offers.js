// @ts-check
/**
 * @file After a reload: every download found in this browser's
 * storage, each offered for resuming (or discarding), with "Resume all";
 * and how much storage the page holds against the browser's quota.
 */

import { allowWriting, clearStored, findHandle, forgetHandle, formatBytes, listHandles, listStored, storageEstimate } from '../chunkcast.js';
import { knownDownloads, remember } from './downloads.js';
import { plural } from './format.js';

/**
 * Fills `#resume-offer` with one line per stored download.
 * @param {{section: HTMLElement, list: HTMLElement, all: HTMLButtonElement, none: HTMLButtonElement,
 *   resume: (name: string, handle?: FileSystemFileHandle) => void, told: (text: string) => void, changed: () => void,
 *   skip?: (name: string) => boolean}} o  `skip`: already resumed (a live text the page reopened)
 */
export async function offerResume(o) {
  const known = knownDownloads();
  /** @type {{name: string, chunks: number, size: number, into?: string}[]} */
  const stored = [];
  let released = 0;
  for (const s of await listStored()) {
    if (o.skip?.(s.name)) continue;
    if (known[s.name]?.saved) {
      // Saved to the browser's downloads before the reload cut its release
      // short (row.js): released now, never offered for saving again.
      await clearStored(s.name).catch(() => {});
      remember(s.name, null);
      released++;
      continue;
    }
    stored.push(s);
  }
  if (released) o.changed(); // the storage figure drops by what was released
  // Downloads into a picked file: the file holds the chunks, IndexedDB the handle.
  for (const h of await listHandles()) {
    if (!stored.some((s) => s.name === h.name)) stored.push({ name: h.name, chunks: h.written.length, size: h.size, into: h.handle.name });
  }
  o.list.replaceChildren();
  /**
   * Resumes one: into its picked file once writing is allowed again (the
   * browser asks; the click on Resume lets it), else from storage.
   * @param {string} name
   */
  const resumeOne = async (name) => {
    const h = await findHandle(name);
    if (!h) return o.resume(name);
    if (await allowWriting(h.handle).catch(() => false)) return o.resume(name, h.handle);
    o.told(`Writing into “${h.handle.name}” was not allowed, so ${name} was not resumed.`);
  };
  /** @param {string} name */
  const discard = async (name) => {
    await clearStored(name).catch(() => {});
    await forgetHandle(name);
  };
  let total = 0;
  const left = new Set(stored.map((s) => s.name));
  const hideIfDone = () => { if (!left.size) o.section.hidden = true; };
  for (const s of stored) {
    const chunkSize = known[s.name]?.chunkSize || 0;
    const pct = s.size && chunkSize ? Math.min(100, (100 * s.chunks * chunkSize) / s.size) : 0;
    const li = document.createElement('li');
    li.dataset.name = s.name;
    li.dataset.chunks = String(s.chunks);
    const text = document.createElement('span');
    // A live text's stored size is what was written when it was opened: never "finished" by it.
    const complete = !s.into && !known[s.name]?.live && chunkSize > 0 && s.chunks >= Math.ceil(s.size / chunkSize);
    li.dataset.complete = String(complete);
    text.textContent = complete
      ? `“${s.name}”: finished (${formatBytes(s.size)}), not saved yet: Save checks it and hands it to your downloads. `
      : `“${s.name}”: ${plural(s.chunks, 'chunk')} ${s.into ? `written into “${s.into}”` : 'on disk'}`
        + (pct ? ` (about ${pct.toFixed(0)}% of ${formatBytes(s.size)})` : s.size ? ` of ${formatBytes(s.size)}` : '') + '. ';
    const yes = document.createElement('button');
    yes.type = 'button';
    yes.textContent = complete ? 'Save' : 'Resume';
    yes.dataset.resume = s.name;
    yes.setAttribute('aria-label', `${complete ? 'Save' : 'Resume'} ${s.name}`);
    yes.onclick = () => { li.remove(); left.delete(s.name); hideIfDone(); resumeOne(s.name); };
    const no = document.createElement('button');
    no.type = 'button';
    no.className = 'secondary';
    no.textContent = 'Discard';
    no.dataset.discard = s.name;
    no.setAttribute('aria-label', `Discard ${s.name}`);
    no.onclick = async () => {
      li.remove(); left.delete(s.name); hideIfDone();
      await discard(s.name);
      o.told(`Discarded the unfinished download of ${s.name}.`);
      o.changed();
    };
    const actions = document.createElement('span'); // the two wrap to a new line together
    actions.className = 'offer-actions';
    actions.append(yes, no);
    li.append(text, actions);
    o.list.append(li);
    total += s.chunks;
  }
  o.section.dataset.chunks = String(total);
  o.section.dataset.count = String(stored.length);
  o.section.hidden = !stored.length;
  // One download: its own Resume and Discard say it all.
  if (o.all.parentElement) o.all.parentElement.hidden = stored.length < 2;
  const allDone = stored.every((s) => s.into === undefined && !known[s.name]?.live && (known[s.name]?.chunkSize || 0) > 0 && s.chunks >= Math.ceil(s.size / known[s.name].chunkSize));
  o.all.textContent = stored.length > 1 ? `Resume all ${stored.length}` : allDone ? 'Save it' : 'Resume download';
  o.all.onclick = () => {
    o.section.hidden = true;
    for (const name of left) resumeOne(name);
    left.clear();
  };
  o.none.textContent = stored.length > 1 ? 'Discard all' : 'Discard it';
  o.none.onclick = async () => {
    o.section.hidden = true;
    for (const name of left) await discard(name);
    o.told(`Discarded ${plural(left.size, 'unfinished download')}.`);
    left.clear();
    o.changed();
  };
  if (stored.length > 1) o.all.focus();
  else if (stored.length) /** @type {HTMLElement|null} */ (o.list.querySelector('button'))?.focus();
}

/** Writes how much the page holds in storage and the quota. @param {HTMLElement} el */
export async function showStorage(el) {
  const { usage, quota } = await storageEstimate();
  if (usage === null) { el.hidden = true; return; }
  el.hidden = false;
  el.dataset.usage = String(usage);
  el.dataset.quota = String(quota ?? '');
  // The browser's own figure: a download sets its file's whole size aside
  // when it starts (one quota request), so it counts more than has arrived.
  el.textContent = `This page uses ${formatBytes(usage)} of this browser's storage`
    + (quota ? ` (it may use up to ${formatBytes(quota)}).` : '.')
    + ' A download sets aside its whole size when it starts; copies are released once saved, and an unfinished download keeps its space until it is resumed or discarded.';
}
