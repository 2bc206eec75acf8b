//! Command-line arguments (clap derive). `main` parses them and dispatches;
//! server flags become a checked [`crate::config::Config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chunkcast", version, about = "Resumable, SHA-256-verified file transfer over Server-Sent Events")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a directory (with no subcommand at all: `fixtures/` on 127.0.0.1:8080).
    Serve(Box<ServeArgs>),
    /// Download a file through the event stream, verifying every chunk.
    Get(GetArgs),
    /// Precompute the index of every file under a directory.
    Index(IndexArgs),
    /// Print a signed link that opens one file until it expires (the server
    /// must run with `--link-key` pointing at the same key file).
    Link(LinkArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory to serve [default: the current directory]
    #[arg(value_name = "ROOT", conflicts_with = "root")]
    pub root_arg: Option<PathBuf>,
    /// Directory to serve, as a flag (same as ROOT).
    #[arg(long, env = "CHUNKCAST_ROOT")]
    pub root: Option<PathBuf>,
    /// Where to listen: IP:PORT, [IPv6]:PORT or HOST:PORT (every address the
    /// name resolves to, e.g. localhost:8080 on 127.0.0.1 and ::1).
    #[arg(long, default_value = "127.0.0.1:8080", env = "CHUNKCAST_BIND")]
    pub bind: Bind,
    /// Chunk size in bytes; K/M suffixes (binary) allowed. 4K..16M.
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Where indexes persist across restarts [default: the user's cache dir]
    #[arg(long, env = "CHUNKCAST_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
    /// Keep indexes in memory only.
    #[arg(long, conflicts_with = "index_dir")]
    pub no_index_dir: bool,
    /// Most chunks one `/events/chunk/<start>/<end>` request may ask for.
    #[arg(long, default_value_t = crate::params::DEFAULT_MAX_RANGE)]
    pub max_range: u64,
    /// Base reconnection delay announced with `retry:` (ms, jittered up to +50%).
    #[arg(long, default_value_t = 1000)]
    pub retry_ms: u64,
    /// Seconds of silence after which a paced stream sends a keep-alive comment.
    #[arg(long, default_value_t = 15)]
    pub keep_alive: u64,
    /// Most responses holding a file (event streams and /files downloads); more get 503 with
    /// Retry-After [default: (open-file limit - a quarter reserve) / 2]
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Which streamed chunks the server hashes again before sending: `always`
    /// (every chunk), `refills` (the range endpoint only; `/events` trusts the
    /// index while the open file's identity is unchanged) or `never`.
    #[arg(long, value_enum, default_value_t = crate::reads::VerifyReads::Refills)]
    pub verify_reads: crate::reads::VerifyReads,
    /// Require HTTP Basic credentials: USER:PASSWORD, or USER:sha256:HEX with
    /// the password's SHA-256 (keeps it out of shell history). Repeatable.
    #[arg(long = "auth", value_name = "USER:PASSWORD")]
    pub auth: Vec<String>,
    /// Enable signed links (`chunkcast link`), signed with the key in this
    /// file (created, mode 0600, when missing).
    #[arg(long, value_name = "FILE")]
    pub link_key: Option<PathBuf>,
    /// Also answer requests for this host name (repeatable). A loopback
    /// server answers only loopback names (DNS-rebinding defence) plus these;
    /// any other server then answers only these plus loopback names.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Serve the web client from this directory (for development) instead of
    /// the copy built into the binary.
    #[arg(long)]
    pub web_dir: Option<PathBuf>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain.
    #[arg(long, value_name = "FILE", requires = "tls_key", env = "CHUNKCAST_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert", env = "CHUNKCAST_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for these names, made once
    /// into the config dir and reused [default: localhost, this host's name
    /// and the bind address (every interface's, bound to 0.0.0.0 or ::)]
    #[arg(long, value_name = "HOST", num_args = 0.., conflicts_with = "tls_cert")]
    pub tls_self_signed: Option<Vec<String>>,
    /// Let pages on this origin (e.g. https://app.example) use the server
    /// from the browser; repeatable, or `*` for any origin.
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs::parse_from(["serve"])
    }
}

