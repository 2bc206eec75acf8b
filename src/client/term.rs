//! The terminal side of `chunkcast get` and `chunkcast publish` (used by
//! the binary, never by the library's download code): a [`Reporter`] that
//! draws an `indicatif` bar (a plain line of bytes and speed for a live
//! text, whose end is unknown), prints retries and notices, the summary,
//! and what Ctrl-C leaves behind.
//!
//! Output rules: everything goes to standard error (standard output may be
//! the download itself, `-o -`). When standard error is not a terminal the
//! bar is hidden, and retries and notices are printed as lines. One unit
//! system: sizes in binary units (KiB, MiB, GiB) and speeds in MiB/s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::GetConfig;
use super::error::ClientError;
use super::output::Output;
use super::report::Summary;
use super::report::{Reporter, Retry, Start};

/// Speed is averaged over this window: long enough to be steady, short
/// enough that a stall shows within seconds.
const WINDOW: Duration = Duration::from_secs(3);
/// No byte for this long (and no retry under way) reads as a stall.
const STALL: Duration = Duration::from_secs(2);

pub struct Term {
    bar: ProgressBar,
    quiet: bool,
    /// `get` into this output, or `publish` (`None`).
    output: Option<Output>,
    meter: Arc<Mutex<Meter>>,
}

/// What the bar's status field is computed from, at every redraw.
struct Meter {
    /// When this run's first byte could arrive (the manifest is in).
    started: Option<Instant>,
    /// (time, bytes verified in this run), at most one sample per 100 ms.
    samples: VecDeque<(Instant, u64)>,
    run_bytes: u64,
    verified: u64,
    size: u64,
    last_byte: Option<Instant>,
    retrying: Option<(String, Instant)>,
    /// A live text: no size to reach, so bytes and speed only.
    live: bool,
    /// Shown after them: `producer interrupted`.
    note: Option<&'static str>,
}

impl Meter {
    /// Bytes per second over the last [`WINDOW`], this run's bytes only (a
    /// resumed part file's bytes never count as speed).
    fn speed(&self, now: Instant) -> f64 {
        let Some(started) = self.started else { return 0.0 };
        let from = now.checked_sub(WINDOW).map_or(started, |t| t.max(started));
        // This run's bytes up to `from`: the last sample at or before it.
        let before = match from == started {
            true => 0,
            false => self.samples.iter().rev().find(|(t, _)| *t <= from).map_or(0, |(_, b)| *b),
        };
        let secs = now.duration_since(from).as_secs_f64();
        if secs < 0.2 {
            return 0.0;
        }
        (self.run_bytes - before) as f64 / secs
    }

    fn status(&self, now: Instant) -> String {
        if let Some((why, at)) = &self.retrying {
            let left = at.saturating_duration_since(now);
            return if left.is_zero() {
                format!("reconnecting: {why}")
            } else {
                format!("reconnecting in {}: {why}", secs(left))
            };
        }
        if self.live {
            // A quiet producer is no stall: the state event says when it went.
            let note = self.note.map_or(String::new(), |n| format!(", {n}"));
            return format!("{} {}{note}", size(self.verified), per_second(self.speed(now)));
        }
        let quiet_for = self.last_byte.or(self.started).map(|t| now.duration_since(t));
        if self.verified < self.size && quiet_for.is_some_and(|d| d >= STALL) {
            return format!("stalled: nothing received for {}", secs(quiet_for.unwrap_or_default()));
        }
        let speed = self.speed(now);
        let sizes = format!("{}/{}", size(self.verified), size(self.size));
        let eta = if speed > 0.0 {
            let left = Duration::from_secs_f64((self.size - self.verified) as f64 / speed);
            format!(" ETA {}", clock(left))
        } else {
            String::new()
        };
        format!("{sizes} {}{eta}", per_second(speed))
    }
}

impl Term {
    pub fn new(config: &GetConfig, quiet: bool) -> Arc<Term> {
        Self::with_output(Some(config.output.clone()), quiet)
    }

    /// The reporter of `chunkcast publish`.
    pub fn for_publish(quiet: bool) -> Arc<Term> {
        Self::with_output(None, quiet)
    }

