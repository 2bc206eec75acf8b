//! Digests as the protocol uses them: SHA-256 of a chunk or a file, the
//! `root` over the chunk digests, and their lowercase hex form on the wire.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `root` = SHA-256 of the raw chunk digests, concatenated in order.
pub fn root_of<'a>(hashes: impl IntoIterator<Item = &'a Hash>) -> Hash {
    let mut h = Sha256::new();
    for d in hashes {
        h.update(d);
    }
    h.finalize().into()
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn parse_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Serde adapters that keep digests as hex strings in JSON (the index files
/// on disk and the manifest), with `#[serde(with = "...")]`.
pub mod serde_hex {
    /// One digest as a hex string.
    pub mod one {
        use serde::{de::Error, Deserialize, Deserializer, Serializer};

        use super::super::{hex, parse_hex, Hash};

        pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&hex(h))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
            let s = <&str>::deserialize(d)?;
            parse_hex(s).ok_or_else(|| D::Error::custom("bad sha256 hex"))
        }
    }

    /// A list of digests as an array of hex strings, written one by one (no
    /// vector of a million strings in between).
    pub mod list {
        use serde::{de::Error, ser::SerializeSeq, Deserialize, Deserializer, Serializer};

        use super::super::{hex, parse_hex, Hash};

        pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for h in v {
                seq.serialize_element(&hex(h))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            let v = Vec::<&str>::deserialize(d)?;
            v.iter().map(|s| parse_hex(s).ok_or_else(|| D::Error::custom("bad sha256 hex"))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_a_digest() {
        let h = sha256(b"abc");
        assert_eq!(hex(&h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_hex(&hex(&h)), Some(h));
        for bad in ["", "ab", &"g".repeat(64), &"é".repeat(32)] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn root_hashes_the_raw_digests_in_order() {
        let (a, b) = (sha256(b"a"), sha256(b"b"));
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        assert_eq!(root_of(&[a, b]), sha256(&both));
        assert_ne!(root_of(&[a, b]), root_of(&[b, a]));
        assert_eq!(root_of(&[]), sha256(b""));
    }
}
