//! The wire protocol's shapes in one place (`docs/PROTOCOL.md` describes
//! them): the manifest, the data of the `chunk`, `end` and `error` events
//! (the `error` event and every JSON error response share one shape), the
//! health answer, and the chunk layout (`span(i)`, the chunk count). The
//! server writes them, `chunkcast get` and the benchmark read them; the
//! byte-exact tests below pin what goes on the wire.
//!
//! The SSE framing around them (`id:`, `event:`, `data:`, the blank line)
//! is [`super::sse`]'s; the chunk layout is [`super::layout`]'s.

use std::borrow::Cow;

use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::digest::{hex, parse_hex, root_of, serde_hex, Hash};
use super::layout::{chunk_count, span, Kind};
use super::limits::{MAX_CHUNK, MIN_CHUNK};
use super::live::LiveState;

/// The manifest as the server writes it, borrowed from the index;
/// `hashes`/`offsets` are left out of the `meta` event. Reads back as
/// [`Manifest`].
#[derive(Serialize)]
pub struct ManifestRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub size: u64,
    pub kind: Kind,
    pub chunk_size: u32,
    pub chunks: u64,
    pub version: String,
    pub sha256: String,
    pub root: String,
    /// Every chunk's digest (the whole manifest only).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hex_list")]
    pub hashes: Option<&'a [Hash]>,
    /// A text file's chunk offsets (the whole manifest only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offsets: Option<&'a [u64]>,
    /// `Some(true)` for a live publication (absent for files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
    /// A live publication's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<LiveState>,
}

/// `hashes` as a JSON array of hex strings (`None` is skipped above).
fn hex_list<S: Serializer>(hashes: &Option<&[Hash]>, s: S) -> Result<S::Ok, S::Error> {
    serde_hex::list::serialize(hashes.unwrap_or_default(), s)
}

/// The server's limits a client must respect, sent in the whole manifest
/// (they come from the server's flags, not the index, so they are per
/// request like the name): the most chunks per range request, and the
/// longest `need` list.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_range: u64,
    pub max_need: usize,
}

/// The manifest as `GET /api/manifest` returns it, as a client reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub size: u64,
    pub kind: Kind,
    pub chunk_size: u32,
    pub chunks: u64,
    pub version: String,
    pub sha256: String,
    pub root: String,
    pub hashes: Vec<String>,
    #[serde(default)]
    pub offsets: Option<Vec<u64>>,
    /// The server's limits (absent from servers older than them): the most
    /// chunks one range request may ask for, and the longest `need` list.
    #[serde(default)]
    pub max_range: Option<u64>,
    #[serde(default)]
    pub max_need: Option<usize>,
    /// A live publication: the chunks so far, more to come.
    #[serde(default)]
    pub live: bool,
    #[serde(default)]
    pub state: Option<LiveState>,
    /// `hashes`, decoded by [`Manifest::parse`].
    #[serde(skip)]
    pub digests: Vec<Hash>,
}

/// A manifest that does not parse, or does not agree with itself.
#[derive(Debug, thiserror::Error)]
pub enum BadManifest {
    #[error("bad manifest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("inconsistent manifest: {0}")]
    Inconsistent(&'static str),
}

impl Manifest {
    /// Parses and checks internal consistency before a client allocates or
    /// creates anything by it: a chunk size the protocol allows, one digest
    /// per chunk, offsets that tile the file, digests that hash to `root`.
    /// Together these bound what a manifest can make a client do: every
    /// chunk is at most 16 MiB and the file is at most as big as its chunk
    /// list says.
    pub fn parse(body: &[u8]) -> Result<Manifest, BadManifest> {
        let mut m: Manifest = serde_json::from_slice(body)?;
        let bad = BadManifest::Inconsistent;
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&m.chunk_size) {
            return Err(bad("chunk size outside 4 KiB..16 MiB"));
        }
        if m.chunks != m.hashes.len() as u64 {
            return Err(bad("digest count differs from chunk count"));
        }
        m.digests = m.hashes.iter().map(|h| parse_hex(h)).collect::<Option<_>>().ok_or(bad("bad digest"))?;
        if hex(&root_of(&m.digests)) != m.root {
            return Err(bad("digests do not hash to root"));
        }
        if parse_hex(&m.sha256).is_none() {
            return Err(bad("bad file digest"));
        }
        if (m.chunks == 0) != (m.size == 0) {
            return Err(bad("chunk count"));
        }
        match &m.offsets {
            Some(o) => {
                let ok = o.len() as u64 == m.chunks
                    && o.first().is_none_or(|&f| f == 0)
                    && o.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= m.chunk_size as u64)
                    && o.last().is_none_or(|&l| l < m.size && m.size - l <= m.chunk_size as u64);
                if !ok {
                    return Err(bad("offsets do not tile the file"));
                }
            }
            None if m.chunks != chunk_count(m.size, m.chunk_size) => return Err(bad("chunk count")),
            None => {}
        }
        Ok(m)
    }

    /// `(offset, length)` of chunk `i`; see [`span`].
    pub fn span(&self, i: u64) -> (u64, usize) {
        span(self.size, self.chunk_size, self.offsets.as_deref(), i)
    }

    pub fn hash(&self, i: u64) -> Hash {
        self.digests[i as usize]
    }
}