    fn with_output(output: Option<Output>, quiet: bool) -> Arc<Term> {
        // Hidden until the download starts: before the manifest is in there
        // is nothing to draw, and retries are printed as lines.
        let bar = ProgressBar::hidden();
        let meter = Arc::new(Mutex::new(Meter {
            started: None,
            samples: VecDeque::new(),
            run_bytes: 0,
            verified: 0,
            size: 0,
            last_byte: None,
            retrying: None,
            live: false,
            note: None,
        }));
        // At most 80 columns: a name of up to 18, `100% [bar]`, then
        // `430.1 MiB/1.0 GiB 12.3 MiB/s ETA 1m05s` (or the state in words).
        if let Some(style) = style(&meter, "{prefix} {percent:>3}% [{bar:10}] {status}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Arc::new(Term { bar, quiet, output, meter })
    }

    /// A line on standard error, above the bar when there is one.
    fn line(&self, text: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("chunkcast: {text}"));
        }
    }

    /// The summary (or nothing, when quiet); the bar is cleared either way.
    pub fn finish(&self, result: &Result<Summary, ClientError>) {
        self.bar.finish_and_clear();
        match result {
            Ok(s) if s.already_there => {
                self.line(&format!("{} already is this version ({}); nothing to download", s.path.display(), proof(s)));
            }
            Ok(s) => {
                self.line(&format!(
                    "{}: {} verified ({}) in {}, {}; {} reconnects, {} corrupt chunks detected, {} chunks refilled, {} resumed from disk",
                    shown(&s.path),
                    size(s.bytes),
                    proof(s),
                    secs(Duration::from_secs_f64(s.seconds)),
                    per_second(s.bytes_this_run as f64 / s.seconds.max(1e-9)),
                    s.reconnects,
                    s.corrupt_chunks,
                    s.refilled_chunks,
                    s.resumed_chunks
                ));
                // Lines of their own: scripts read the line above as it is.
                if let Some(delta) = delta_line(s) {
                    self.line(&delta);
                }
            }
            Err(ClientError::GaveUp(..) | ClientError::Unreachable { .. }) => {
                if let Some(hint) = self.resume_hint() {
                    self.line(&hint);
                }
            }
            Err(_) => {}
        }
    }

    /// The last line of `publish` (or nothing, when quiet); the bar is
    /// cleared either way.
    pub fn finish_publish(&self, result: &Result<crate::protocol::Publication, ClientError>) {
        self.bar.finish_and_clear();
        match result {
            Ok(p) => self.line(&format!(
                "published {}: {} bytes, {} chunk{}, root {}",
                crate::logsafe::Esc(&p.file),
                p.offset,
                p.chunks,
                if p.chunks == 1 { "" } else { "s" },
                crate::logsafe::Esc(&p.root)
            )),
            Err(ClientError::GaveUp(..) | ClientError::Unreachable { .. }) => {
                if let Some(hint) = self.resume_hint() {
                    self.line(&hint);
                }
            }
            Err(_) => {}
        }
    }

    /// What running the same command again does, when a download stops.
    fn resume_hint(&self) -> Option<String> {
        let verified = lock(&self.meter).verified;
        let Some(output) = &self.output else {
            // Publishing: nothing acknowledged is nothing to resume.
            return (verified > 0).then(|| {
                format!(
                    "the server has {} of it; run the same command with --resume and the same input to continue",
                    indicatif::BinaryBytes(verified)
                )
            });
        };
        match output {
            Output::File { path, .. } if verified > 0 => Some(format!(
                "{} verified so far are kept in {}; run the same command again to resume",
                indicatif::BinaryBytes(verified),
                super::part::with_suffix(path, ".part").display()
            )),
            Output::File { .. } => None,
            _ => Some(format!("{} cannot resume: running the same command again starts over", output.display())),
        }
    }

    /// On Ctrl-C, clears the bar, says what running the same command again
    /// does, and exits with status 130 (what shells expect after SIGINT).
    /// A part file needs no cleanup: every chunk on disk is re-verified on
    /// resume.
    pub fn exit_on_ctrl_c(self: &Arc<Self>) {
        let term = Arc::clone(self);
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            if rt.block_on(tokio::signal::ctrl_c()).is_err() {
                return;
            }
            term.bar.finish_and_clear();
            let hint = term.resume_hint().unwrap_or_else(|| "run the same command again to start over".into());
            eprintln!("\nchunkcast: interrupted; {hint}");
            std::process::exit(130);
        });
    }
}

