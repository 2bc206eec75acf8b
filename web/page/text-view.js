// @ts-check
/**
 * @file The "text as it arrives" box: verified text is typed out character by
 * character at the download's pace, starting at the top; the box follows the
 * end only while the person has not scrolled up.
 *
 * Why type instead of appending what arrives: the server sends whole chunks
 * (4 KiB to 256 KiB), so appending them makes the text jump a chunk at a time
 * and sit still in between. Typing at the chosen pace (bytes per second,
 * about characters per second for text) turns the same bytes into a steady
 * flow. Without a pace, text is shown as soon as it is verified.
 */

export class TextView {
  /** @param {HTMLElement} box  the <pre> that shows the text */
  constructor(box) {
    this.box = box;
    this.node = document.createTextNode('');
    box.replaceChildren(this.node);
    /** @type {string[]} verified text not shown yet */
    this.pending = [];
    this.pendingChars = 0;
    /** @type {number[]} characters per byte of each pending piece */
    this.ratios = [];
    /** characters of pending[0] already typed */
    this.at = 0;
    this.rate = 0;
    /** bytes the pace allows but not yet typed (fractions carry over frames) */
    this.budget = 0;
    /** a chunk's size, to know when the typing has fallen behind */
    this.chunk = 4096;
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

  /** @param {number} rate  bytes per second, 0 for as fast as it arrives @param {number} [chunk] */
  setRate(rate, chunk) {
    if (chunk) this.chunk = chunk;
    if (!this.rate && rate && !this.node.length) this.follow = true;
    this.rate = rate > 0 ? rate : 0;
    this._schedule();
  }

  /**
   * Holds the typing (the download is paused: the text pauses with it) or
   * lets it go on.
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
    // The pace is in bytes; a character is 1 to 4 of them (UTF-8).
    this.ratios.push(text.length / new TextEncoder().encode(text).length);
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
    if (!this.rate) {
      take = this.pendingChars;
    } else {
      // At the pace; faster only when more than two chunks wait (the server
      // ran ahead, or the pace was lowered mid-way), so the text never lags
      // the download by much.
      const ratio = this.ratios[0] ?? 1;
      const behind = this.pendingChars / ratio / (2 * this.chunk);
      this.budget += this.rate * dt * Math.max(1, behind);
      take = Math.floor(this.budget * ratio);
      this.budget -= take / ratio;
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
        this.ratios.shift();
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

  /** Stops typing (the download was dropped). */
  stop() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.pending = [];
    this.ratios = [];
    this.pendingChars = 0;
    this.at = 0;
  }
}
