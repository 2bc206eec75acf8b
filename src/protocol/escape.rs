//! JSON string escaping of chunk text, eight bytes at a time: text chunks
//! are mostly bytes that pass through verbatim, so the scan looks for the
//! few that need an escape (control bytes, `"` and `\`) a word at a time and
//! copies the runs in between whole.

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
            for at in 0..17 {
                let mut text = vec![b'a'; 17];
                text[at] = b;
                let text = String::from_utf8(text).unwrap();
                let mut ours = Vec::new();
                json_text(&mut ours, text.as_bytes());
                assert_eq!(String::from_utf8(ours).unwrap(), serde(&text), "byte {b:#x} at {at}");
            }
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
