//! What happens to each connection: the fault rates, the seeded planner that
//! draws one [`Plan`] per accepted connection, and scripted [`Step`]s that
//! override it for tests needing one exact sequence of faults.

use std::collections::VecDeque;
use std::time::Duration;

use crate::blind::{BlindPlan, Flip, Spot};

/// How often faults happen. Probabilities are per accepted connection.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Cut the connection at a random point.
    pub cut: f64,
    /// Stop forwarding at a random point until the client gives up.
    pub stall: f64,
    /// Flip one character of a chunk's payload (in 1..=3 chunk events).
    pub corrupt: f64,
    /// Start refusing: this and the next few connections are reset.
    pub down: f64,
    /// A down period refuses 1..=max_down connections.
    pub max_down: u32,
    /// Chunk events a stream of the file carries (where cuts are aimed).
    pub chunks: u64,
    /// Payload characters of one whole chunk event (where in-payload faults
    /// are aimed).
    pub payload_chars: usize,
    /// A stall that the client has not noticed after this long ends the
    /// connection anyway, and counts as not detected.
    pub stall_max: Duration,
    /// The connections carry TLS: forward them blind (see [`crate::blind`]),
    /// cuts and stalls aimed at byte counts and records, and `corrupt`
    /// flipping one bit of an encrypted record instead of a payload
    /// character. `chunks` and `payload_chars` still size the aims.
    pub tls: bool,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            cut: 0.0,
            stall: 0.0,
            corrupt: 0.0,
            down: 0.0,
            max_down: 1,
            chunks: 0,
            payload_chars: 0,
            stall_max: Duration::from_secs(5),
            tls: false,
        }
    }
}

/// Where a cut or stall hit, in the order of `Stats::at` and [`Point::index`].
pub const WHERE: [&str; 6] =
    ["anywhere on the wire", "after `event:`", "in `data: {`", "mid-payload", "after `data:`", "between events"];

/// Where on a connection's server -> client bytes a cut or stall happens.
/// `k` counts the chunk events of the connection from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// After this many bytes on the wire (possibly inside headers).
    Bytes(u64),
    /// Right after the `event: chunk` line of the k-th chunk event.
    AfterEventLine(u64),
    /// After this many bytes of the k-th chunk event's `data:` line.
    InDataPrefix(u64, usize),
    /// After this many characters of the k-th chunk event's payload (or
    /// just before its closing quote if it is shorter).
    InPayload(u64, usize),
    /// After the `data:` line, before the blank line that dispatches it.
    AfterDataLine(u64),
    /// After the blank line that ends the k-th chunk event.
    Between(u64),
}

impl Point {
    /// Its index in [`WHERE`].
    pub fn index(self) -> usize {
        match self {
            Point::Bytes(_) => 0,
            Point::AfterEventLine(_) => 1,
            Point::InDataPrefix(..) => 2,
            Point::InPayload(..) => 3,
            Point::AfterDataLine(_) => 4,
            Point::Between(_) => 5,
        }
    }

    /// The point of kind `index` (as in [`WHERE`]) at chunk event `k`, `n`
    /// bytes or characters in where that applies.
    pub fn from_index(index: usize, k: u64, n: u64) -> Option<Point> {
        Some(match index {
            0 => Point::Bytes(n),
            1 => Point::AfterEventLine(k),
            2 => Point::InDataPrefix(k, n as usize),
            3 => Point::InPayload(k, n as usize),
            4 => Point::AfterDataLine(k),
            5 => Point::Between(k),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cut,
    Stall,
}

/// One flipped payload character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt {
    /// The first eligible character at or after `at` in a chunk payload of
    /// event `k` or later (later when event `k` has none that far in).
    pub k: u64,
    pub at: usize,
    /// Picks the replacement character (never the same one).
    pub delta: usize,
}

/// What one connection meets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub fault: Option<(Kind, Point)>,
    /// In stream order, at most one per chunk event.
    pub corrupt: VecDeque<Corrupt>,
}

/// A scripted connection, for tests that need one exact sequence of faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Refuse,
    /// Corrupt the payload of this chunk event and/or cut the connection
    /// right after that one (counting chunk events on the connection from 0).
    Pass {
        corrupt: Option<u64>,
        cut_after: Option<u64>,
    },
    /// Any plan.
    Plan(Plan),
    /// Forward blind (TLS), with this plan.
    Blind(BlindPlan),
}

pub(crate) enum Decision {
    Refuse,
    Pass(Plan),
    Blind(BlindPlan),
}