impl Reporter for Term {
    fn start(&self, start: &Start<'_>) {
        let mut meter = lock(&self.meter);
        meter.started = Some(Instant::now());
        meter.size = start.size;
        meter.verified = start.have;
        meter.retrying = None;
        meter.live = start.live;
        drop(meter);
        if start.live {
            // No end to measure against: the name, the word, bytes and speed.
            let word = if self.output.is_some() { "live" } else { "published" };
            if let Some(style) = style(&self.meter, &format!("{{prefix}} {word}: {{status}}")) {
                self.bar.set_style(style);
            }
        }
        // Everything drawn is set before the bar is shown, so its first
        // frame has the name.
        self.bar.set_length(start.size);
        self.bar.set_position(start.have);
        self.bar.set_prefix(short_name(&crate::logsafe::Esc(start.name).to_string(), NAME_COLUMNS));
        if !self.quiet {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.enable_steady_tick(Duration::from_millis(250));
    }

    fn progress(&self, verified: u64, new: u64) {
        let now = Instant::now();
        let mut meter = lock(&self.meter);
        meter.run_bytes += new;
        meter.verified = verified;
        meter.last_byte = Some(now);
        meter.retrying = None;
        let run = meter.run_bytes;
        if meter.samples.back().is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(100)) {
            meter.samples.push_back((now, run));
        }
        while meter.samples.len() > 2 && meter.samples[1].0 + WINDOW * 2 < now {
            meter.samples.pop_front();
        }
        drop(meter);
        self.bar.set_position(verified);
    }

    fn retry(&self, r: &Retry<'_>) {
        let when = if r.delay < Duration::from_millis(50) { "now".to_owned() } else { format!("in {}", secs(r.delay)) };
        let text = format!("{}; retrying {when}, attempt {} of {}", r.why, r.attempt, r.of);
        lock(&self.meter).retrying =
            Some((format!("{} (attempt {} of {})", r.why, r.attempt, r.of), Instant::now() + r.delay));
        // The bar shows the state while it is drawn; otherwise one line each.
        if self.bar.is_hidden() {
            self.line(&text);
        }
    }

    fn notice(&self, message: &str) {
        self.line(message);
    }

    fn live_state(&self, state: crate::protocol::LiveState) {
        let note = (state == crate::protocol::LiveState::Interrupted).then_some("producer interrupted");
        // The manifest and the stream's `meta` both say it: once is news.
        let was = std::mem::replace(&mut lock(&self.meter).note, note);
        if self.bar.is_hidden() && was != note {
            if let Some(note) = note {
                self.line(note);
            }
        }
    }
}

/// A bar style drawing `template`, whose `{status}` the meter writes.
fn style(meter: &Arc<Mutex<Meter>>, template: &str) -> Option<ProgressStyle> {
    let meter = Arc::clone(meter);
    let status = move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = w.write_str(&lock(&meter).status(Instant::now()));
    };
    Some(ProgressStyle::with_template(template).ok()?.with_key("status", status))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Columns the progress line gives the file's name.
const NAME_COLUMNS: usize = 18;