impl ServeArgs {
    /// Parses server flags alone, as the `serve` subcommand would.
    pub fn parse_from<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::parse_from(args).args
    }
}

/// A `--bind` value and the socket addresses it names, resolved once.
#[derive(Debug, Clone)]
pub struct Bind {
    /// As given, e.g. `localhost:8080`.
    pub text: String,
    /// Every address it resolves to, without duplicates, in resolver order.
    pub addrs: Vec<SocketAddr>,
}

impl Bind {
    /// The host part, without brackets: `localhost`, `0.0.0.0`, `::1`.
    pub fn host(&self) -> &str {
        let host = self.text.rsplit_once(':').map_or(self.text.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl std::str::FromStr for Bind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use std::net::ToSocketAddrs as _;
        let resolved = s.to_socket_addrs().map_err(|e| {
            format!("cannot use {s:?} as an address to listen on ({e}); write IP:PORT, [IPv6]:PORT or HOST:PORT")
        })?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in resolved {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(format!("{s:?} resolves to no address"));
        }
        Ok(Bind { text: s.to_owned(), addrs })
    }
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Output rules:
  Without -o, the file is saved in the current directory under NAME's last component.
  An existing file is never replaced without --force, unless it already is this version of
  the file (then nothing is downloaded). A regular file is written as PATH.part (with
  PATH.part.json) and renamed once every chunk is verified; if interrupted, running the same
  command again resumes from the verified chunks on disk.
  -o - streams the verified bytes to standard output, in order; -o /dev/null, another device
  or a named pipe is written straight through, in order. Neither keeps a part file: an
  interrupted download starts over.

Examples:
  chunkcast get http://host:8080 docs/report.pdf
  chunkcast get http://host:8080/files/docs/report.pdf -o ~/Downloads/
  chunkcast get 'http://host:8080/?file=big.iso' -o - | sha256sum")]
pub struct GetArgs {
    /// The server: its address (http://HOST:8080) followed by NAME, a file's
    /// /files/NAME URL, or the page's URL opened on a file (?file=NAME).
    pub url: String,
    /// File name as listed by /api/files (not needed when URL names the file).
    pub name: Option<String>,
    /// Where to save: a file, an existing directory (saved inside under NAME's
    /// last component), `-` for standard output, or a device or named pipe
    /// [default: NAME's last component, never a name from the server]
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Ask the server to pace the stream to this many payload bytes per second.
    #[arg(long, value_parser = parse_size)]
    pub rate: Option<u64>,
    /// Seconds without any byte from the server before the stream is reopened.
    #[arg(long, default_value_t = 30)]
    pub stall_timeout: u64,
    /// Give up after this many failed attempts in a row (refused
    /// connections, streams that dropped without a new chunk).
    #[arg(long, default_value_t = 10)]
    pub retries: u32,
    /// Range requests in flight when refilling missing or bad chunks.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Also read the finished file back and check its whole-file SHA-256
    /// (the chunk digests and root already prove it; this costs one more pass).
    #[arg(long)]
    pub verify_sha256: bool,
    /// No progress bar, retry lines or summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Also trust the certificate(s) in this PEM file for https:// URLs
    /// (e.g. a server's --tls-self-signed certificate).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// The server's public base URL, e.g. https://files.example.com
    pub base_url: String,
    /// File name as listed by /api/files.
    pub name: String,
    /// How long the link works: 30m, 12h, 7days ...
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub expires: std::time::Duration,
    /// The key file the server's `--link-key` names [default: the user's config dir]
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// Directory whose files to index.
    pub dir: PathBuf,
    /// Chunk size, as for `serve`.
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Where to write the indexes [default: the user's cache dir]
    #[arg(long)]
    pub index_dir: Option<PathBuf>,
}

/// `4096`, `256K`, `256KiB`, `1M`, `16MiB`: binary units.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit in {s:?} (use K, M or G)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}
