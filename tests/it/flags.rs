//! Server flags are checked before anything binds: a value out of range is
//! a clear error naming the flag, and the binary exits nonzero.

use std::process::Command;

use chunkcast::cli::ServeArgs;
use chunkcast::Config;

/// `Config::try_from` on `serve` plus `flags`, serving a fresh directory.
fn config(flags: &[&str]) -> Result<Config, String> {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec!["serve", "--no-index-dir", "--bind", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let mut serve = ServeArgs::parse_from(args);
    serve.root = Some(root.path().to_owned());
    Config::try_from(serve).map_err(|e| e.to_string())
}

#[track_caller]
fn refused(flags: &[&str], names: &str) {
    let err = config(flags).err().unwrap_or_else(|| panic!("{flags:?} was accepted"));
    assert!(err.contains(names), "{flags:?}: {err:?} should name {names}");
}

#[test]
fn retry_ms_is_bounded_so_the_jitter_cannot_overflow() {
    refused(&["--retry-ms", "0"], "--retry-ms");
    refused(&["--retry-ms", "3600001"], "--retry-ms");
    refused(&["--retry-ms", &u64::MAX.to_string()], "--retry-ms");
    assert_eq!(config(&["--retry-ms", "1"]).unwrap().retry_ms, 1);
    assert_eq!(config(&["--retry-ms", "3600000"]).unwrap().retry_ms, 3_600_000);
}

#[test]
fn max_connections_zero_is_refused() {
    refused(&["--max-connections", "0"], "--max-connections");
    refused(&["--max-connections", &(1usize << 21).to_string()], "--max-connections");
    assert_eq!(config(&["--max-connections", "1"]).unwrap().max_connections, 1);
    assert!(config(&[]).unwrap().max_connections >= 1, "the default is sized for the machine");
}

#[test]
fn keep_alive_out_of_range_is_an_error_not_a_silent_clamp() {
    refused(&["--keep-alive", "0"], "--keep-alive");
    refused(&["--keep-alive", "3601"], "--keep-alive");
    refused(&["--keep-alive", &u64::MAX.to_string()], "--keep-alive");
    assert_eq!(config(&["--keep-alive", "1"]).unwrap().keep_alive.as_secs(), 1);
}

#[test]
fn max_range_and_chunk_size_are_bounded() {
    refused(&["--max-range", "0"], "--max-range");
    refused(&["--max-range", &((1u64 << 32) + 1).to_string()], "--max-range");
    assert_eq!(config(&["--max-range", "1"]).unwrap().max_range, 1);
    refused(&["--chunk-size", "4095"], "--chunk-size");
    refused(&["--chunk-size", "17M"], "--chunk-size");
    assert_eq!(config(&["--chunk-size", "16M"]).unwrap().chunk_size, 16 << 20);
}

#[test]
fn the_binary_prints_the_error_and_exits_nonzero_before_binding() {
    let root = tempfile::tempdir().unwrap();
    // Port 1 would need privileges: a server that got as far as binding
    // would fail differently, so the message proves the check came first.
    for (flag, value) in [
        ("--retry-ms", "0"),
        ("--retry-ms", "18446744073709551615"),
        ("--max-connections", "0"),
        ("--keep-alive", "0"),
        ("--max-range", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
            .args(["serve", "--no-index-dir", "--bind", "127.0.0.1:1", flag, value])
            .arg(root.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(stderr.contains(&format!("chunkcast: error: {flag} must be between")), "{flag} {value}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing served: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn a_port_in_use_is_one_line_that_says_how_to_pick_another() {
    let root = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_chunkcast"))
        .args(["serve", "--no-index-dir", "-p", &port])
        .arg(root.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim(), format!("chunkcast: error: cannot listen on 127.0.0.1:{port}: another program uses that port; pick another with -p PORT"));
}

#[test]
fn a_command_line_clap_refuses_is_one_line_with_status_2_and_help_still_prints() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_chunkcast")).args(args).output().unwrap();
    for (args, said) in [
        (&["get", "--foo"][..], "chunkcast: error: unexpected argument '--foo' found; tip: a similar argument exists: '--follow'; see chunkcast get --help"),
        (&["serve", "--tls-cert", "c.pem"][..], "chunkcast: error: the following required arguments were not provided: --tls-key <FILE>; see chunkcast serve --help"),
        (&["get", "http://x/", "--parallel", "abc"][..], "chunkcast: error: invalid value 'abc' for '--parallel <PARALLEL>': invalid digit found in string; see chunkcast get --help"),
        (&["frobnicate"][..], "chunkcast: error: unrecognized subcommand 'frobnicate'; see chunkcast --help"),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), said, "{args:?}");
    }
    let help = run(&["get", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: chunkcast get"));
}
