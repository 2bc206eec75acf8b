//! The limit row: Debian's nginx serving the same file with `sendfile`, the
//! fastest a static file leaves this machine over loopback. Every
//! throughput in the report is also printed as a share of it.
//!
//! nginx runs as one foreground process (`master_process off`) with a
//! configuration of our own in the run's temporary directory, so its CPU
//! is one `/proc/<pid>/stat` and nothing outside the run is touched.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::measure;

pub struct Nginx {
    child: Child,
    pub url: String,
}

/// The nginx binary: on the PATH or in /usr/sbin. When missing and we are
/// root, Debian's package is installed; otherwise `Err` says why it is skipped.
pub fn find_or_install() -> std::result::Result<PathBuf, String> {
    let find = || {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("nginx"))
            .find(|p| p.is_file())
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("nginx is not installed and installing it needs root (apt-get install nginx)".into());
    }
    eprintln!("[bench] installing Debian's nginx (apt-get install nginx)");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "nginx"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match find() {
        Some(bin) if ok => Ok(bin),
        _ => Err("apt-get install nginx failed".into()),
    }
}

impl Nginx {
    /// Serves `root` on a loopback port with `sendfile on`.
    pub fn start(bin: &Path, dir: &Path, root: &Path, log: &Path) -> Result<Nginx> {
        std::fs::create_dir_all(dir)?;
        // nginx cannot listen on port 0 and say which port it got: take a
        // free one and hand it over (a race only with another process
        // binding the same port in between).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            root.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let err = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Nginx { child, url: format!("http://127.0.0.1:{port}") };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || nginx.child.try_wait()?.is_some() {
                bail!("nginx did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    pub fn cpu(&self) -> f64 {
        measure::proc_cpu(self.child.id()).unwrap_or(f64::NAN)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
