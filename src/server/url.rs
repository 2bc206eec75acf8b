//! How the server reads a request's path: percent-decoded exactly once, as
//! the router sees it, and without the prefix chunkcast is mounted under, so
//! `/files` and access control agree on the name.

/// The prefix chunkcast is mounted under (`""` when it is the whole app),
/// registered as app data by `server::mount`.
#[derive(Debug, Clone, Default)]
pub struct Mount(String);

impl Mount {
    pub fn new(prefix: &str) -> Mount {
        Mount(prefix.trim_end_matches('/').to_owned())
    }

    /// A request's path as chunkcast's routes see it: decoded once, then
    /// without the prefix. `None` when it does not decode, or lies outside
    /// the prefix (the router decodes too, so a prefix spelled with escapes
    /// is stripped like the plain one).
    pub fn route_path(&self, raw: &str) -> Option<String> {
        let decoded = decode_path(raw)?;
        let rest = decoded.strip_prefix(self.0.as_str())?;
        (rest.is_empty() || rest.starts_with('/'))
            .then(|| if rest.is_empty() { "/".to_owned() } else { rest.to_owned() })
    }

    /// The mount's root (the file list) as a URL relative to a page at
    /// `raw_path`: `./`, `../`, … Relative, so it also holds behind a proxy
    /// that strips a prefix of its own.
    pub fn root_from(&self, raw_path: &str) -> String {
        let depth = raw_path.matches('/').count().saturating_sub(self.0.matches('/').count() + 1);
        if depth == 0 {
            "./".to_owned()
        } else {
            "../".repeat(depth)
        }
    }
}

/// Decodes `%XX` escapes exactly once (a `+` stays a `+`: this is for URL
/// paths, not forms). An escape that is not two hex digits is kept as text;
/// `None` when the bytes are not UTF-8 (no served name can match them).
pub fn decode_path(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_happens_once() {
        assert_eq!(decode_path("a+b.txt").unwrap(), "a+b.txt");
        assert_eq!(decode_path("a%2Bb.txt").unwrap(), "a+b.txt");
        assert_eq!(decode_path("100%25.txt").unwrap(), "100%.txt");
        assert_eq!(decode_path("100%2525.txt").unwrap(), "100%25.txt");
        assert_eq!(decode_path("100%.txt").unwrap(), "100%.txt");
        assert_eq!(decode_path("a%2fb%20c").unwrap(), "a/b c");
        assert_eq!(decode_path("%e2%82%ac%zz%4").unwrap(), "€%zz%4");
        assert!(decode_path("%ff").is_none());
    }

    #[test]
    fn the_root_is_reached_relatively_from_any_depth() {
        let root = Mount::new("");
        assert_eq!(root.root_from("/nope"), "./");
        assert_eq!(root.root_from("/files/a.bin"), "../");
        assert_eq!(root.root_from("/files/dir/a.bin"), "../../");
        assert_eq!(root.root_from("/a/"), "../");
        let dl = Mount::new("/dl/");
        assert_eq!(dl.root_from("/dl/nope"), "./");
        assert_eq!(dl.root_from("/dl/files/dir/a.bin"), "../../");
    }

    #[test]
    fn a_mount_prefix_is_stripped_after_decoding() {
        let root = Mount::new("");
        assert_eq!(root.route_path("/files/a%20b").as_deref(), Some("/files/a b"));
        let dl = Mount::new("/dl/");
        assert_eq!(dl.route_path("/dl/files/a%20b").as_deref(), Some("/files/a b"));
        assert_eq!(dl.route_path("/%64l/files/x").as_deref(), Some("/files/x"));
        assert_eq!(dl.route_path("/dl").as_deref(), Some("/"));
        assert_eq!(dl.route_path("/dlx/files/x"), None);
        assert_eq!(dl.route_path("/files/x"), None);
    }
}
