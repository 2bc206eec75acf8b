//! Text someone else controls, escaped before a person reads it: in the
//! server's log lines, file names, paths and query values from clients; on
//! `get`'s terminal, what a server said (error texts, redirects, manifest
//! fields). A string holding CR, LF or ESC cannot forge a line or drive the
//! terminal.
//!
//! Every site that writes such a string formats it through [`Esc`]
//! (`tracing::info!(file = %Esc(name), ...)`).

use std::fmt;

/// Displays a string with control characters, backslashes and the Unicode
/// line/paragraph separators escaped (`\n`, `\r`, `\t`, `\\`, `\x1b`,
/// `\u{2028}`); everything else, including non-ASCII text, as is.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            f.write_str(&s[plain..i])?;
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            plain = i + c.len_utf8();
        }
        f.write_str(&s[plain..])
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\\' || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        let cases = [
            ("plain name.txt", "plain name.txt"),
            ("a\nb", "a\\nb"),
            ("x\r\n2026 INFO forged", "x\\r\\n2026 INFO forged"),
            ("\u{1b}[31mred", "\\x1b[31mred"),
            ("back\\slash", "back\\\\slash"),
            ("é中😀", "é中😀"),
            ("\u{7f}\u{9b}\u{2028}", "\\x7f\\x9b\\u{2028}"),
        ];
        for (raw, want) in cases {
            assert_eq!(Esc(raw).to_string(), want, "{raw:?}");
        }
    }
}
