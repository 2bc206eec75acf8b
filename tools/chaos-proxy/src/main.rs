//! The `chaos-proxy` binary: the proxy of this crate, started from the
//! command line and driven by line commands on standard input, for tests
//! written in other languages (the Node tests spawn it as they spawn the
//! server).
//!
//! Standard output: the first line is `chaos-proxy listening on
//! http://ADDR/`; every later line is one JSON object, either a reply
//! (`{"reply": COMMAND, ...}`, one per command, in order) or an event
//! (`{"event": ...}`, see `Event`). Standard input, one command a line:
//!
//! ```text
//! faults {"cut":0.2,"stall":0.1,"corrupt":0.3,"down":0.1,"maxDown":2,"chunks":6,"payloadChars":5464,"stallMaxMs":5000,"tls":false}
//! script [null, {"fault":{"kind":"cut","w":3,"k":0,"n":100},"corrupt":[{"k":1,"at":0,"delta":1}]}]
//! upstream 127.0.0.1:8080     point new connections at another server
//! refuse on|off               reset every new connection (a server that is down)
//! drop                        cut every open connection
//! stall                       stop forwarding on every open connection
//! corrupt ID TIMES            forge chunk ID the next TIMES it passes
//! cut-before-end on|off       cut the next stream just before its `end` event
//! feed-size BYTES             scan in pieces of at most BYTES (0: whole reads)
//! settle                      close the books between two downloads
//! stats                       the counters
//! ledger                      what reached the client, since the last `ledger`
//! idle MS                     wait (up to MS) until no connection is open
//! quit                        (or end of input) stop
//! ```
//!
//! With `"tls": true` (a server speaking HTTPS; give it in `--faults` so
//! that the first connection has it too) connections are forwarded blind:
//! cuts and stalls land at byte counts and TLS records, `corrupt` flips one
//! bit of an encrypted record, and no request, chunk event or ledger entry
//! is seen (see `chaos_proxy::blind`). The listening line still says
//! `http://`: its address is what counts.
//!
//! In a script, `null` refuses a connection; `w` is the index of the fault's
//! place in `WHERE` (0 = `n` bytes into the wire, 3 = `n` characters into
//! the payload of chunk event `k`, ...).

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use chaos_proxy::{Corrupt, Event, Faults, Kind, Options, Plan, Point, Proxy, Step};
use clap::Parser;
use serde::Deserialize;
use serde_json::json;

/// A seeded, fault-injecting TCP proxy in front of a chunkcast server.
#[derive(Parser, Debug)]
#[command(name = "chaos-proxy", version)]
struct Args {
    /// The server: HOST:PORT, or http:// or https://HOST:PORT/.
    #[arg(long)]
    upstream: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Seed of the fault planner.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fault rates and aims, as JSON (as the `faults` command takes them).
    #[arg(long, default_value = "{}")]
    faults: String,
    /// Feed the scanner in pieces of at most this many bytes (0: whole reads).
    #[arg(long, default_value_t = 0)]
    feed_size: usize,
    /// Also report plans, chunk events and faults.
    #[arg(long)]
    verbose: bool,
}

/// Errors are messages for the test that drives the proxy.
type Result<T> = std::result::Result<T, String>;

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("chaos-proxy: error: {e}");
        std::process::exit(2);
    }
}

/// One line on standard output (events come from many threads), written
/// whole: one write, never a line split around another's.
fn say(value: &serde_json::Value) {
    let line = format!("{value}\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

fn run(args: Args) -> Result<()> {
    let upstream = resolve(&args.upstream)?;
    let faults = parse_faults(&args.faults)?;
    let options = Options {
        bind: Some(args.bind),
        feed_size: args.feed_size,
        events: Some(Box::new(|e: Event| say(&serde_json::to_value(e).unwrap_or_default()))),
        verbose: args.verbose,
    };
    let proxy = Proxy::start_with(upstream, args.seed, faults, options).map_err(|e| format!("{}: {e}", args.bind))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "chaos-proxy listening on http://{}/", proxy.addr);
        let _ = out.flush();
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        if cmd == "quit" {
            break;
        }
        let reply = match command(&proxy, cmd, rest.trim()) {
            Ok(mut v) => {
                v["reply"] = json!(cmd);
                v
            }
            Err(e) => json!({ "reply": cmd, "error": e }),
        };
        say(&reply);
    }
    // Exit without waiting for the connections' threads: the kernel closes
    // every socket.
    std::process::exit(0)
}

