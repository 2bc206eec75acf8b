//! Shared test support: a real chunkcast server in-process, bound to port 0,
//! plus small HTTP helpers. Every test talks to it over real sockets.
#![allow(dead_code)]

pub mod binary;
pub mod fsops;
pub mod gate;
pub mod hostile;
pub mod producer;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chunkcast::cli::ServeArgs;
use chunkcast::protocol::sse::{Event, Parser};
use chunkcast::{Config, Hooks};

/// A running server. Dropping it stops the server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: PathBuf,
    /// `https` when started with TLS flags (its agent trusts the server's certificate).
    pub scheme: &'static str,
    handle: actix_web::dev::ServerHandle,
    /// Completes the server's `shutdown` input (see [`TestServer::shut_down`]).
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    agent: ureq::Agent,
}

/// A fresh copy of `fixtures/` that a test may change freely.
pub fn fixture_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl TestServer {
    /// Serves `root` with 4 KiB chunks, an index dir of its own (inside a
    /// temp dir next to nothing served) and any extra `serve` flags.
    pub fn start(root: &Path, extra: &[&str]) -> TestServer {
        let index_dir = std::env::temp_dir().join(format!("chunkcast-test-index-{}", fastrand::u64(..)));
        let index_dir = index_dir.to_str().unwrap().to_owned();
        let mut args = vec!["serve", "--chunk-size", "4K", "--index-dir", &index_dir];
        args.extend_from_slice(extra);
        Self::start_with(root, &args)
    }

    /// Serves `root` with exactly these `serve` flags (plus `--root`/`--bind`).
    pub fn start_with(root: &Path, args: &[&str]) -> TestServer {
        Self::start_configured(root, args, |_, _| {})
    }

    /// [`TestServer::start_with`], letting `adjust` change the checked
    /// config first, and the test hooks no flag reaches (workers, a slow disk).
    pub fn start_configured(root: &Path, args: &[&str], adjust: impl FnOnce(&mut Config, &mut Hooks)) -> TestServer {
        let mut serve = ServeArgs::parse_from(args);
        serve.root = Some(root.to_owned());
        serve.bind = "127.0.0.1:0".parse().unwrap();
        let mut config = Config::try_from(serve).expect("valid test config");
        let mut hooks = Hooks::default();
        adjust(&mut config, &mut hooks);
        let tls_cert = config.tls.as_ref().map(|t| t.cert_path.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                // A dropped sender (a server stopped by its handle) is no shutdown.
                let shutdown_rx = async move {
                    if shutdown_rx.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                let server =
                    chunkcast::server_on_with(vec![listener], config, hooks, shutdown_rx).expect("server starts");
                tx.send(server.handle()).unwrap();
                server.await.expect("server runs");
            })
        });
        let handle = rx.recv().unwrap();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(trusting(tls_cert.as_deref()))
            .build()
            .into();
        let scheme = if tls_cert.is_some() { "https" } else { "http" };
        TestServer {
            addr,
            root: root.to_owned(),
            scheme,
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
            agent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut res = req.call().expect("request completes");
        let status = res.status().as_u16();
        let headers =
            res.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
        let body = res.body_mut().with_config().limit(u64::MAX).read_to_vec().unwrap();
        Resp { status, headers, body }
    }

    /// Sends raw bytes as a request (for paths no URL type would accept) and
    /// returns the status and body of a non-chunked response.
    pub fn raw(&self, request: &[u8]) -> (u16, String) {
        let (status, _, body) = self.raw_full(request);
        (status, body)
    }

    /// Sends a raw request; its status, headers (lowercased) and body.
    pub fn raw_full(&self, request: impl AsRef<[u8]>) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_ref()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    /// `GET path` with a raw request target.
    pub fn raw_get(&self, target: &str) -> (u16, String) {
        self.raw(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
    }

    /// Opens a stream and returns a reader positioned at its body.
    pub fn open_stream(&self, path: &str, headers: &[(&str, &str)]) -> (u16, impl std::io::BufRead) {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.call().unwrap();
        let status = res.status().as_u16();
        (status, BufReader::new(res.into_body().into_reader()))
    }

    /// A graceful shutdown, as SIGTERM gives the binary: streams end between
    /// two events; waits until the server has returned.
    pub fn shut_down(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            futures_lite_block_on(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A client TLS config trusting only `cert` (the test server's own).
pub fn trusting(cert: Option<&Path>) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots: Vec<Certificate<'static>> = cert
        .map(|p| chunkcast::tls::read_chain(p).unwrap().iter().map(|c| Certificate::from_der(c).to_owned()).collect())
        .unwrap_or_default();
    TlsConfig::builder()
        .unversioned_rustls_crypto_provider(chunkcast::tls::provider())
        .root_certs(RootCerts::new_with_certs(&roots))
        .build()
}

fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Every dispatched SSE event in the body.
    pub fn events(&self) -> Vec<Event> {
        events_of(&self.body)
    }

    /// Asserts an error response: status plus `{"error": <non-empty>, "code": code}`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        let json = self.json();
        assert_eq!(json["code"], code, "body: {json}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "body: {json}");
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

pub fn events_of(body: &[u8]) -> Vec<Event> {
    let mut parser = Parser::new();
    let mut reader = BufReader::new(body);
    std::iter::from_fn(|| parser.next_event(&mut reader).unwrap()).collect()
}

/// The payload bytes of a chunk event (base64 or text).
pub fn payload(event: &Event) -> (u64, Vec<u8>) {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    let bytes = match (v["b64"].as_str(), v["text"].as_str()) {
        (Some(b), _) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        (None, Some(t)) => t.as_bytes().to_vec(),
        _ => panic!("chunk without payload: {}", event.data),
    };
    (v["i"].as_u64().unwrap(), bytes)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    chunkcast::protocol::hex(&chunkcast::protocol::sha256(bytes))
}

/// Percent-encodes a file name for a query string (through the
/// `percent-encoding` crate, as the client does).
pub fn q(name: &str) -> String {
    chunkcast::protocol::params::encode_query_value(name).into_owned()
}

/// Names of the fixtures, relative to the root.
pub fn fixture_names() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names = Vec::new();
    walk(&root, "", &mut names);
    names.sort();
    names
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = format!("{prefix}{}", e.file_name().to_str().unwrap());
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}
