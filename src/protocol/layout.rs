//! How a file is cut into chunks (protocol v1), as both sides compute it:
//! the kind of file, how many chunks it has and where chunk `i` lies.
//!
//! - binary: chunk `i` is bytes `[i*C, min((i+1)*C, size))`;
//! - text (the whole file is valid UTF-8): each chunk ends at `start + C`, or
//!   earlier at the last character boundary at or before it, so every chunk
//!   is valid UTF-8 on its own; the offsets are listed in the manifest.

use serde::{Deserialize, Serialize};

/// Whether a file streams as text (`text` events, valid UTF-8 chunks) or as
/// base64 (`b64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    Binary,
}

/// How many chunks a file of `size` bytes has at `chunk_size` (binary
/// files: every chunk but the last is exactly `chunk_size`; an empty file
/// has none).
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(chunk_size as u64)
}

/// `(offset, length)` of chunk `i` (`i < chunks`). A text file's chunks end
/// on character boundaries and are listed in `offsets`; a binary file's are
/// cut every `chunk_size` bytes.
pub fn span(size: u64, chunk_size: u32, offsets: Option<&[u64]>, i: u64) -> (u64, usize) {
    let (start, end) = match offsets {
        Some(o) => (o[i as usize], o.get(i as usize + 1).copied().unwrap_or(size)),
        None => {
            let c = chunk_size as u64;
            (i * c, ((i + 1) * c).min(size))
        }
    };
    (start, (end - start) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_layout() {
        assert_eq!([0, 1, 4, 5, 8, 9].map(|size| chunk_count(size, 4)), [0, 1, 1, 2, 2, 3]);
        assert_eq!(span(9, 4, None, 0), (0, 4));
        assert_eq!(span(9, 4, None, 2), (8, 1));
        assert_eq!(span(9, 4, Some(&[0, 3, 6]), 1), (3, 3));
        assert_eq!(span(9, 4, Some(&[0, 3, 6]), 2), (6, 3));
    }
}
