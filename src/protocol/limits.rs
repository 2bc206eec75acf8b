//! The protocol's numbers and names that both sides must agree on: chunk
//! sizes, how much one range request or `need` list may ask for, and the
//! query parameters of a signed link. The server's flags are checked
//! against them and clients assume them of a server that does not say.

/// Smallest and largest chunk a server cuts (`--chunk-size`): below 4 KiB
/// the per-event overhead dominates; above 16 MiB one event is more than a
/// browser should buffer as one string.
pub const MIN_CHUNK: u32 = 4 * 1024;
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;

/// Most chunks one range request may ask for, unless the server's
/// `--max-range` says otherwise (and what a client assumes of a server whose
/// manifest does not say `max_range`, which predates the flag).
pub const DEFAULT_MAX_RANGE: u64 = 256;

/// The largest `--max-range`: at most 2^32 chunks, so the value stays exact
/// as a JavaScript number wherever a client reads it.
pub const MAX_RANGE: u64 = 1 << 32;

/// Longest `need` list accepted; longer ones get 414. At ~10 bytes a range
/// this still lets a client name hundreds of gaps in one request.
pub const MAX_NEED_LEN: usize = 8192;

/// Responses holding a file that one connection may have open at once
/// (HTTP/2 multiplexes them; HTTP/1.1 holds one): beyond it the server
/// answers 503 `busy`, and `get --parallel` asks for no more.
pub const MAX_STREAMS_PER_CONNECTION: usize = 128;

/// The largest manifest a client reads. A whole manifest lists ~81 bytes
/// per chunk (digest and offset), so 64 MiB holds some 800,000 chunks: a
/// 12 TiB file at 16 MiB chunks, 3 GiB at the smallest. A server that sends
/// more is broken or hostile, and the client stops reading instead of
/// buffering it.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// The query parameters a signed link adds to every request for its file:
/// its expiry (Unix seconds) and its signature.
pub const LINK_EXPIRES: &str = "exp";
pub const LINK_SIGNATURE: &str = "sig";
