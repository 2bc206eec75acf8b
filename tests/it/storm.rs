//! No reconnect storms: 500 clients dropped at once by a server restart come
//! back spread out (the server's jittered `retry:` plus the client's full-
//! jitter backoff), not in one burst. Prints reconnects per 100 ms.

use std::time::Duration;

use crate::common::*;
use chaos_proxy::{Faults, Proxy};
use chunkcast::cli::GetArgs;

#[test]
fn five_hundred_dropped_clients_come_back_spread_out() {
    const CLIENTS: usize = 500;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("paced.bin"), vec![0xA5u8; 8 * 4096]).unwrap();
    let server = TestServer::start(root.path(), &["--max-connections", "2000", "--retry-ms", "1000"]);
    // The chaos proxy, with no faults of its own, as the server's front
    // door: it records when each connection arrives, and drops them all at
    // once and refuses new ones for a while, as a restart does.
    let front = Proxy::start(server.addr, 0, Faults::default());
    let out = tempfile::tempdir().unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let args = GetArgs {
                url: format!("http://{}", front.addr),
                name: Some("paced.bin".into()),
                output: Some(out.path().join(format!("c{n}"))),
                rate: Some(4096), // one chunk a second: still streaming at the drop
                transport: chunkcast::cli::TransportArg::Events,
                stall_timeout: 30,
                retries: Some(20),
                parallel: 1,
                verify_sha256: false,
                quiet: true,
                force: false,
                update: false,
                location: false,
                follow: false,
                connect: Default::default(),
            };
            let get = move || chunkcast::client::get(&(&args).try_into()?, &chunkcast::client::report::Silent);
            std::thread::Builder::new().stack_size(256 * 1024).spawn(get).unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    front.refuse_for(Duration::from_millis(300));
    front.drop_all();
    let dropped_at = std::time::Instant::now();

    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} clients failed, e.g. {}", failed.len(), failed[0]);
    for n in 0..CLIENTS {
        assert_eq!(std::fs::read(out.path().join(format!("c{n}"))).unwrap(), vec![0xA5u8; 8 * 4096]);
    }

    let back = front.accepted_since(dropped_at);
    let mut buckets = vec![0usize; 1 + back.iter().map(|d| d.as_millis() as usize / 100).max().unwrap_or(0)];
    for d in &back {
        buckets[d.as_millis() as usize / 100] += 1;
    }
    let peak = *buckets.iter().max().unwrap();
    let histogram: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
    eprintln!("reconnects per 100 ms after dropping {CLIENTS} clients: [{}]; peak {peak}", histogram.join(" "));
    assert!(back.len() >= CLIENTS, "every client came back");
    // All at once would put ~500 in one bucket; jitter spreads them over
    // seconds.
    assert!(peak <= CLIENTS / 5, "burst of {peak} reconnects in 100 ms");
    let spread = back.iter().max().unwrap().as_millis();
    assert!(spread >= 1000, "reconnects spread over only {spread} ms");
}
