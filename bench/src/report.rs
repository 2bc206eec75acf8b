//! The results table: rows with their issue-5 target and whether it is met,
//! rendered as Markdown for stdout and `docs/BENCHMARKS.md`.

use crate::{mbs, measure, size, Get, GIB};

pub struct Row {
    section: &'static str,
    what: String,
    result: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    pub fn new(section: &'static str, what: String, result: String) -> Row {
        Row { section, what, result, target: "—".into(), met: None }
    }

    pub fn target(mut self, target: &str, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }
}

pub struct Report {
    rows: Vec<Row>,
    big: u64,
    pub openssl_wall: f64,
    pub openssl_cpu_gib: f64,
    pub curl_mbs: f64,
    pub load_start: String,
    pub load_end: String,
}

impl Report {
    pub fn new(big: u64) -> Report {
        Report {
            rows: Vec::new(),
            big,
            openssl_wall: f64::NAN,
            openssl_cpu_gib: f64::NAN,
            curl_mbs: f64::NAN,
            load_start: String::new(),
            load_end: String::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Payload speed (against curl), server and client CPU (against openssl).
    pub fn stream_rows(&mut self, section: &'static str, what: &str, bytes: u64, g: &Get, targets: bool) {
        let gib = bytes as f64 / GIB;
        let mb_s = bytes as f64 / g.wall.as_secs_f64() / 1e6;
        let pct = 100.0 * mb_s / self.curl_mbs;
        let (srv, cli) = (g.server_cpu / gib / self.openssl_cpu_gib, g.client_cpu / gib / self.openssl_cpu_gib);
        let rows = [
            (
                Row::new(section, format!("{what}: payload"), format!("{} = {pct:.0}% of curl", mbs(bytes, g.wall))),
                "≥ 25% of curl",
                pct >= 25.0,
            ),
            (
                Row::new(
                    section,
                    "… server CPU".into(),
                    format!("{:.2} s/GiB = {srv:.2}× openssl", g.server_cpu / gib),
                ),
                "≤ 1.5× openssl",
                srv <= 1.5,
            ),
            (
                Row::new(
                    section,
                    "… client CPU".into(),
                    format!("{:.2} s/GiB = {cli:.2}× openssl", g.client_cpu / gib),
                ),
                "≤ 2× openssl",
                cli <= 2.0,
            ),
        ];
        for (row, target, met) in rows {
            self.push(if targets { row.target(target, met) } else { row });
        }
    }

    pub fn header(quick: bool) -> String {
        if quick {
            "(`--quick`: small sizes and few connections; not comparable with the targets)\n\n".into()
        } else {
            String::new()
        }
    }

    pub fn markdown(&self, header: &str) -> String {
        let mut md = String::from(header);
        md.push_str("| section | measurement | result | target | met |\n|---|---|---|---|---|\n");
        // In section order, whatever order the run measured them in.
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.section);
        for r in rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            md.push_str(&format!("| {} | {} | {} | {} | {met} |\n", r.section, r.what, r.result, r.target));
        }
        let (met, missed) = (
            self.rows.iter().filter(|r| r.met == Some(true)).count(),
            self.rows.iter().filter(|r| r.met == Some(false)).count(),
        );
        md.push_str(&format!("\nTargets met: {met} of {}.\n", met + missed));
        md
    }

    /// The whole `docs/BENCHMARKS.md`.
    pub fn document(&self, table: &str, quick: bool) -> String {
        let cmd = if quick { "scripts/bench --quick --write" } else { "scripts/bench --write" };
        format!(
            "# Benchmarks\n\n\
             Written by `{cmd}` (`bench/`); the targets are those of issues 5, 13 and 22.\n\n\
             - Date: {date}\n\
             - CPU: {cpu}; memory {mem}\n\
             - Commit: {commit}\n\
             - Load average (1, 5, 15 min) before the run: {l0}; after: {l1}\n\
             - Data: {big} of random bytes, a UTF-8 text file (1- to 4-byte characters) and an escape-heavy text (13% of its bytes need a JSON escape), generated per run.\n\n\
             {table}\n\
             ## How each figure is measured\n\n\
             - MB/s are decimal megabytes of **payload** (file bytes) per second of wall time; the SSE wire carries about 4/3 of that.\n\
             - CPU seconds are user + system: for `openssl`, `curl` and `chunkcast get` from `wait4`, for the server from\n  `/proc/<pid>/stat` before and after. \"× openssl\" divides by `openssl dgst -sha256`'s CPU seconds per GiB on the same file.\n\
             - openssl and curl: best of two runs (the file is in the page cache for every figure).\n\
             - Index: `GET /api/manifest` on a server with an empty `--index-dir` (first time), then on a restarted server with the\n  same directory (cache hit); the ratio divides by openssl's wall time.\n\
             - The plain SSE reader is in-process and only de-chunks HTTP and counts bytes, so its row shows the server's cost alone.\n\
             - Concurrent downloads: in-process threads, each parsing the SSE stream, decoding base64 and checking every chunk's SHA-256\n  against the manifest, i.e. the verifying work of `chunkcast get` without writing 100 GiB to disk. Runs are cut after the\n  time limit shown, and the aggregate counts verified bytes only. Peak RSS is the server's `VmHWM` since its start.\n\
             - Slow streams: `GET /events?...&rate=64` on one tokio thread; the server sends the first chunk at once and then paces, so\n  each connection is idle after its first event (keep-alive comments only). RSS per connection is (VmRSS at the end of the\n  hold − VmRSS before opening) / connections. The open-file limit is raised for the benchmark and its children only.\n\
             - Resume: a new connection for each probe; time from connect to the first bytes of the first `event: chunk` (and to the blank\n  line that completes it), index warm; random chunks of the {big} file.\n\
             - Chunk size: a server restarted (and re-indexed) per size; \"plain\" is the byte-counting reader, \"get\" is `chunkcast get`.\n\
             - Live text: a server with `--publish --seal-ms 1`; a producer writes one piece every 100 ms on one chunked `POST`, and\n  viewers (raw sockets on one tokio thread) note when each chunk event is complete: write → viewer time, which is the\n  seal-to-viewer latency plus at most 1 ms. RSS per viewer is the server's growth once every viewer has its first chunk.\n  Publishing: one `POST` sending text as fast as it can; every 256 KiB chunk is flushed (`fdatasync`) with its layout record.\n",
            date = measure::now_utc(),
            cpu = measure::cpu_model(),
            mem = measure::memory(),
            commit = measure::commit(),
            l0 = self.load_start,
            l1 = self.load_end,
            big = size(self.big),
        )
    }
}
