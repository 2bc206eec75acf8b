//! `chunkcast serve` (and bare `chunkcast`): the server's flags, checked
//! into a [`Config`] with the checks of [`crate::server::config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser};

use super::size::parse_size;
use crate::live::Settings;
use crate::protocol::limits::{DEFAULT_MAX_RANGE, MAX_RANGE};
use crate::server::config::{
    check_index_dir, check_link_key, checked_chunk_size, checked_root, default_index_dir, default_max_connections,
    Config, ConfigError, VerifyReads, KEEP_ALIVE_S, MAX_CONNECTIONS, MAX_PUBLISH_TIMEOUT, RETRY_MS, SEAL_MS,
};
use crate::server::policy::access::Access;
use crate::server::policy::cors::CorsPolicy;
use crate::server::policy::host::HostPolicy;
use crate::tls::{self, TlsError, TlsSource};
use crate::tree::disk::default_index_builds;

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
    /// Listen on 127.0.0.1:PORT: a shortcut for --bind 127.0.0.1:PORT.
    #[arg(short, long, value_name = "PORT", conflicts_with = "bind")]
    pub port: Option<u16>,
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
    #[arg(long, default_value_t = DEFAULT_MAX_RANGE)]
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
    #[arg(long, value_enum, default_value_t = VerifyReads::Refills)]
    pub verify_reads: VerifyReads,
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
    /// Serve HTTPS with a self-signed certificate for these host names
    /// (comma-separated, or several values), made once into the config dir
    /// and reused [default: localhost, this host's name and the bind address
    /// (every interface's, bound to 0.0.0.0 or ::)]
    #[arg(long, value_name = "HOST,...", num_args = 0.., conflicts_with = "tls_cert")]
    pub tls_self_signed: Option<Vec<String>>,
    /// Let the --auth users publish live texts (`chunkcast publish`, or
    /// POST /api/publish?file=NAME): written into the root as they arrive,
    /// followed by viewers while they grow. Needs --auth and an index directory.
    #[arg(long, requires = "auth")]
    pub publish: bool,
    /// A live text's bytes wait at most this long (ms) before they are sealed
    /// into a chunk and sent to its viewers.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub seal_ms: u64,
    /// A publication whose producer has been gone this long ends as
    /// "abandoned" (e.g. 90s, 10min, 2h).
    #[arg(long, default_value = "10min", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub publish_timeout: Duration,
    /// Most bytes one live text may reach; K/M/G suffixes (binary).
    #[arg(long, default_value = "1G", value_parser = parse_size, value_name = "SIZE")]
    pub max_publish: u64,
    /// Tell the other instances that serve the same root and index directory
    /// about new chunks through this Redis (redis://HOST:PORT), so their
    /// viewers get them at once; without it they notice within about a second.
    #[arg(long, value_name = "URL", requires = "publish")]
    pub redis: Option<String>,
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

impl TryFrom<ServeArgs> for Config {
    type Error = ConfigError;

    fn try_from(mut args: ServeArgs) -> Result<Self, Self::Error> {
        if let Some(port) = args.port {
            args.bind = format!("127.0.0.1:{port}").parse().map_err(ConfigError::Bind)?;
        }
        let root_arg = match args.root_arg.take().or(args.root.take()) {
            Some(root) => root,
            None => std::env::current_dir().map_err(|e| ConfigError::Root(".".into(), e))?,
        };
        let root = checked_root(&root_arg)?;
        let chunk_size = checked_chunk_size(args.chunk_size)?;
        if !(1..=MAX_RANGE).contains(&args.max_range) {
            return Err(ConfigError::MaxRange(args.max_range));
        }
        if !RETRY_MS.contains(&args.retry_ms) {
            return Err(ConfigError::RetryMs(args.retry_ms));
        }
        if !KEEP_ALIVE_S.contains(&args.keep_alive) {
            return Err(ConfigError::KeepAlive(args.keep_alive));
        }
        let max_connections = args.max_connections.unwrap_or_else(default_max_connections);
        if !MAX_CONNECTIONS.contains(&max_connections) {
            return Err(ConfigError::MaxConnections(max_connections));
        }
        let index_dir = if args.no_index_dir { None } else { args.index_dir.clone().or_else(default_index_dir) };
        check_index_dir(index_dir.as_deref(), &root)?;
        check_link_key(args.link_key.as_deref(), &root)?;
        if let Some(dir) = &args.web_dir {
            if !dir.join("index.html").is_file() {
                return Err(ConfigError::WebDir(dir.clone()));
            }
        }
        let publish = args
            .publish
            .then(|| publish_settings(&args, chunk_size, index_dir.is_some(), !args.auth.is_empty()))
            .transpose()?;
        let cors = CorsPolicy::new(&args.cors_origin)?;
        let self_signed = args.tls_self_signed.map(self_signed_names).transpose()?;
        let tls = tls_source(args.tls_cert, args.tls_key, self_signed, &args.bind)?
            .map(|source| tls::load(&source))
            .transpose()?;
        Ok(Config {
            root,
            hosts: HostPolicy::new(&args.bind.addrs, &args.allowed_hosts),
            bind: args.bind.addrs,
            chunk_size,
            index_dir,
            max_range: args.max_range,
            retry_ms: args.retry_ms,
            keep_alive: Duration::from_secs(args.keep_alive),
            web_dir: args.web_dir,
            max_connections,
            access: Access::new(&args.auth, args.link_key.as_deref())?,
            tls,
            cors,
            verify_reads: args.verify_reads,
            index_builds: default_index_builds(),
            publish,
            redis: args.redis.map(checked_redis).transpose()?,
        })
    }
}

