//! What one HTTP/2 connection may hold: the server advertises
//! `MAX_CONCURRENT_STREAMS`, at most `PER_CONNECTION` streams take slots,
//! and listings it never reads hold a page each, not the list. The
//! client is the `h2` crate over rustls (ALPN h2), opening many streams on
//! one connection and reading none.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chunkcast::server::slots::PER_CONNECTION;
use chunkcast::server::MAX_CONCURRENT_STREAMS;
use chunkcast::tls;

use crate::common::binary;
use crate::common::*;

/// A certificate for 127.0.0.1 and its key, written into `dir`.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = tls::generate(&["127.0.0.1".to_owned()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert).unwrap();
    chunkcast::safefile::write_private(&k, key.as_bytes()).unwrap();
    (c.to_str().unwrap().to_owned(), k.to_str().unwrap().to_owned())
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to `addr` that offers only h2, trusting `cert`.
async fn tls(addr: std::net::SocketAddr, cert: &str) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(tls::read_chain(Path::new(cert)).unwrap());
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap()
}

/// An HTTP/2 connection to `addr`, trusting `cert`.
async fn connect(addr: std::net::SocketAddr, cert: &str) -> h2::client::SendRequest<bytes::Bytes> {
    let (send, connection) = h2::client::handshake(tls(addr, cert).await).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

async fn get(send: &mut h2::client::SendRequest<bytes::Bytes>, path: &str) -> h2::client::ResponseFuture {
    let request = http::Request::get(format!("https://127.0.0.1{path}")).body(()).unwrap();
    let mut ready = send.clone().ready().await.unwrap();
    ready.send_request(request, true).unwrap().0
}

/// `n` requests for `path` on one connection, sent before any answer is
/// read; their response heads (bodies left unread).
async fn many(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    path: &str,
    n: usize,
) -> Vec<http::Response<h2::RecvStream>> {
    let mut pending = Vec::new();
    for _ in 0..n {
        pending.push(get(send, path).await);
    }
    let mut heads = Vec::new();
    for response in pending {
        heads.push(response.await.unwrap());
    }
    heads
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn the_server_advertises_how_many_streams_a_connection_may_open() {
    let root = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let server = TestServer::start(root.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    runtime().block_on(async {
        let (_send, mut connection) = h2::client::handshake(tls(server.addr, &cert).await).await.unwrap();
        // Before the server's SETTINGS arrive h2 assumes no limit (usize::MAX).
        let _ = tokio::time::timeout(Duration::from_millis(500), &mut connection).await;
        let advertised = connection.max_concurrent_send_streams();
        assert_eq!(advertised, MAX_CONCURRENT_STREAMS as usize, "SETTINGS_MAX_CONCURRENT_STREAMS");
        assert!((100..=250).contains(&advertised));
    });
}

#[test]
fn one_connection_cannot_take_every_stream_slot() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("paced.bin"), vec![1u8; 64 * 1024]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let server = TestServer::start(root.path(), &["--tls-cert", &cert, "--tls-key", &key, "--max-connections", "1000"]);
    runtime().block_on(async {
        let mut one = connect(server.addr, &cert).await;
        let asked = PER_CONNECTION + 20;
        // Paced to a byte a second: each stream holds its slot.
        let statuses = many(&mut one, "/events?file=paced.bin&rate=1", asked).await;
        let ok = statuses.iter().filter(|r| r.status() == 200).count();
        let busy: Vec<_> = statuses.iter().filter(|r| r.status() == 503).collect();
        assert_eq!((ok, busy.len()), (PER_CONNECTION, asked - PER_CONNECTION), "one connection's share");
        assert_eq!(busy[0].headers()["retry-after"], "1");
        // Another client is served meanwhile.
        let mut other = connect(server.addr, &cert).await;
        let response = get(&mut other, "/events?file=paced.bin&rate=1").await.await.unwrap();
        assert_eq!(response.status(), 200, "a second connection still gets a stream");
        drop(statuses);
    });
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 =
        status.lines().find(|l| l.starts_with("VmRSS")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

#[test]
fn listings_nobody_reads_hold_a_page_each() {
    const FILES: usize = 5_000;
    const LISTINGS: usize = 500;
    let root = tempfile::tempdir().unwrap();
    let big = root.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..FILES {
        std::fs::write(big.join(format!("a-file-with-a-longish-name-{i:05}.txt")), "x").unwrap();
    }
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let server = binary::spawn(root.path(), "127.0.0.1:0", &["--tls-cert", &cert, "--tls-key", &key], None, "warn");
    let pid = server.child.id();
    runtime().block_on(async {
        let mut send = connect(server.addr, &cert).await;
        // Warm up: the names are cached, the allocator has its arenas.
        let first = get(&mut send, "/api/files?dir=big").await.await.unwrap();
        assert_eq!(first.status(), 200);
        let mut body = first.into_body();
        let mut whole = Vec::new();
        while let Some(piece) = body.data().await {
            let piece = piece.unwrap();
            let _ = body.flow_control().release_capacity(piece.len());
            whole.extend_from_slice(&piece);
        }
        let list: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(list.as_array().unwrap().len(), FILES);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = rss_mib(pid);
        // Over three connections: one may open MAX_CONCURRENT_STREAMS at once.
        let mut responses = Vec::new();
        for n in [LISTINGS / 3, LISTINGS / 3, LISTINGS - 2 * (LISTINGS / 3)] {
            assert!(n < MAX_CONCURRENT_STREAMS as usize);
            let mut more = connect(server.addr, &cert).await;
            responses.extend(many(&mut more, "/api/files?dir=big", n).await);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_mib(pid);
        println!("{LISTINGS} unread listings of {FILES} files: server RSS {before:.0} -> {after:.0} MiB");
        // The target is under 100 MiB; whole listings held ~65 MiB here, pages ~15.
        assert!(after - before < 40.0, "unread listings held {:.0} MiB", after - before);
        drop(responses);
    });
}
