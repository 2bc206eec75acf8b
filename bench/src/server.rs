//! A release `chunkcast serve` child on port 0: started, read back, measured
//! through `/proc`, and killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::measure;

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub url: String,
    /// Kept open: the server may print again, and a closed pipe would kill it.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `bin serve` (plus `extra` flags) and waits for its
    /// `chunkcast serving <root> at <url>` line.
    pub fn start(
        bin: &Path,
        root: &Path,
        index_dir: &Path,
        chunk_size: &str,
        log: &Path,
        extra: &[&str],
    ) -> Result<Server> {
        let err = std::fs::File::create(log)?;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--root")
            .arg(root)
            .args(["--bind", "127.0.0.1:0", "--chunk-size", chunk_size, "--index-dir"])
            .arg(index_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        // TLS servers print their certificate and fingerprint first.
        let mut line = String::new();
        while stdout.read_line(&mut line)? > 0 && !line.contains(" at ") {
            line.clear();
        }
        // `chunkcast serving <root> (<protocols>) at <url>`
        let url = line.split_once(" at ").and_then(|(_, rest)| rest.split_whitespace().next());
        let Some(url) = url.map(|u| u.trim_end_matches('/').to_owned()) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!("server did not start (stdout {line:?}):\n{log}");
        };
        let host = url.split_once("://").map_or(url.as_str(), |(_, h)| h);
        let addr: SocketAddr = host.parse().with_context(|| format!("bad url {url}"))?;
        Ok(Server { child, addr, url, _stdout: stdout })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cpu(&self) -> f64 {
        measure::proc_cpu(self.pid()).unwrap_or(f64::NAN)
    }

    pub fn rss_kib(&self) -> u64 {
        measure::proc_kib(self.pid(), "VmRSS").unwrap_or(0)
    }

    pub fn hwm_kib(&self) -> u64 {
        measure::proc_kib(self.pid(), "VmHWM").unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
