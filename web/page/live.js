// @ts-check
/**
 * @file A live text's marks in its download row (row.js): the badge beside
 * its numbers ("Live", "Interrupted — waiting for the writer", "Finished",
 * "Abandoned"), `data-live` on the row (the styles put the writer's cursor
 * at the end of the text in the reader while it is written), what its state
 * line says, and its numbers (what was written so far: there is no size or
 * time left to show).
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
    b.title = live === 'live' ? 'Still being written: shown as it is written' : live === 'abandoned' ? 'Its writer stopped: the text is what was written' : '';
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
  if (speed && p.live === 'live') parts.push(speed);
  if (p.reconnects) parts.push(plural(p.reconnects, 'reconnect'));
  return parts.join(' · ');
}
