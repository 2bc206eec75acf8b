//! JSON string escaping of chunk text: the bytes that need an escape
//! (control bytes, `"` and `\`) are found a block at a time (16 bytes with
//! SSE2 on x86_64, else 8 in a word) and the runs between them are copied
//! whole.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` needs an escape. Exact for the word as a whole
/// (the classic "has a zero byte" and "has a byte below n" tests), which is
/// all the scan needs: a word that has one is looked at byte by byte.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space || has_zero(w ^ (ONES * b'"' as u64)) || has_zero(w ^ (ONES * b'\\' as u64))
}

/// Which bytes need an escape.
const ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `text` escaped as the inside of a JSON string, exactly as
/// `serde_json` escapes it (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`,
/// `\u00XX` for other control bytes; everything else verbatim).
pub fn json_text(out: &mut Vec<u8>, text: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("ssse3") {
            // SAFETY: SSSE3 is present (checked just above; std caches it).
            unsafe { ssse3::json_text(out, text) }
        } else {
            // SAFETY: SSE2 is part of x86_64.
            unsafe { sse2::json_text(out, text) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    words(out, text)
}

/// The portable scan: a word at a time, runs copied whole. (On x86_64 it
/// does the last few bytes of a text.)
fn words(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + text.len() / 16 + 8);
    let mut start = 0; // first byte not yet copied
    let mut i = 0;
    while i < text.len() {
        if let Some(word) = text.get(i..i + 8) {
            let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if !word_needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(text.len());
        for (j, &b) in text[i..end].iter().enumerate() {
            if ESCAPE[b as usize] {
                out.extend_from_slice(&text[start..i + j]);
                escape_byte(out, b);
                start = i + j + 1;
            }
        }
        i = end;
    }
    out.extend_from_slice(&text[start..]);
}

/// Sixteen bytes at a time with SSE2, for text where escapes are common
/// (source code, logs, JSON: a newline every ~40 bytes, quotes, tabs),
/// which made the word scan above go byte by byte through most words and
/// cost twice binary's CPU per byte on `/events`. One compare per block
/// finds every byte that needs an escape; the runs between them are copied
/// with one 16-byte store each (advancing the output by the run's length
/// only, the rest overwritten next), and each escape is one 8-byte store.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Most output one 16-byte block can need: 16 `\u00XX` escapes, plus
    /// the slack of the last 16- or 8-byte store.
    pub(super) const BLOCK_OUT: usize = 16 * 6 + 16;

    /// The escape of every byte that needs one, as 8 bytes to store (and,
    /// in the top byte, how many of them count): one load per escape. A
    /// `match` compiled to a jump table whose target changed with every
    /// escape and was mispredicted most of the time (perf: most of the
    /// function's cycles on escape-heavy text).
    const ESCAPES: [u64; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut table = [0u64; 256];
        let mut b = 0;
        while b < 256 {
            let e: [u8; 8] = match b as u8 {
                b'"' => [b'\\', b'"', 0, 0, 0, 0, 0, 2],
                b'\\' => [b'\\', b'\\', 0, 0, 0, 0, 0, 2],
                b'\n' => [b'\\', b'n', 0, 0, 0, 0, 0, 2],
                b'\r' => [b'\\', b'r', 0, 0, 0, 0, 0, 2],
                b'\t' => [b'\\', b't', 0, 0, 0, 0, 0, 2],
                0x08 => [b'\\', b'b', 0, 0, 0, 0, 0, 2],
                0x0C => [b'\\', b'f', 0, 0, 0, 0, 0, 2],
                c if c < 0x20 => [b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize], 0, 6],
                _ => [0; 8],
            };
            table[b] = u64::from_le_bytes(e);
            b += 1;
        }
        table
    };

    /// The bytes of `v` that need an escape (a bit each), and which of them
    /// are control bytes (a lane each).
    #[inline(always)]
    pub(super) unsafe fn special(v: __m128i) -> (u32, __m128i) {
        let below = _mm_set1_epi8(0x1F);
        // Unsigned `v <= 0x1F` is `max(v, 0x1F) == 0x1F`.
        let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(v, below), below);
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        (_mm_movemask_epi8(_mm_or_si128(ctrl, _mm_or_si128(quote, backslash))) as u32, ctrl)
    }

    /// Makes room for one more block's output at `len`, with `left` input
    /// bytes to go; the output's (possibly moved) start.
    #[inline(always)]
    pub(super) unsafe fn room(out: &mut Vec<u8>, len: usize, left: usize) -> *mut u8 {
        if out.capacity() - len < BLOCK_OUT {
            out.set_len(len);
            out.reserve(left + left / 8 + BLOCK_OUT);
        }
        out.as_mut_ptr()
    }

    /// Escapes one 16-byte block at `src` (with `left` bytes from there to
    /// the end of the text) whose bytes needing an escape are `mask`, into
    /// `dst` from `len`; the new length.
    ///
    /// # Safety
    /// 16 bytes at `src` are readable; `dst` has room for [`BLOCK_OUT`]
    /// bytes from `len`.
    #[inline(always)]
    pub(super) unsafe fn block(src: *const u8, left: usize, dst: *mut u8, mut len: usize, mut mask: u32) -> usize {
        let mut from = 0;
        while mask != 0 {
            let j = mask.trailing_zeros() as usize;
            // The run before the escape: one 16-byte store counted for
            // its length where 16 bytes can be read, else a copy.
            if from + 16 <= left {
                let run = _mm_loadu_si128(src.add(from) as *const __m128i);
                _mm_storeu_si128(dst.add(len) as *mut __m128i, run);
            } else {
                std::ptr::copy_nonoverlapping(src.add(from), dst.add(len), j - from);
            }
            len += j - from;
            let e = ESCAPES[*src.add(j) as usize];
            std::ptr::write_unaligned(dst.add(len) as *mut u64, e.to_le());
            len += (e >> 56) as usize;
            from = j + 1;
            mask &= mask - 1;
        }
        // The rest of the block.
        std::ptr::copy_nonoverlapping(src.add(from), dst.add(len), 16 - from);
        len + 16 - from
    }

    /// # Safety
    /// Only needs SSE2, which every x86_64 CPU has. Every load stays inside
    /// `text` (16-byte loads only where 16 bytes remain), every store within
    /// the capacity reserved before the block that makes it.
    pub unsafe fn json_text(out: &mut Vec<u8>, text: &[u8]) {
        let n = text.len();
        let src = text.as_ptr();
        out.reserve(n + n / 8 + BLOCK_OUT);
        let mut len = out.len();
        let mut i = 0;
        while i + 16 <= n {
            let dst = room(out, len, n - i);
            let v = _mm_loadu_si128(src.add(i) as *const __m128i);
            let (mask, _) = special(v);
            if mask == 0 {
                _mm_storeu_si128(dst.add(len) as *mut __m128i, v);
                len += 16;
                i += 16;
                continue;
            }
            len = block(src.add(i), n - i, dst, len, mask);
            i += 16;
        }
        out.set_len(len);
        // The last few bytes, one at a time.
        super::words(out, &text[i..]);
    }
}

