//! The validity period of a DER X.509 certificate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `notBefore` and `notAfter` of a DER X.509 certificate.
///
/// A few lines of DER walking instead of an X.509 crate: these two fields
/// are all we read, and rustls itself checks everything else.
pub fn validity(cert: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (tag, certificate, _) = der(cert)?;
    let (tag2, mut tbs, _) = der(certificate)?;
    if tag != 0x30 || tag2 != 0x30 {
        return None;
    }
    // TBSCertificate: [0] version (optional), serial, signature, issuer, validity.
    let (tag, _, rest) = der(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
    }
    for _ in 0..3 {
        tbs = der(tbs)?.2;
    }
    let (tag, validity, _) = der(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, before, rest) = der(validity)?;
    let (t2, after, _) = der(rest)?;
    Some((asn1_time(t1, before)?, asn1_time(t2, after)?))
}

/// One DER element: `(tag, contents, rest)`.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`, tag 0x18), as X.509 requires them.
fn asn1_time(tag: u8, bytes: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    Some(if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn asn1_times() {
        assert_eq!(asn1_time(0x17, b"250102030405Z"), Some(at("2025-01-02T03:04:05Z")));
        assert_eq!(asn1_time(0x17, b"750101000000Z"), Some(at("1975-01-01T00:00:00Z")));
        assert_eq!(asn1_time(0x18, b"40960101000000Z"), Some(at("4096-01-01T00:00:00Z")));
        assert_eq!(asn1_time(0x17, b"251302030405Z"), None);
        assert_eq!(asn1_time(0x17, b"2501020304Z"), None);
        assert_eq!(asn1_time(0x18, b"20250102030405"), None);
    }

    #[test]
    fn truncated_der_is_rejected() {
        assert_eq!(validity(&[]), None);
        assert_eq!(validity(&[0x30, 0x82, 0xFF]), None);
        assert_eq!(validity(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