/// Draws what happens to each new connection from one seeded stream, in the
/// order connections are accepted, so a replayed seed meets the same faults.
pub(crate) struct Planner {
    rng: fastrand::Rng,
    pub(crate) faults: Faults,
    /// Connections still to refuse in the current down period.
    pub(crate) down_left: u32,
    /// Fixed steps for the next connections, before any random ones.
    pub(crate) script: VecDeque<Step>,
}

impl Planner {
    pub(crate) fn new(seed: u64, faults: Faults) -> Planner {
        Planner { rng: fastrand::Rng::with_seed(seed), faults, down_left: 0, script: VecDeque::new() }
    }

    pub(crate) fn decide(&mut self) -> Decision {
        match self.script.pop_front() {
            Some(Step::Refuse) => return Decision::Refuse,
            Some(Step::Pass { corrupt, cut_after }) => {
                return Decision::Pass(Plan {
                    fault: cut_after.map(|k| (Kind::Cut, Point::Between(k))),
                    corrupt: corrupt.map(|k| Corrupt { k, at: 0, delta: 1 }).into_iter().collect(),
                })
            }
            Some(Step::Plan(plan)) => return Decision::Pass(plan),
            Some(Step::Blind(plan)) => return Decision::Blind(plan),
            None => {}
        }
        let f = self.faults;
        let rng = &mut self.rng;
        if self.down_left == 0 && f.down > 0.0 && rng.f64() < f.down {
            self.down_left = rng.u32(1..=f.max_down.max(1));
        }
        if self.down_left > 0 {
            self.down_left -= 1;
            return Decision::Refuse;
        }
        let chunks = f.chunks.max(1);
        let chars = f.payload_chars.max(1);
        let roll = rng.f64();
        let kind = if roll < f.cut {
            Some(Kind::Cut)
        } else if roll < f.cut + f.stall {
            Some(Kind::Stall)
        } else {
            None
        };
        if f.tls {
            return Decision::Blind(blind(rng, f, kind));
        }
        let mut plan = Plan::default();
        if let Some(kind) = kind {
            let k = rng.u64(0..chunks);
            let point = match rng.u32(0..6) {
                // Anywhere on the wire, up to about one stream's worth.
                0 => Point::Bytes(rng.u64(0..(chunks * (chars as u64 + 200) + 600))),
                1 => Point::AfterEventLine(k),
                2 => Point::InDataPrefix(k, rng.usize(1..8)),
                3 => Point::InPayload(k, rng.usize(0..chars)),
                4 => Point::AfterDataLine(k),
                _ => Point::Between(k),
            };
            plan.fault = Some((kind, point));
        }
        if f.corrupt > 0.0 && rng.f64() < f.corrupt {
            let mut ks: Vec<u64> = (0..rng.usize(1..=3)).map(|_| rng.u64(0..chunks)).collect();
            ks.sort_unstable();
            for k in ks {
                plan.corrupt.push_back(Corrupt { k, at: rng.usize(0..chars), delta: rng.usize(1..1000) });
            }
        }
        Decision::Pass(plan)
    }
}

/// A blind connection's plan, drawn as [`Planner::decide`] draws the others:
/// `kind` already rolled, aimed over about one stream's worth of records.
fn blind(rng: &mut fastrand::Rng, f: Faults, kind: Option<Kind>) -> BlindPlan {
    let chunks = f.chunks.max(1);
    let chars = f.payload_chars.max(1);
    // A record carries at most 16 KiB (and an HTTP/2 DATA frame as much), so
    // a chunk event takes one record or more, as its payload needs; then the
    // handshake's (`ServerHello`, the encrypted rest, session tickets), the
    // manifest's and the stream's first and last events.
    let record_max = 16 * 1024;
    let records = chunks * (chars as u64 + 200).div_ceil(record_max as u64) + 8;
    let body = (chars + 200).min(record_max + 256);
    let fault = kind.map(|kind| {
        let spot = match rng.u32(0..4) {
            // Anywhere on the wire, up to about one stream's worth (a
            // record costs 22 bytes beyond its payload; the handshake some
            // 2 KiB, with the certificate).
            0 => Spot::Bytes(rng.u64(0..(chunks * (chars as u64 + 230) + 4000))),
            1 => Spot::InHeader(rng.u64(0..records), rng.usize(1..5)),
            2 => Spot::InRecord(rng.u64(0..records), rng.usize(1..body)),
            _ => Spot::Between(rng.u64(0..records)),
        };
        (kind, spot)
    });
    let flip = (f.corrupt > 0.0 && rng.f64() < f.corrupt).then(|| Flip {
        k: rng.u64(0..records),
        at: rng.usize(0..body),
        mask: 1 << rng.u32(0..8),
    });
    BlindPlan { fault, flip }
}