/// `name`, or its start and end around `…` when it is longer than `max`.
fn short_name(name: &str, max: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= max {
        return name.to_owned();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let (start, end): (String, String) = (chars[..head].iter().collect(), chars[chars.len() - tail..].iter().collect());
    format!("{start}…{end}")
}

/// Bytes in binary units with one decimal: `0 B`, `812 B`, `20.5 KiB`,
/// `1.0 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A speed in the unit that suits it: `0 B/s`, `3.2 KiB/s`, `12.3 MiB/s`.
fn per_second(bytes_per_s: f64) -> String {
    format!("{}/s", size(bytes_per_s.max(0.0) as u64))
}

/// `45s`, `2m05s`, `1h04m`: an ETA in a few columns.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `0.4 s`, `2 s`, `15 s`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.95 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// What `get` reused rather than fetched, when there was something to
/// reuse: `reused 3998 of 4000 chunks (15.6 MiB) from the existing file;
/// fetched 2 (300.0 KiB)` after `--update`, and how many verified chunks a
/// change on the server left standing.
fn delta_line(s: &Summary) -> Option<String> {
    let mut parts = Vec::new();
    if s.updated {
        parts.push(format!(
            "reused {} of {} chunks ({}) from the existing file",
            s.reused_chunks,
            s.chunks,
            size(s.reused_bytes)
        ));
    }
    if s.new_versions > 0 {
        let times = if s.new_versions == 1 { "once".to_owned() } else { format!("{} times", s.new_versions) };
        parts.push(format!(
            "the file changed on the server {times} during the download; kept {} verified chunks it repeated",
            s.kept_chunks
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("{}; fetched {} ({})", parts.join("; "), s.fetched_chunks, size(s.fetched_bytes)))
}

/// Where the bytes went, as a person reads it: `-` is standard output.
fn shown(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "standard output".into()
    } else {
        path.display().to_string()
    }
}

/// What `get` proved, in the words of the summary: the whole file's SHA-256
/// when it computed one (`--verify-sha256`), else the root its chunk
/// digests hash to. Never a digest it only read from the server.
fn proof(s: &Summary) -> String {
    match &s.sha256 {
        Some(sha) => format!("sha256 {sha}"),
        None => format!("root {}, every chunk's SHA-256 checked", s.root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(size: u64, have: u64, t0: Instant) -> Meter {
        Meter {
            started: Some(t0),
            samples: VecDeque::new(),
            run_bytes: 0,
            verified: have,
            size,
            last_byte: None,
            retrying: None,
            live: false,
            note: None,
        }
    }

    /// Feeds `rate` bytes per second in 100 ms steps for `secs`.
    fn feed(m: &mut Meter, from: Instant, secs: u64, rate: u64) -> Instant {
        let mut now = from;
        for _ in 0..secs * 10 {
            now += Duration::from_millis(100);
            m.run_bytes += rate / 10;
            m.verified += rate / 10;
            m.last_byte = Some(now);
            m.samples.push_back((now, m.run_bytes));
        }
        now
    }

    #[test]
    fn speed_counts_only_this_runs_bytes() {
        let t0 = Instant::now();
        // 900 MiB resumed from disk, then 10 MiB/s.
        let mut m = meter(1000 << 20, 900 << 20, t0);
        let now = feed(&mut m, t0, 2, 10 << 20);
        let status = m.status(now);
        assert!(status.starts_with("920.0 MiB/1000.0 MiB 10.0 MiB/s ETA 8s"), "{status}");
    }

    #[test]
    fn a_stall_shows_as_such_and_the_speed_decays() {
        let t0 = Instant::now();
        let mut m = meter(1000 << 20, 0, t0);
        let now = feed(&mut m, t0, 5, 10 << 20);
        assert!(m.speed(now + Duration::from_millis(1500)) < m.speed(now), "decays without bytes");
        assert_eq!(m.speed(now + Duration::from_secs(4)), 0.0);
        let status = m.status(now + Duration::from_secs(5));
        assert_eq!(status, "stalled: nothing received for 5 s");
        m.retrying =
            Some(("cannot connect to h:1: connection refused (attempt 2 of 11)".into(), now + Duration::from_secs(7)));
        let status = m.status(now + Duration::from_secs(5));
        assert_eq!(status, "reconnecting in 2 s: cannot connect to h:1: connection refused (attempt 2 of 11)");
    }

    #[test]
    fn the_delta_line_says_what_was_reused_and_fetched() {
        let mut s = Summary { chunks: 4000, ..Summary::default() };
        assert_eq!(delta_line(&s), None, "a plain download has none");
        s.updated = true;
        (s.reused_chunks, s.reused_bytes, s.fetched_chunks, s.fetched_bytes) = (3998, 3998 << 12, 2, 300 << 10);
        assert_eq!(
            delta_line(&s).unwrap(),
            "reused 3998 of 4000 chunks (15.6 MiB) from the existing file; fetched 2 (300.0 KiB)"
        );
        s.updated = false;
        (s.new_versions, s.kept_chunks) = (1, 12);
        assert_eq!(
            delta_line(&s).unwrap(),
            "the file changed on the server once during the download; kept 12 verified chunks it repeated; fetched 2 (300.0 KiB)"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(Duration::from_millis(400)), "0.4 s");
        assert_eq!(secs(Duration::from_millis(2040)), "2 s");
        assert_eq!(per_second(1.5 * 1048576.0), "1.5 MiB/s");
        assert_eq!(per_second(2.6 * 1024.0), "2.6 KiB/s", "small files do not read 0.0 MiB/s");
        assert_eq!(per_second(812.0), "812 B/s");
        assert_eq!((size(0), size(20_987), size(1 << 30)), ("0 B".into(), "20.5 KiB".into(), "1.0 GiB".into()));
        assert_eq!((clock(Duration::from_secs(45)), clock(Duration::from_secs(125))), ("45s".into(), "2m05s".into()));
        assert_eq!(clock(Duration::from_secs(3840)), "1h04m");
    }

    #[test]
    fn the_progress_line_fits_80_columns() {
        let name = short_name("a-rather-long-file-name-for-a-terminal.iso", NAME_COLUMNS);
        assert_eq!(name.chars().count(), NAME_COLUMNS);
        assert_eq!(name, "a-rather…minal.iso");
        let t0 = Instant::now();
        let mut m = meter(1023 << 30, 0, t0);
        let now = feed(&mut m, t0, 3, 123 << 20);
        // The widest status a transfer shows: sizes of four digits, hours left.
        let line = format!("{name} {:>3}% [{}] {}", 100, "=".repeat(10), m.status(now));
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
    }
}