fn command(proxy: &Proxy, cmd: &str, rest: &str) -> Result<serde_json::Value> {
    let on = |arg: &str| match arg {
        "on" | "" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, got {arg:?}")),
    };
    Ok(match cmd {
        "faults" => {
            proxy.set_faults(parse_faults(rest)?);
            json!({})
        }
        "script" => {
            proxy.script(&parse_script(rest)?);
            json!({})
        }
        "upstream" => {
            proxy.set_upstream(resolve(rest)?);
            json!({})
        }
        "refuse" => {
            proxy.refuse(on(rest)?);
            json!({})
        }
        "drop" => json!({ "dropped": proxy.drop_all() }),
        "stall" => {
            proxy.stall_all();
            json!({})
        }
        "corrupt" => {
            let mut it = rest.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(id)), Some(Ok(times)), None) = (it.next(), it.next(), it.next()) else {
                return Err("usage: corrupt ID TIMES".into());
            };
            proxy.forge(id, times.min(u32::MAX as u64) as u32);
            json!({})
        }
        "cut-before-end" => {
            proxy.cut_before_end(on(rest)?);
            json!({})
        }
        "feed-size" => {
            proxy.set_feed_size(rest.parse().map_err(|_| "usage: feed-size BYTES".to_owned())?);
            json!({})
        }
        "settle" => {
            proxy.settle();
            json!({})
        }
        "stats" => json!({ "stats": proxy.stats() }),
        "ledger" => json!({ "ledger": proxy.take_ledger() }),
        "idle" => {
            let ms: u64 = rest.parse().map_err(|_| "usage: idle MS".to_owned())?;
            json!({ "idle": proxy.wait_idle(Duration::from_millis(ms)) })
        }
        _ => return Err(format!("unknown command {cmd:?}")),
    })
}

/// HOST:PORT, or an http:// or https:// URL of one.
fn resolve(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    let hostport = s.strip_prefix("https://").or(s.strip_prefix("http://")).unwrap_or(s).trim_end_matches('/');
    match hostport.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => Ok(addr),
        _ => Err(format!("cannot resolve the upstream {s:?} (expected HOST:PORT or http(s)://HOST:PORT/)")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultsIn {
    #[serde(default)]
    cut: f64,
    #[serde(default)]
    stall: f64,
    #[serde(default)]
    corrupt: f64,
    #[serde(default)]
    down: f64,
    #[serde(default)]
    max_down: u32,
    #[serde(default)]
    chunks: u64,
    #[serde(default)]
    payload_chars: usize,
    stall_max_ms: Option<u64>,
    #[serde(default)]
    tls: bool,
}

fn parse_faults(s: &str) -> Result<Faults> {
    let f: FaultsIn = serde_json::from_str(if s.is_empty() { "{}" } else { s }).map_err(|e| format!("faults: {e}"))?;
    let d = Faults::default();
    Ok(Faults {
        cut: f.cut,
        stall: f.stall,
        corrupt: f.corrupt,
        down: f.down,
        max_down: f.max_down.max(1),
        chunks: f.chunks,
        payload_chars: f.payload_chars,
        stall_max: f.stall_max_ms.map_or(d.stall_max, Duration::from_millis),
        tls: f.tls,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanIn {
    fault: Option<FaultIn>,
    #[serde(default)]
    corrupt: Vec<CorruptIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultIn {
    kind: String,
    w: usize,
    #[serde(default)]
    k: u64,
    #[serde(default)]
    n: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorruptIn {
    k: u64,
    #[serde(default)]
    at: usize,
    #[serde(default = "one")]
    delta: usize,
}

fn one() -> usize {
    1
}

fn parse_script(s: &str) -> Result<Vec<Step>> {
    let steps: Vec<Option<PlanIn>> = serde_json::from_str(s).map_err(|e| format!("script: {e}"))?;
    steps
        .into_iter()
        .map(|step| {
            let Some(p) = step else { return Ok(Step::Refuse) };
            let fault = match p.fault {
                None => None,
                Some(f) => {
                    let kind = match f.kind.as_str() {
                        "cut" => Kind::Cut,
                        "stall" => Kind::Stall,
                        k => return Err(format!("script: unknown fault kind {k:?} (cut or stall)")),
                    };
                    let Some(point) = Point::from_index(f.w, f.k, f.n) else {
                        return Err(format!("script: no fault place {} (0..=5)", f.w));
                    };
                    Some((kind, point))
                }
            };
            let corrupt: VecDeque<Corrupt> =
                p.corrupt.into_iter().map(|c| Corrupt { k: c.k, at: c.at, delta: c.delta }).collect();
            Ok(Step::Plan(Plan { fault, corrupt }))
        })
        .collect()
}
