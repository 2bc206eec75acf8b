// @ts-check
/**
 * @file The reader: verified text typed out character by character at the
 * reader's own pace (characters per second, like an answer being written),
 * starting at the top; Pause and Continue hold and resume the typing, however
 * fast the bytes come. The box follows the end only while the person has not
 * scrolled up. Pace 0 ("instant") shows text as soon as it is verified.
 */

/** The reader's presets, characters per second (0: instant). */
export const PACES = [20, 60, 200, 1000, 0];

export class TextView {
  /** @param {HTMLElement} box  the <pre> that shows the text */
  constructor(box) {
    this.box = box;
    this.node = document.createTextNode('');
    box.replaceChildren(this.node);
    /** @type {string[]} verified text not shown yet */
    this.pending = [];
    this.pendingChars = 0;
    /** characters of pending[0] already typed */
    this.at = 0;
    /** characters per second, 0 for instant */
    this.pace = 0;
    /** characters the pace allows but not yet typed (fractions carry over frames) */
    this.budget = 0;
    this.last = 0;
    this.frame = 0;
    this.held = false;
    /**
     * Whether the box keeps the end in view. Typing starts at the top and
     * follows the cursor; without a pace a whole block appears at once and
     * is read from its top. Scrolling up stops the following, scrolling
     * back to the end resumes it.
     */
    this.follow = false;
    box.addEventListener('scroll', () => {
      this.follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    });
  }

  /**
   * @param {number} pace  characters per second, 0 for instant
   * @param {boolean} [keepPlace]  instant from typing shows the rest below
   *   where the person is reading, which stays in view (scrolling to the end
   *   follows again); false for a text still being written, whose reader
   *   wants its newest words
   */
  setPace(pace, keepPlace = true) {
    if (!this.pace && pace && !this.node.length) this.follow = true;
    if (this.pace && !pace && keepPlace) this.follow = false;
    this.pace = pace > 0 ? pace : 0;
    this.box.dataset.pace = String(this.pace);
    this._schedule();
  }

  /**
   * Holds the typing (the reader's Pause) or lets it go on (Continue).
   * @param {boolean} on
   */
  hold(on) {
    this.held = on;
    if (on) { cancelAnimationFrame(this.frame); this.frame = 0; } else this._schedule();
  }

  /** Verified text, in order. @param {string} text */
  push(text) {
    if (!text) return;
    this.pending.push(text);
    this.pendingChars += text.length;
    this._schedule();
  }

  /** How much of the text is on screen so far, in characters. */
  get shown() {
    return this.node.length;
  }

  /** Whether everything pushed is on screen. */
  get caughtUp() {
    return this.pendingChars === 0;
  }

  _schedule() {
    if (!this.frame && this.pendingChars && !this.held) {
      this.last = performance.now();
      this.frame = requestAnimationFrame((t) => this._tick(t));
    }
  }

  /** @param {number} now */
  _tick(now) {
    this.frame = 0;
    const dt = Math.min(1, Math.max(0, (now - this.last) / 1000));
    this.last = now;
    let take;
    if (!this.pace) {
      take = this.pendingChars;
    } else {
      this.budget += this.pace * dt;
      take = Math.floor(this.budget);
      this.budget -= take;
    }
    if (take > 0) this._type(take);
    if (this.pendingChars) {
      this.frame = requestAnimationFrame((t) => this._tick(t));
    } else {
      this.budget = 0;
      this.box.dataset.caughtUp = 'true';
    }
  }

  /** Moves `n` characters from pending to the screen. @param {number} n */
  _type(n) {
    let out = '';
    // `at` is how far into the first pending piece the typing is: a piece
    // (a whole chunk's text) is read in place, never copied per frame.
    while (n > 0 && this.pending.length) {
      const head = this.pending[0];
      const left = head.length - this.at;
      if (left <= n) {
        out += head.slice(this.at);
        n -= left;
        this.pending.shift();
        this.at = 0;
      } else {
        // Never split a surrogate pair: it would show as two broken glyphs.
        let cut = this.at + n;
        const code = head.charCodeAt(cut - 1);
        if (code >= 0xd800 && code <= 0xdbff) cut++;
        out += head.slice(this.at, cut);
        this.at = cut;
        n = 0;
      }
    }
    this.pendingChars -= out.length;
    this.box.dataset.caughtUp = String(this.pendingChars === 0);
    this.node.appendData(out);
    if (this.follow) this.box.scrollTop = this.box.scrollHeight;
  }

  /** Empties the view (the text is told again from its start: the file changed). */
  clear() {
    this.stop();
    this.node.data = '';
    this.box.dataset.caughtUp = 'true';
  }

  /** Stops typing (the download was dropped). */
  stop() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.pending = [];
    this.pendingChars = 0;
    this.at = 0;
  }
}
