//! A read hook that holds chosen reads until the test opens the gate: a
//! stand-in for a disk that stalls (cold cache, network storage).

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chunkcast::tree::disk::{Disk, ReadSite, WatchedDisk};

#[derive(Default)]
pub struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    open: bool,
    /// Files with a read waiting at the gate now.
    waiting: HashSet<String>,
    /// Most files waiting at once.
    peak: usize,
}

impl Gate {
    /// A disk that holds reads at `site` of files whose name starts with
    /// `prefix` until [`Gate::open`] (or a minute, so a broken test ends).
    pub fn disk(self: &Arc<Self>, site: ReadSite, prefix: &'static str) -> Arc<dyn Disk> {
        let gate = self.clone();
        Arc::new(WatchedDisk(Arc::new(move |rel: &str, at: ReadSite| {
            if at == site && rel.starts_with(prefix) {
                gate.hold(rel);
            }
        })))
    }

    fn hold(&self, rel: &str) {
        let mut s = self.state.lock().unwrap();
        if s.open {
            return;
        }
        s.waiting.insert(rel.to_owned());
        s.peak = s.peak.max(s.waiting.len());
        self.changed.notify_all();
        let (mut s, _) = self.changed.wait_timeout_while(s, Duration::from_secs(60), |s| !s.open).unwrap();
        s.waiting.remove(rel);
        self.changed.notify_all();
    }

    pub fn open(&self) {
        self.state.lock().unwrap().open = true;
        self.changed.notify_all();
    }

    /// Files waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap().waiting.len()
    }

    pub fn peak(&self) -> usize {
        self.state.lock().unwrap().peak
    }

    /// Waits (up to a minute) until `n` files wait at the gate.
    pub fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut s = self.state.lock().unwrap();
        while s.waiting.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} of {n} reads reached the gate", s.waiting.len());
            s = self.changed.wait_timeout(s, left).unwrap().0;
        }
    }
}
