//! Parsers for everything a client puts in a query string, a path or a
//! header: chunk numbers, versions, rates and `need` lists, and the writer
//! of `need` lists for clients. They are strict (no signs, spaces, fractions
//! or overflow) and return a [`ParamError`] naming the parameter, so a
//! client always learns which input was wrong (the server answers 400, or
//! 414 for a `need` list that is too long).

use std::borrow::Cow;
use std::ops::Range;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::limits::MAX_NEED_LEN;

/// A parameter that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("invalid `{name}`: {reason}")]
    Bad { name: &'static str, reason: String },
    #[error("the `need` list is longer than {max} characters")]
    NeedTooLong { max: usize },
}

impl ParamError {
    fn bad(name: &'static str, reason: impl Into<String>) -> Self {
        ParamError::Bad { name, reason: reason.into() }
    }
}

/// A non-negative decimal integer: ASCII digits only, no sign, at most u64.
pub fn chunk_number(name: &'static str, s: &str) -> Result<u64, ParamError> {
    if s.is_empty() {
        return Err(ParamError::bad(name, "must not be empty"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::bad(name, format!("{s:.32?} is not a non-negative decimal integer")));
    }
    s.parse().map_err(|_| ParamError::bad(name, "is too large"))
}

/// The `Last-Event-ID` header's raw bytes.
pub fn last_event_id(raw: &[u8]) -> Result<u64, ParamError> {
    let s = std::str::from_utf8(raw).map_err(|_| ParamError::bad("Last-Event-ID", "is not UTF-8"))?;
    chunk_number("Last-Event-ID", s)
}

/// `rate`: a positive number of payload bytes per second.
pub fn rate(s: &str) -> Result<u64, ParamError> {
    match chunk_number("rate", s)? {
        0 => Err(ParamError::bad("rate", "must be at least 1 byte per second")),
        n => Ok(n),
    }
}

/// `v`: the 16 lowercase hex digits of a manifest's `version`.
pub fn version(s: &str) -> Result<&str, ParamError> {
    if s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(s)
    } else {
        Err(ParamError::bad("v", "must be the 16 lowercase hex digits of the manifest's version"))
    }
}

/// `need`: comma-separated chunk numbers and inclusive ranges, e.g.
/// `0-9,15,20-30`. Returns sorted, merged, half-open ranges.
pub fn need(s: &str) -> Result<Vec<Range<u64>>, ParamError> {
    if s.len() > MAX_NEED_LEN {
        return Err(ParamError::NeedTooLong { max: MAX_NEED_LEN });
    }
    let mut ranges = Vec::new();
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (chunk_number("need", a)?, chunk_number("need", b)?),
            None => {
                let n = chunk_number("need", part)?;
                (n, n)
            }
        };
        if a > b {
            return Err(ParamError::bad("need", format!("range {a}-{b} is reversed")));
        }
        let end = b.checked_add(1).ok_or_else(|| ParamError::bad("need", "is too large"))?;
        ranges.push(a..end);
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Ok(merged)
}

/// Formats half-open ranges the way [`need`] parses them.
pub fn format_need(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| if r.end - r.start == 1 { r.start.to_string() } else { format!("{}-{}", r.start, r.end - 1) })
        .collect();
    parts.join(",")
}

/// What a query value may carry unescaped: the unreserved characters, and
/// `/` (names of files in folders stay readable in a URL).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// Percent-encodes a query value the way clients write `file=`, `need=`
/// and a signed link's parameters.
pub fn encode_query_value(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, QUERY_VALUE).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_are_strict() {
        assert_eq!(chunk_number("from", "0").unwrap(), 0);
        assert_eq!(chunk_number("from", "007").unwrap(), 7);
        assert_eq!(chunk_number("from", "18446744073709551615").unwrap(), u64::MAX);
        for bad in ["", "-1", "+1", "1.5", " 1", "1 ", "1e3", "18446744073709551616", "0x10", "١"] {
            assert!(chunk_number("from", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn need_lists_parse_merge_and_round_trip() {
        assert_eq!(need("0-9,15,20-30").unwrap(), vec![0..10, 15..16, 20..31]);
        assert_eq!(need("5,3-4,1").unwrap(), vec![1..2, 3..6]);
        assert_eq!(format_need(&[0..10, 15..16]), "0-9,15");
        for bad in ["", ",", "1,", "3-1", "a", "1-", "-1", "1--2"] {
            assert!(need(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(need(&"1,".repeat(5000)), Err(ParamError::NeedTooLong { .. })));
    }

    #[test]
    fn query_values_escape_all_but_unreserved_characters_and_slashes() {
        assert_eq!(encode_query_value("dir/a-b_c.~txt"), "dir/a-b_c.~txt");
        assert_eq!(encode_query_value("a b&c=d+é%"), "a%20b%26c%3Dd%2B%C3%A9%25");
        assert_eq!(encode_query_value("0-9,15"), "0-9%2C15");
    }

    proptest! {
        #[test]
        fn number_parser_agrees_with_u64(s in "\\PC{0,24}") {
            let strict = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            match chunk_number("from", &s) {
                Ok(n) => prop_assert!(strict && s.parse::<u64>() == Ok(n)),
                Err(_) => prop_assert!(!strict || s.parse::<u64>().is_err()),
            }
        }

        #[test]
        fn need_round_trips(mut v in proptest::collection::vec((0u64..1000, 0u64..20), 1..20)) {
            v.sort();
            let text = v.iter().map(|(a, l)| format!("{}-{}", a, a + l)).collect::<Vec<_>>().join(",");
            let parsed = need(&text).unwrap();
            prop_assert_eq!(need(&format_need(&parsed)).unwrap(), parsed.clone());
            for (a, l) in &v {
                prop_assert!(parsed.iter().any(|r| r.start <= *a && a + l < r.end));
            }
        }
    }
}