fn escape_byte(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0C => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
    }
}

/// Sixteen bytes at a time with SSSE3, escapes and all: with the short
/// escapes (`\"`, `\\`, `\n`, `\t`, `\r`, `\b`, `\f`, two bytes each)
/// each 8-byte half of a block becomes one shuffle: a table indexed by the
/// half's escape mask spreads its bytes over 16, a backslash before each
/// escaped one (whose byte was first replaced by its letter). No step
/// depends on where the previous escape fell, so text with an escape every
/// few bytes costs about what plain text does. A block with another control
/// byte (`\u00XX`, rare) takes the SSE2 path.
#[cfg(target_arch = "x86_64")]
mod ssse3 {
    use std::arch::x86_64::*;

    use super::sse2::{block, room, special, BLOCK_OUT};

    /// For each mask of escaped bytes among 8: the `pshufb` control taking
    /// input byte `k` (index `k`), a backslash (index 8) before each escaped
    /// one, and zeros (0x80) after the `8 + popcount(mask)` bytes.
    static EXPAND: [[u8; 16]; 256] = {
        let mut table = [[0x80u8; 16]; 256];
        let mut m = 0;
        while m < 256 {
            let (mut k, mut p) = (0, 0);
            while k < 8 {
                if m >> k & 1 == 1 {
                    table[m][p] = 8;
                    p += 1;
                }
                table[m][p] = k as u8;
                p += 1;
                k += 1;
            }
            m += 1;
        }
        table
    };

