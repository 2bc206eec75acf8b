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
        // SSE2 is part of x86_64: no runtime check needed.
        // SAFETY: the function's contract is upheld by `sse2::json_text`.
        unsafe { sse2::json_text(out, text) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    words(out, text)
}

/// The portable scan: a word at a time, runs copied whole.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
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
    const BLOCK_OUT: usize = 16 * 6 + 16;

    /// The escape of a byte that needs one, as 8 bytes to store and how
    /// many of them count.
    #[inline]
    fn escape(b: u8) -> (u64, usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let two = |c: u8| (u64::from(b'\\') | u64::from(c) << 8, 2);
        match b {
            b'"' => two(b'"'),
            b'\\' => two(b'\\'),
            b'\n' => two(b'n'),
            b'\r' => two(b'r'),
            b'\t' => two(b't'),
            0x08 => two(b'b'),
            0x0C => two(b'f'),
            _ => {
                (u64::from_le_bytes([b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize], 0, 0]), 6)
            }
        }
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
        let below = _mm_set1_epi8(0x1F);
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        while i + 16 <= n {
            if out.capacity() - len < BLOCK_OUT {
                out.set_len(len);
                out.reserve(n - i + (n - i) / 8 + BLOCK_OUT);
            }
            let dst = out.as_mut_ptr();
            let v = _mm_loadu_si128(src.add(i) as *const __m128i);
            // Unsigned `v <= 0x1F` is `max(v, 0x1F) == 0x1F`.
            let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(v, below), below);
            let special = _mm_or_si128(ctrl, _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
            let mut mask = _mm_movemask_epi8(special) as u32;
            if mask == 0 {
                _mm_storeu_si128(dst.add(len) as *mut __m128i, v);
                len += 16;
                i += 16;
                continue;
            }
            let mut from = 0;
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                // The run before the escape: one 16-byte store counted for
                // its length where 16 bytes can be read, else a copy.
                if i + from + 16 <= n {
                    let run = _mm_loadu_si128(src.add(i + from) as *const __m128i);
                    _mm_storeu_si128(dst.add(len) as *mut __m128i, run);
                } else {
                    std::ptr::copy_nonoverlapping(src.add(i + from), dst.add(len), j - from);
                }
                len += j - from;
                let (bytes, k) = escape(*src.add(i + j));
                std::ptr::write_unaligned(dst.add(len) as *mut u64, bytes.to_le());
                len += k;
                from = j + 1;
                mask &= mask - 1;
            }
            // The rest of the block.
            std::ptr::copy_nonoverlapping(src.add(i + from), dst.add(len), 16 - from);
            len += 16 - from;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
                let mut ours = Vec::new();
                json_text(&mut ours, text.as_bytes());
                assert_eq!(String::from_utf8(ours).unwrap(), serde(&text), "byte {b:#x} at {at}");
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
            let mut ours = Vec::new();
            json_text(&mut ours, text.as_bytes());
            assert_eq!(String::from_utf8(ours).unwrap(), serde(&text), "pattern {pattern:#06x}");
        }
    }

    proptest! {
        #[test]
        fn matches_serde_json(text in "(\\PC|[\\x00-\\x1f\"\\\\])*") {
            let mut ours = Vec::new();
            json_text(&mut ours, text.as_bytes());
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde(&text));
        }
    }
}
