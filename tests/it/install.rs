//! A self-contained binary: copied alone into an empty directory, far from
//! the sources, it serves the whole page from its own embedded copy, with
//! ETags that revalidate; `--web-dir` overrides it, and a wrong one stops the
//! server at startup.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Copying a binary (a descriptor open for writing) and starting one (fork,
/// then exec) must not overlap: a child forked while another test's copy is
/// open inherits that descriptor until its own exec, and exec'ing the copy
/// meanwhile fails with "Text file busy". Copies take this lock to write,
/// starts to read.
static FORKING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The binary, copied into a fresh directory of its own.
fn lone_binary() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("chunkcast");
    let _copying = FORKING.write().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_chunkcast"), &bin).unwrap();
    (dir, bin)
}

/// Runs `cmd` to completion, started outside any copy (see [`FORKING`]).
fn output(cmd: &mut Command) -> std::process::Output {
    let _starting = FORKING.read().unwrap();
    cmd.output().unwrap()
}

/// Starts `bin serve ARGS` with `cwd` as working directory and reads the URL
/// it prints.
fn serve(bin: &Path, cwd: &Path, args: &[&str]) -> (Child, String) {
    let starting = FORKING.read().unwrap();
    let mut child = Command::new(bin)
        .args(["serve", "--no-index-dir"])
        .args(if args.contains(&"--bind") { &[][..] } else { &["--bind", "127.0.0.1:0"][..] })
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(starting);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split(" at ").nth(1).and_then(|s| s.split_whitespace().next()).expect("a URL on the startup line");
    let url = url.trim_end_matches('/').to_owned();
    (child, url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

#[test]
fn the_binary_alone_serves_the_full_page() {
    let (dir, bin) = lone_binary();
    let root = crate::common::fixture_root();
    let (mut child, url) = serve(&bin, dir.path(), &["--root", root.path().to_str().unwrap()]);
    let agent = agent();
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");

    let mut index = agent.get(format!("{url}/")).call().unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(index.body_mut().read_to_vec().unwrap(), std::fs::read(web.join("index.html")).unwrap());

    let mut served = 0;
    for path in chunkcast::server::assets::paths() {
        let mut res = agent.get(format!("{url}/{path}")).call().unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-cache", "{path}");
        if path.ends_with(".js") {
            assert_eq!(res.headers()["content-type"], "text/javascript; charset=utf-8", "{path}");
        }
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(res.body_mut().read_to_vec().unwrap(), std::fs::read(web.join(path)).unwrap(), "{path}");
        // Revalidation: the same bytes answer 304 with no body.
        let again = agent.get(format!("{url}/{path}")).header("If-None-Match", &etag).call().unwrap();
        assert_eq!(again.status(), 304, "{path}");
        let stale = agent.get(format!("{url}/{path}")).header("If-None-Match", "\"0000\"").call().unwrap();
        assert_eq!(stale.status(), 200, "{path}");
        served += 1;
    }
    assert!(served >= 4, "index.html, app.js, chunkcast.js, style.css at least: {served}");

    let missing = agent.get(format!("{url}/no-such-page.js")).call().unwrap();
    assert_eq!(missing.status(), 404);
    // The API still answers next to the page.
    assert_eq!(agent.get(format!("{url}/api/files")).call().unwrap().status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn web_dir_overrides_the_embedded_page() {
    let (dir, bin) = lone_binary();
    let root = crate::common::fixture_root();
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html><title>dev copy</title>").unwrap();
    let args = ["--root", root.path().to_str().unwrap(), "--web-dir", web.path().to_str().unwrap()];
    let (mut child, url) = serve(&bin, dir.path(), &args);
    let mut res = agent().get(format!("{url}/")).call().unwrap();
    assert_eq!(res.body_mut().read_to_string().unwrap(), "<!doctype html><title>dev copy</title>");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_missing_web_dir_is_a_startup_error() {
    let (dir, bin) = lone_binary();
    let out = output(
        Command::new(&bin)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-index-dir", "--web-dir", "no-such-dir"])
            .current_dir(dir.path()),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--web-dir no-such-dir is not a directory with an index.html"), "{stderr}");
}

#[test]
fn root_as_a_positional_argument_or_the_current_directory() {
    let (dir, bin) = lone_binary();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("only-here.txt"), "positional").unwrap();
    let agent = agent();
    let names = |url: &str| -> String {
        agent.get(format!("{url}/api/files")).call().unwrap().body_mut().read_to_string().unwrap()
    };

    let (mut child, url) = serve(&bin, dir.path(), &[root.path().to_str().unwrap()]);
    assert!(names(&url).contains("only-here.txt"));
    child.kill().unwrap();
    child.wait().unwrap();

    // No ROOT at all: the working directory, as miniserve and dufs do.
    let (mut child, url) = serve(&bin, root.path(), &[]);
    assert!(names(&url).contains("only-here.txt"));
    child.kill().unwrap();
    child.wait().unwrap();

    let both = output(Command::new(&bin).args(["serve", "a", "--root", "b"]));
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"), "{both:?}");
}

#[test]
fn bind_takes_host_names_and_ipv6() {
    use std::net::ToSocketAddrs as _;
    let (dir, bin) = lone_binary();
    let root = crate::common::fixture_root();
    let root = root.path().to_str().unwrap();
    let agent = agent();

    // A name: every address it resolves to, on one port.
    let (mut child, url) = serve(&bin, dir.path(), &[root, "--bind", "localhost:0"]);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let addrs: Vec<_> = ("localhost", port).to_socket_addrs().unwrap().collect();
    assert!(!addrs.is_empty());
    for addr in addrs {
        let res = agent.get(format!("http://{addr}/healthz")).call().unwrap();
        assert_eq!(res.status(), 200, "{addr}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // An IPv6 literal.
    let (mut child, url) = serve(&bin, dir.path(), &[root, "--bind", "[::1]:0"]);
    assert!(url.starts_with("http://[::1]:"), "{url}");
    assert_eq!(agent.get(format!("{url}/healthz")).call().unwrap().status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();

    // A name that does not resolve: a clear error at once.
    let out = output(Command::new(&bin).args(["serve", root, "--bind", "no-such-host.invalid:8080"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot use \"no-such-host.invalid:8080\" as an address to listen on"), "{stderr}");
}