    /// The letter of each short control escape, by low nibble (0: none).
    const LETTERS: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, b'b', b't', b'n', 0, b'f', b'r', 0, 0];

    /// # Safety
    /// Needs SSSE3 (the caller checks). Loads stay inside `text`; every
    /// store stays within the capacity reserved before its block.
    #[target_feature(enable = "ssse3")]
    pub unsafe fn json_text(out: &mut Vec<u8>, text: &[u8]) {
        let n = text.len();
        let src = text.as_ptr();
        out.reserve(n + n / 8 + BLOCK_OUT);
        let mut len = out.len();
        let mut i = 0;
        let nibble = _mm_set1_epi8(0x0F);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let letters = _mm_loadu_si128(LETTERS.as_ptr() as *const __m128i);
        let zero = _mm_setzero_si128();
        while i + 16 <= n {
            let dst = room(out, len, n - i);
            let v = _mm_loadu_si128(src.add(i) as *const __m128i);
            let (mask, ctrl) = special(v);
            if mask == 0 {
                _mm_storeu_si128(dst.add(len) as *mut __m128i, v);
                len += 16;
                i += 16;
                continue;
            }
            // Control bytes below 0x10 with a letter are short escapes;
            // any other control byte is a `\u00XX`.
            let low = _mm_cmpeq_epi8(_mm_max_epu8(v, nibble), nibble);
            let letter = _mm_shuffle_epi8(letters, v);
            let short = _mm_and_si128(low, _mm_xor_si128(_mm_cmpeq_epi8(letter, zero), _mm_set1_epi8(-1)));
            if _mm_movemask_epi8(_mm_andnot_si128(short, ctrl)) != 0 {
                len = block(src.add(i), n - i, dst, len, mask);
                i += 16;
                continue;
            }
            // Control bytes become their letters; `"` and `\` stay.
            let w = _mm_or_si128(_mm_and_si128(ctrl, letter), _mm_andnot_si128(ctrl, v));
            for half in 0..2 {
                let m = (mask >> (8 * half)) & 0xFF;
                let bytes = if half == 0 { w } else { _mm_srli_si128::<8>(w) };
                let with = _mm_unpacklo_epi64(bytes, backslash);
                let control = _mm_loadu_si128(EXPAND[m as usize].as_ptr() as *const __m128i);
                _mm_storeu_si128(dst.add(len) as *mut __m128i, _mm_shuffle_epi8(with, control));
                len += 8 + m.count_ones() as usize;
            }
            i += 16;
        }
        out.set_len(len);
        super::words(out, &text[i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Escaper = fn(&mut Vec<u8>, &[u8]);

    /// Every implementation this machine can run, each tested alike.
    fn all() -> Vec<(&'static str, Escaper)> {
        let mut v: Vec<(&'static str, Escaper)> = vec![("words", words), ("dispatch", json_text)];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: SSE2 is part of x86_64.
            v.push(("sse2", |o, t| unsafe { sse2::json_text(o, t) }));
            if std::arch::is_x86_feature_detected!("ssse3") {
                // SAFETY: checked just above.
                v.push(("ssse3", |o, t| unsafe { ssse3::json_text(o, t) }));
            }
        }
        v
    }

    fn serde(text: &str) -> String {
        let s = serde_json::to_string(text).unwrap();
        s[1..s.len() - 1].to_owned()
    }

    #[test]
    fn every_byte_in_every_position_of_a_word() {
        for b in 0u8..0x80 {
            for at in 0..37 {
                let mut text = vec![b'a'; 37];
                text[at] = b;
                let text = String::from_utf8(text).unwrap();
                for (name, f) in all() {
                    let mut ours = Vec::new();
                    f(&mut ours, text.as_bytes());
                    assert_eq!(String::from_utf8(ours).unwrap(), serde(&text), "{name}: byte {b:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn escapes_in_every_pattern_of_a_block() {
        // Every pattern of escapes over the first 16 characters (with
        // two-byte ones between, so blocks and runs fall everywhere), and
        // the text ending right after, each against serde_json.
        for pattern in 0u32..1 << 16 {
            let text: String = (0..21)
                .map(|i| if i < 16 && pattern >> i & 1 == 1 { ['"', '\\', '\n', '\u{1}'][i % 4] } else { 'é' })
                .collect();
            for (name, f) in all() {
                let mut ours = Vec::new();
                f(&mut ours, text.as_bytes());
                assert_eq!(String::from_utf8(ours).unwrap(), serde(&text), "{name}: pattern {pattern:#06x}");
            }
        }
    }

    proptest! {
        #[test]
        fn matches_serde_json(text in "(\\PC|[\\x00-\\x1f\"\\\\])*") {
            for (_, f) in all() {
                let mut ours = Vec::new();
                f(&mut ours, text.as_bytes());
                prop_assert_eq!(String::from_utf8(ours).unwrap(), serde(&text));
            }
        }
    }
}
