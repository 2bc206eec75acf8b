// @ts-check
/**
 * @file After a reload: every unfinished download found in this browser's
 * storage, each offered for resuming (or discarding), with "Resume all";
 * and how much storage the page holds against the browser's quota.
 */

import { clearStored, formatBytes } from '../chunkcast.js';
import { listStored, storageEstimate } from '../lib/store/list.js';
import { knownDownloads } from './downloads.js';
import { plural } from './format.js';

/**
 * Fills `#resume-offer` with one line per stored download.
 * @param {{section: HTMLElement, list: HTMLElement, all: HTMLButtonElement, none: HTMLButtonElement,
 *   resume: (name: string) => void, told: (text: string) => void, changed: () => void}} o
 */
export async function offerResume(o) {
  const stored = await listStored();
  const known = knownDownloads();
  o.list.replaceChildren();
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
    const complete = chunkSize > 0 && s.chunks >= Math.ceil(s.size / chunkSize);
    li.dataset.complete = String(complete);
    text.textContent = complete
      ? `“${s.name}”: complete (${formatBytes(s.size)}), not saved yet: resuming checks it and offers Save. `
      : `“${s.name}”: ${plural(s.chunks, 'chunk')} on disk`
        + (pct ? ` (about ${pct.toFixed(0)}% of ${formatBytes(s.size)})` : s.size ? ` of ${formatBytes(s.size)}` : '') + '. ';
    const yes = document.createElement('button');
    yes.type = 'button';
    yes.textContent = 'Resume';
    yes.dataset.resume = s.name;
    yes.setAttribute('aria-label', `Resume ${s.name}`);
    yes.onclick = () => { li.remove(); left.delete(s.name); hideIfDone(); o.resume(s.name); };
    const no = document.createElement('button');
    no.type = 'button';
    no.className = 'secondary';
    no.textContent = 'Discard';
    no.dataset.discard = s.name;
    no.setAttribute('aria-label', `Discard ${s.name}`);
    no.onclick = async () => {
      li.remove(); left.delete(s.name); hideIfDone();
      await clearStored(s.name).catch(() => {});
      o.told(`Discarded the unfinished download of ${s.name}.`);
      o.changed();
    };
    li.append(text, yes, no);
    o.list.append(li);
    total += s.chunks;
  }
  o.section.dataset.chunks = String(total);
  o.section.dataset.count = String(stored.length);
  o.section.hidden = !stored.length;
  o.all.textContent = stored.length > 1 ? `Resume all ${stored.length}` : 'Resume download';
  o.all.onclick = () => {
    o.section.hidden = true;
    for (const name of left) o.resume(name);
    left.clear();
  };
  o.none.textContent = stored.length > 1 ? 'Discard all' : 'Discard it';
  o.none.onclick = async () => {
    o.section.hidden = true;
    for (const name of left) await clearStored(name).catch(() => {});
    o.told(`Discarded ${plural(left.size, 'unfinished download')}.`);
    left.clear();
    o.changed();
  };
  if (stored.length) o.all.focus();
}

/** Writes how much the page holds in storage and the quota. @param {HTMLElement} el */
export async function showStorage(el) {
  const { usage, quota } = await storageEstimate();
  if (usage === null) { el.hidden = true; return; }
  el.hidden = false;
  el.dataset.usage = String(usage);
  el.dataset.quota = String(quota ?? '');
  el.textContent = `This page keeps ${formatBytes(usage)} in this browser's storage`
    + (quota ? ` (it may use up to ${formatBytes(quota)}).` : '.')
    + ' Copies are released once saved; an unfinished download stays until it is resumed or discarded.';
}
