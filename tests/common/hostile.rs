//! A hostile (or broken) server for `chunkcast get` to meet: plain HTTP/1.1
//! on port 0, one request per connection, whose answers the test writes by
//! hand (a lying manifest, an endless body, a redirect, escape sequences).
//! Real sockets, no chunkcast code on the serving side but the protocol's
//! framing helpers a test chooses to use.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers to one request.
pub enum Reply {
    /// A status line, headers and a whole body (`Content-Length` added).
    Whole { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// A status line, headers, then `piece` written again and again until
    /// the client hangs up (no length: the body never ends).
    Endless { status: u16, headers: Vec<(String, String)>, piece: Vec<u8> },
    /// A `Content-Length` of `length`, then only `body`, then the
    /// connection closes: a response cut short.
    Cut { status: u16, headers: Vec<(String, String)>, body: Vec<u8>, length: usize },
}

impl Reply {
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Whole {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn events(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Whole {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            body: body.into(),
        }
    }

    pub fn status(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Reply::Whole { status, headers, body: body.into() }
    }
}

/// One request's headers, names in lower case.
pub type Headers = Vec<(String, String)>;

/// Where [`serve_one`] writes down what it received: the request lines and
/// their headers.
type Seen = (Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<Headers>>>);

/// A running hostile server; dropping it stops accepting.
pub struct Hostile {
    pub addr: SocketAddr,
    /// `https` when started with [`Hostile::start_tls`].
    pub scheme: &'static str,
    /// The certificate (for `--cacert`) of a TLS one.
    pub cert: Option<tempfile::TempDir>,
    /// Every request line it received, in order (`GET /api/manifest?… HTTP/1.1`).
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Each request's headers, names in lower case, in the same order.
    pub headers: Arc<Mutex<Vec<Headers>>>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Serves `answer(path_and_query)` to every request.
    pub fn start(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Hostile {
        Self::start_with(None, answer)
    }

    /// [`Hostile::start`] over TLS, with a certificate for 127.0.0.1 and
    /// localhost ([`Hostile::cert_path`]).
    pub fn start_tls(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Hostile {
        use rustls::pki_types::pem::PemObject as _;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = chunkcast::tls::generate(&["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
        let chain = vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(chunkcast::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let mut server = Self::start_with(Some(Arc::new(config)), answer);
        server.cert = Some(dir);
        server
    }

    pub fn cert_path(&self) -> std::path::PathBuf {
        self.cert.as_ref().expect("a TLS hostile server").path().join("cert.pem")
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        answer: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, requests) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let headers = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let scheme = if tls.is_some() { "https" } else { "http" };
        {
            let (stop, requests, heads) = (stop.clone(), requests.clone(), headers.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((socket, _)) => {
                            let (answer, tls) = (answer.clone(), tls.clone());
                            let seen = (requests.clone(), heads.clone());
                            std::thread::spawn(move || {
                                socket.set_nonblocking(false).unwrap();
                                match tls {
                                    Some(config) => {
                                        let conn = rustls::ServerConnection::new(config).unwrap();
                                        serve_one(rustls::StreamOwned::new(conn, socket), &*answer, &seen)
                                    }
                                    None => serve_one(socket, &*answer, &seen),
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Hostile { addr, scheme, cert: None, requests, headers, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(
    socket: impl std::io::Read + std::io::Write,
    answer: &(dyn Fn(&str) -> Reply + Send + Sync),
    (requests, heads): &Seen,
) {
    let mut reader = BufReader::new(socket);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {
                if let Some((k, v)) = header.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        }
    }
    let request_line = request_line.trim_end().to_owned();
    let mut requests = requests.lock().unwrap();
    requests.push(request_line.clone());
    heads.lock().unwrap().push(headers);
    drop(requests);
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut out = reader.into_inner();
    let head = |status: u16, headers: &[(String, String)], length: Option<usize>| {
        let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = length {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    };
    match answer(&target) {
        Reply::Whole { status, headers, body } => {
            let _ = out.write_all(&head(status, &headers, Some(body.len())));
            let _ = out.write_all(&body);
            let _ = out.flush();
        }
        Reply::Endless { status, headers, piece } => {
            let _ = out.write_all(&head(status, &headers, None));
            while out.write_all(&piece).is_ok() {}
        }
        Reply::Cut { status, headers, body, length } => {
            let _ = out.write_all(&head(status, &headers, Some(length)));
            let _ = out.write_all(&body);
            let _ = out.flush();
        }
    }
}