/// A `--redis` URL redis-rs accepts (it connects on first use).
fn checked_redis(url: String) -> Result<String, ConfigError> {
    match redis::Client::open(url.as_str()) {
        Ok(_) => Ok(url),
        Err(e) => Err(ConfigError::Redis(url, e.to_string())),
    }
}

/// `--publish` and its settings, which need `--auth` (publishing writes
/// into the root) and an index directory (where the layouts are kept).
fn publish_settings(args: &ServeArgs, chunk_size: u32, index_dir: bool, auth: bool) -> Result<Settings, ConfigError> {
    if !auth {
        return Err(ConfigError::PublishWithoutAuth);
    }
    if !index_dir {
        return Err(ConfigError::PublishWithoutIndexDir);
    }
    if !SEAL_MS.contains(&args.seal_ms) {
        return Err(ConfigError::SealMs(args.seal_ms));
    }
    if args.publish_timeout.is_zero() || args.publish_timeout > MAX_PUBLISH_TIMEOUT {
        return Err(ConfigError::PublishTimeout(args.publish_timeout));
    }
    if args.max_publish == 0 {
        return Err(ConfigError::MaxPublish);
    }
    Ok(Settings {
        chunk_size,
        seal_after: Duration::from_millis(args.seal_ms),
        timeout: args.publish_timeout,
        max_bytes: args.max_publish,
    })
}

/// `--tls-self-signed`'s values as host names: split at commas, and never a
/// path. `serve --tls-self-signed /srv/files` would otherwise take the
/// directory for a name and serve the working directory.
fn self_signed_names(values: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let names: Vec<String> =
        values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
    match names.iter().find(|n| n.contains('/') || Path::new(n.as_str()).exists()) {
        Some(path) => Err(ConfigError::NameIsPath(path.clone())),
        None => Ok(names),
    }
}

/// Which TLS flags were given (clap already rejects `--tls-cert` without
/// `--tls-key` and either with `--tls-self-signed`).
fn tls_source(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<Vec<String>>,
    bind: &Bind,
) -> Result<Option<TlsSource>, TlsError> {
    Ok(match (cert, key, self_signed) {
        (Some(cert), Some(key), _) => {
            for (flag, path) in [("--tls-cert", &cert), ("--tls-key", &key)] {
                if !path.exists() {
                    return Err(TlsError::MissingFor { flag, path: path.clone() });
                }
            }
            Some(TlsSource::Files { cert, key })
        }
        (_, _, Some(hosts)) => {
            let hosts = if hosts.is_empty() {
                let mut hosts = tls::default_hosts(bind.addrs[0].ip());
                // `--bind files.lan:8443`: the name people type goes in too.
                if bind.host().parse::<std::net::IpAddr>().is_err() && !hosts.iter().any(|h| h == bind.host()) {
                    hosts.push(bind.host().to_owned());
                }
                hosts
            } else {
                hosts
            };
            Some(TlsSource::SelfSigned { dir: tls::default_self_signed_dir()?, hosts })
        }
        _ => None,
    })
}

/// `name` relative to the working directory when it exists there, else next
/// to the crate's sources, so `cargo run` works from any directory.
pub fn in_project(name: &str) -> PathBuf {
    let here = PathBuf::from(name);
    if here.exists() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }
}
