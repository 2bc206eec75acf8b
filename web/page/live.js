// @ts-check
/**
 * @file A live text's marks in its download row (row.js): the badge beside
 * its numbers and in its reader ("Live", "Interrupted", "Finished",
 * "Abandoned"), `data-live` on the row for the styles and the tests, the
 * sentence its state line says while it follows the writer, and its
 * numbers (what was written so far: there is no size or time left to show).
 */

import { formatBytes } from '../chunkcast.js';
import { liveBadge, liveText, plural } from './format.js';

/** @param {string|null} live */
export const isGrowing = (live) => live === 'live' || live === 'interrupted';

/**
 * Marks row `el` as a live text in state `live` (every badge in it).
 * @param {HTMLElement} el @param {string} live
 */
export function markLive(el, live) {
  el.dataset.live = live;
  for (const b of /** @type {NodeListOf<HTMLElement>} */ (el.querySelectorAll('.live-badge'))) {
    b.hidden = false;
    b.dataset.live = live;
    b.textContent = liveBadge(live);
    b.title = live === 'interrupted' ? 'Interrupted — waiting for the writer' : live === 'live' ? 'Live: still being written' : '';
  }
}

/**
 * The state line of a live text still being written, or null for the
 * download's own.
 * @param {string} state @param {string|null} live
 */
export function liveLine(state, live) {
  return live ? liveText(state, live) : null;
}

/**
 * A live text's numbers while it is written: what arrived so far.
 * @param {import('../chunkcast.js').Progress} p @param {string|null} speed
 */
export function liveStats(p, speed) {
  const parts = [`${formatBytes(p.bytesVerified)} so far`, plural(p.chunksVerified, 'chunk')];
  if (speed) parts.push(speed);
  if (p.reconnects) parts.push(plural(p.reconnects, 'reconnect'));
  return parts.join(' · ');
}