/// A `chunk` event's data as a client reads it (the event's `sha256` is
/// left unread: a client checks the manifest's digest, and a damaged copy
/// of the event's own must not cost an intact payload). The server writes it piece
/// by piece (`sse::chunk_head`, the payload, `sse::chunk_tail`), never
/// through serde: the payload is encoded while it is read from disk.
#[derive(Debug, Deserialize)]
pub struct ChunkEvent<'a> {
    pub i: u64,
    pub off: u64,
    pub len: u64,
    /// Borrowed as bytes: serde_json then skips the UTF-8 check of a string
    /// that can only be base64 (anything else fails decoding).
    #[serde(borrow, default)]
    pub b64: Option<&'a [u8]>,
    /// Text needs `Cow<str>`: serde_json hands escaped strings over as
    /// owned strings, which a byte visitor would reject.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
}

/// What a client reads of a stream's `meta` event (the manifest without
/// digests): the version it must match.
#[derive(Debug, Deserialize)]
pub struct Meta {
    pub version: String,
}

/// The `end` event's data: how many chunks the file has and their `root`,
/// so a client sees the file did not change under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub chunks: u64,
    pub root: String,
    /// How a live publication ended (`complete` or `abandoned`); absent for
    /// a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<LiveState>,
}

/// The `error` event's data, and the body of every JSON error response:
/// a stable machine-readable `code` and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    pub code: Cow<'a, str>,
    pub error: Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: impl Into<Cow<'a, str>>, error: impl Into<Cow<'a, str>>) -> Self {
        ErrorBody { code: code.into(), error: error.into() }
    }
}

