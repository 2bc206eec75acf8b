//! Section 7: HTTPS against plain HTTP. The same file through `chunkcast get`
//! and through `curl` reading the event stream, each once over plain HTTP and
//! once over TLS (HTTP/1.1 and HTTP/2), with the server's CPU per GiB; the
//! target is that TLS adds at most 25% to it (AES-GCM with AES-NI costs far
//! less than the SHA-256 and base64 the server does anyway).

use std::process::Command;

use anyhow::Result;

use crate::report::{Report, Row};
use crate::server::Server;
use crate::{get, get_with, mbs, measure, size, Env, GIB};

pub fn rows(rep: &mut Report, env: &Env, name: &str, bytes: u64) -> Result<()> {
    let dir = env.tmp.join("tls");
    std::fs::create_dir_all(&dir)?;
    let (cert_pem, key_pem) = chunkcast::tls::generate(&["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, cert_pem)?;
    chunkcast::safefile::write_private(&key, key_pem.as_bytes())?;
    let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let plain = env.server("index-256K", "256K", "server-plain-7.log")?;
    let tls = env.server_with("index-256K", "256K", "server-tls-7.log", &["--tls-cert", &cert, "--tls-key", &key])?;
    // Index both before timing anything (a cache hit when section 2 ran).
    for s in [&plain, &tls] {
        curl(env, s, &cert, &format!("/api/manifest?file={name}"), "--http1.1", "curl-manifest-7")?;
    }
    let gib = bytes as f64 / GIB;
    // What encryption alone costs here: the bound on what TLS can add.
    if let Some(aes) = aes_gcm_speed() {
        rep.push(Row::new(
            "7 https",
            "`openssl speed -evp aes-128-gcm`, 16 KiB blocks (TLS's record cipher here)".into(),
            format!("{:.0} MB/s = {:.2} CPU s per GiB of wire", aes / 1e6, GIB / aes),
        ));
    }

    let g_plain = get(env, &plain, name, "get-plain-7")?;
    let g_tls = get_with(env, &tls, name, "get-tls-7", &["--cacert", &cert])?;
    let added = g_tls.server_cpu / g_plain.server_cpu - 1.0;
    rep.push(Row::new(
        "7 https",
        format!("`chunkcast get` of {}: plain HTTP", size(bytes)),
        format!(
            "{}; server {:.2} CPU s/GiB, client {:.2}",
            mbs(bytes, g_plain.wall),
            g_plain.server_cpu / gib,
            g_plain.client_cpu / gib
        ),
    ));
    rep.push(
        Row::new(
            "7 https",
            format!("`chunkcast get` of {}: HTTPS (HTTP/1.1, `--cacert`)", size(bytes)),
            format!(
                "{}; server {:.2} CPU s/GiB ({:+.0}% over plain), client {:.2}",
                mbs(bytes, g_tls.wall),
                g_tls.server_cpu / gib,
                added * 100.0,
                g_tls.client_cpu / gib
            ),
        )
        .target("TLS adds ≤ 25% server CPU", added <= 0.25),
    );

    let path = format!("/events?file={name}");
    let (w0, c0) = curl(env, &plain, &cert, &path, "--http1.1", "curl-sse-plain-7")?;
    for (flag, what) in [("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2")] {
        let (w, c) = curl(env, &tls, &cert, &path, flag, &format!("curl-sse-tls{flag}-7"))?;
        let added = c / c0 - 1.0;
        rep.push(
            Row::new(
                "7 https",
                format!("`curl` reading `/events` of {} over TLS {what}", size(bytes)),
                format!(
                    "{} vs {} plain; server {:.2} CPU s/GiB vs {:.2} plain ({:+.0}%)",
                    mbs(bytes, w),
                    mbs(bytes, w0),
                    c / gib,
                    c0 / gib,
                    added * 100.0
                ),
            )
            .target("TLS adds ≤ 25% server CPU", added <= 0.25),
        );
    }
    Ok(())
}

/// `curl` of `path` on `s` (to /dev/null): its wall time and the server's CPU
/// seconds meanwhile.
fn curl(env: &Env, s: &Server, cacert: &str, path: &str, flag: &str, log: &str) -> Result<(std::time::Duration, f64)> {
    let cpu0 = s.cpu();
    let u = measure::run(
        Command::new("curl")
            .args(["-s", "-f", "-o", "/dev/null", flag, "--cacert", cacert])
            .arg(format!("{}{path}", s.url)),
        &env.log(log),
    )?;
    Ok((u.wall, s.cpu() - cpu0))
}

/// AES-128-GCM bytes per CPU second on 16 KiB blocks, from `openssl speed`
/// (without `-elapsed` it divides by its user CPU time, not the wall clock).
fn aes_gcm_speed() -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", "-evp", "aes-128-gcm"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with("AES-128-GCM") || l.starts_with("aes-128-gcm"))?;
    let last = line.split_whitespace().last()?.trim_end_matches('k');
    last.parse::<f64>().ok().map(|k| k * 1000.0)
}
