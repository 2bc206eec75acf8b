//! The real `chunkcast` binary as a child process, for what only a process
//! shows: its log output, its descriptor limit, its bind address.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Spawned {
    pub child: Child,
    /// Where to connect (the printed address, with 127.0.0.1 for 0.0.0.0).
    pub addr: SocketAddr,
    /// Everything the server wrote to stderr so far.
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

/// Starts `chunkcast serve --root ROOT --bind BIND --no-index-dir ARGS...`
/// (without `--no-index-dir` when ARGS name an `--index-dir`),
/// under `ulimit -n NOFILE` when given, with `RUST_LOG=log`.
pub fn spawn(root: &Path, bind: &str, args: &[&str], nofile: Option<u32>, log: &str) -> Spawned {
    let exe = env!("CARGO_BIN_EXE_chunkcast");
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), exe]);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(["serve", "--root", root.to_str().unwrap(), "--bind", bind])
        .args(if args.contains(&"--index-dir") { &[][..] } else { &["--no-index-dir"][..] })
        .args(args)
        .env("RUST_LOG", log)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    // The serving line (a TLS server prints its certificate's lines first).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains(" at http") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the server printed no URL");
    }
    let url = line.rsplit(" at ").next().unwrap().split_whitespace().next().unwrap_or_default();
    let url = url.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
    // Bound to every interface, the line names the host (`http://vm:PORT/`):
    // this machine, reached here through loopback.
    let addr: SocketAddr = url.parse().unwrap_or_else(|_| {
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok());
        SocketAddr::from(([127, 0, 0, 1], port.unwrap_or_else(|| panic!("no port in {line:?}"))))
    });
    Spawned { child, addr, stderr }
}

impl Spawned {
    /// One request on its own connection: status and body.
    pub fn request(&self, target: &str, host: &str) -> (u16, String) {
        self.request_with(target, &[("Host", host)])
    }

    /// `GET target` with these headers (and `Host: localhost` unless given).
    pub fn request_with(&self, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = format!("GET {target} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str("Host: localhost\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    pub fn log(&self) -> Vec<u8> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `http(s)://` word a child prints on its first stdout line
/// (its startup line), without a trailing `/`.
pub fn printed_url(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped")).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://") || w.starts_with("https://"));
    url.unwrap_or_else(|| panic!("no URL on the startup line: {line:?}")).trim_end_matches('/').to_owned()
}