/// `GET /healthz`. Fields in alphabetical order, as they always were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health<'a> {
    /// ALPN names served: `http/1.1`, and `h2` under TLS.
    #[serde(borrow)]
    pub protocols: Vec<&'a str>,
    /// `ok` while serving.
    pub status: &'a str,
    /// Responses currently holding a file (streams and `/files` downloads).
    pub streams: usize,
    pub tls: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::digest::sha256;
    use crate::protocol::sse;

    /// A two-chunk text file, "héllo wörld" cut after "héllo ".
    struct Sample {
        hashes: Vec<Hash>,
        sha256: Hash,
        root: Hash,
    }

    const TEXT: &str = "héllo wörld";
    const OFFSETS: [u64; 2] = [0, 7];

    fn sample() -> Sample {
        let (a, b) = TEXT.as_bytes().split_at("héllo ".len());
        let hashes = vec![sha256(a), sha256(b)];
        Sample { sha256: sha256(TEXT.as_bytes()), root: root_of(&hashes), hashes }
    }

    impl Sample {
        fn version(&self) -> String {
            hex(&self.root[..8])
        }

        fn manifest<'a>(&'a self, name: &'a str, full: bool) -> ManifestRef<'a> {
            ManifestRef {
                name: Some(name),
                size: TEXT.len() as u64,
                kind: Kind::Text,
                chunk_size: 4096,
                chunks: 2,
                version: self.version(),
                sha256: hex(&self.sha256),
                root: hex(&self.root),
                hashes: full.then_some(&self.hashes[..]),
                offsets: full.then_some(&OFFSETS[..]),
                live: None,
                state: None,
            }
        }

        fn end(&self) -> End {
            End { chunks: 2, root: hex(&self.root), reason: None }
        }
    }

    #[test]
    fn manifest_bytes_are_exact_and_read_back() {
        let idx = sample();
        let (h0, h1, root) = (hex(&idx.hashes[0]), hex(&idx.hashes[1]), hex(&idx.root));
        let (sha, version) = (hex(&idx.sha256), idx.version());
        let full = serde_json::to_string(&idx.manifest("a b.txt", true)).unwrap();
        assert_eq!(
            full,
            format!(
                r#"{{"name":"a b.txt","size":13,"kind":"text","chunk_size":4096,"chunks":2,"version":"{version}","sha256":"{sha}","root":"{root}","hashes":["{h0}","{h1}"],"offsets":[0,7]}}"#
            )
        );
        let meta = serde_json::to_string(&idx.manifest("a", false)).unwrap();
        assert_eq!(
            meta,
            format!(
                r#"{{"name":"a","size":13,"kind":"text","chunk_size":4096,"chunks":2,"version":"{version}","sha256":"{sha}","root":"{root}"}}"#
            )
        );
        let m = Manifest::parse(full.as_bytes()).unwrap();
        assert_eq!((m.name.as_str(), m.size, m.chunks, m.root.as_str()), ("a b.txt", 13, 2, root.as_str()));
        assert_eq!((m.span(0), m.span(1)), ((0, 7), (7, 6)));
        assert_eq!((m.span(1), m.hash(1)), ((7, 6), idx.hashes[1]));
    }

    #[test]
    fn manifests_that_disagree_with_themselves_are_refused() {
        let idx = sample();
        let good = serde_json::to_string(&idx.manifest("a", true)).unwrap();
        for (from, to, why) in [
            ("\"chunks\":2", "\"chunks\":3", "digest count"),
            ("\"offsets\":[0,7]", "\"offsets\":[0,13]", "offsets"),
            ("\"offsets\":[0,7]", "\"offsets\":[1,7]", "offsets"),
            ("\"chunk_size\":4096", "\"chunk_size\":0", "chunk size outside"),
            ("\"chunk_size\":4096", "\"chunk_size\":4294967295", "chunk size outside"),
            ("\"chunk_size\":4096", "\"chunk_size\":4095", "chunk size outside"),
            ("\"size\":13", "\"size\":1099511627776", "offsets"),
            ("\"offsets\":[0,7]", "\"offsets\":[7,0]", "offsets"),
        ] {
            let err = Manifest::parse(good.replace(from, to).as_bytes()).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let root = hex(&idx.root);
        let err = Manifest::parse(good.replace(&root, &"0".repeat(64)).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("hash to root"), "{err}");
        assert!(matches!(Manifest::parse(b"{"), Err(BadManifest::Json(_))));
    }

    #[test]
    fn chunk_event_bytes_are_exact_and_read_back() {
        let hash = [0xab; 32];
        let mut wire = Vec::new();
        sse::chunk(&mut wire, 7, 28, &hash, sse::Payload::Binary(b"hi!"));
        let want = format!(
            "id: 7\nevent: chunk\ndata: {{\"i\":7,\"off\":28,\"len\":3,\"sha256\":\"{}\",\"b64\":\"aGkh\"}}\n\n",
            "ab".repeat(32)
        );
        assert_eq!(String::from_utf8(wire.clone()).unwrap(), want);
        let data = &wire["id: 7\nevent: chunk\ndata: ".len()..wire.len() - 2];
        let c: ChunkEvent = serde_json::from_slice(data).unwrap();
        assert_eq!((c.i, c.off, c.len, c.b64, c.text), (7, 28, 3, Some(&b"aGkh"[..]), None));

        let mut wire = Vec::new();
        sse::chunk(&mut wire, 0, 0, &hash, sse::Payload::Text("a\"\n"));
        let data = &wire["id: 0\nevent: chunk\ndata: ".len()..wire.len() - 2];
        let c: ChunkEvent = serde_json::from_slice(data).unwrap();
        assert_eq!((c.b64, c.text.as_deref()), (None, Some("a\"\n")));
    }

    #[test]
    fn end_error_and_health_bytes_are_exact() {
        let idx = sample();
        let end = serde_json::to_string(&idx.end()).unwrap();
        assert_eq!(
            sse::named("end", &end),
            format!("event: end\ndata: {{\"chunks\":2,\"root\":\"{}\"}}\n\n", hex(&idx.root)).into_bytes()
        );
        assert_eq!(serde_json::from_str::<End>(&end).unwrap(), idx.end());

        let error = serde_json::to_string(&ErrorBody::new("changed", "a \"b\" changed\n")).unwrap();
        assert_eq!(
            sse::named("error", &error),
            b"event: error\ndata: {\"code\":\"changed\",\"error\":\"a \\\"b\\\" changed\\n\"}\n\n"
        );
        let back: ErrorBody = serde_json::from_str(&error).unwrap();
        assert_eq!((&*back.code, &*back.error), ("changed", "a \"b\" changed\n"));

        let health = Health { protocols: vec!["h2", "http/1.1"], status: "ok", streams: 3, tls: true };
        assert_eq!(
            serde_json::to_string(&health).unwrap(),
            r#"{"protocols":["h2","http/1.1"],"status":"ok","streams":3,"tls":true}"#
        );
    }
}
