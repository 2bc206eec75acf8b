//! TLS pass-through ([`Faults::tls`](crate::Faults::tls)): the proxy cannot
//! read what a TLS connection carries, only its record framing (every record
//! opens with a 5-byte plaintext header: content type, version, length), so
//! it forwards the bytes as they are and aims its faults at byte counts and
//! records: a cut or a stall at a [`Spot`], and a [`Flip`] of one bit inside
//! an encrypted record. TLS authenticates every record, so a flipped bit
//! must cost the client its connection (a failed record is a cut), never a
//! wrong byte; the client then resumes as after any drop.
//!
//! [`Framer::feed`] is to the blind pump what [`Scanner::feed`](crate::Scanner::feed)
//! is to the HTTP one: it sees each read as it arrives, whatever its size,
//! and says where to stop.

use crate::plan::Kind;

/// Where a blind cut or stall hit, in the order of `Stats::blind_at` and
/// [`Spot::index`].
pub const BLIND_WHERE: [&str; 4] = ["anywhere on the wire", "in a record header", "mid-record", "between records"];

/// The content type of TLS application data. In TLS 1.3 every record after
/// the `ServerHello` (the rest of the handshake, session tickets, alerts)
/// travels as one, encrypted; a flip is aimed only at these.
const ENCRYPTED: u8 = 23;
const HEADER: usize = 5;

/// Where on a connection's server -> client bytes a blind cut or stall
/// happens. `k` counts the connection's records from 0, whatever their type
/// (the `ServerHello` is record 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot {
    /// After this many bytes on the wire (in the handshake, a header or a body).
    Bytes(u64),
    /// After `n` (1..=4) bytes of record `k`'s header.
    InHeader(u64, usize),
    /// After `n` bytes of record `k`'s body (kept inside it: at least 1 and
    /// at most its length - 1, where it has room).
    InRecord(u64, usize),
    /// Right after record `k`.
    Between(u64),
}

impl Spot {
    /// Its index in [`BLIND_WHERE`].
    pub fn index(self) -> usize {
        match self {
            Spot::Bytes(_) => 0,
            Spot::InHeader(..) => 1,
            Spot::InRecord(..) => 2,
            Spot::Between(_) => 3,
        }
    }
}

/// One flipped bit in the body of an encrypted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flip {
    /// The `k`-th encrypted record of the connection (from 0).
    pub k: u64,
    /// The byte of its body (the last one if the body is shorter).
    pub at: usize,
    /// XORed into that byte: one bit.
    pub mask: u8,
}

/// What one blind connection meets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlindPlan {
    pub fault: Option<(Kind, Spot)>,
    pub flip: Option<Flip>,
}

/// Follows the record framing of one connection's server -> client bytes.
#[derive(Debug, Default)]
pub struct Framer {
    pub plan: BlindPlan,
    /// Bytes fed so far.
    wire: u64,
    /// Index of the record being read (all types).
    record: u64,
    /// Encrypted records begun so far.
    encrypted: u64,
    header: [u8; HEADER],
    header_len: usize,
    body_left: u64,
    /// Wire offset of the byte to flip in the current record.
    flip_at: Option<u64>,
    flipped_current: bool,
    /// Wire offset to stop at, once known.
    stop_at: Option<u64>,
    /// Bits flipped since the owner last took the count.
    pub flipped: u64,
    /// Records fed whole since the owner last took the count.
    pub records: u64,
    /// Of those, records with a flipped bit.
    pub corrupted: u64,
}

impl Framer {
    pub fn new(plan: BlindPlan) -> Framer {
        let stop_at = match plan.fault {
            Some((_, Spot::Bytes(n))) => Some(n),
            _ => None,
        };
        Framer { plan, stop_at, ..Framer::default() }
    }

    /// Takes in the next bytes read from the server, flipping the planned
    /// bit in place. Returns where to stop, if the fault lands in them:
    /// forward `buf[..at]`, then cut or stall.
    pub fn feed(&mut self, buf: &mut [u8]) -> Option<(usize, Kind)> {
        let base = self.wire;
        let mut i = 0;
        loop {
            if self.stop_at == Some(base + i as u64) {
                self.wire = base + i as u64;
                return self.plan.fault.map(|(kind, _)| (i, kind));
            }
            if i == buf.len() {
                self.wire = base + i as u64;
                return None;
            }
            // Never step past the stop.
            let limit = self.stop_at.map_or(buf.len(), |s| (s - base).min(buf.len() as u64) as usize);
            if self.header_len < HEADER {
                if self.header_len == 0 {
                    self.aim_header(base + i as u64);
                }
                self.header[self.header_len] = buf[i];
                self.header_len += 1;
                i += 1;
                if self.header_len == HEADER {
                    self.open_body(base + i as u64);
                    if self.body_left == 0 {
                        self.close_record();
                    }
                }
                continue;
            }
            let take = (self.body_left.min((limit - i) as u64)) as usize;
            let at = base + i as u64;
            if let Some(f) = self.flip_at.filter(|&f| f >= at && f < at + take as u64) {
                buf[(f - base) as usize] ^= self.plan.flip.map_or(1, |f| f.mask);
                self.flipped += 1;
                self.flipped_current = true;
                self.flip_at = None;
            }
            i += take;
            self.body_left -= take as u64;
            if self.body_left == 0 {
                self.close_record();
            }
        }
    }

    /// A record's header starts at `at`.
    fn aim_header(&mut self, at: u64) {
        if let Some((_, Spot::InHeader(k, n))) = self.plan.fault {
            if k == self.record {
                self.stop_at = Some(at + n.clamp(1, HEADER - 1) as u64);
            }
        }
    }

    /// The current record's header is whole; its body starts at `at`.
    fn open_body(&mut self, at: u64) {
        let len = u16::from_be_bytes([self.header[3], self.header[4]]) as u64;
        self.body_left = len;
        match self.plan.fault {
            Some((_, Spot::InRecord(k, n))) if k == self.record => {
                self.stop_at = Some(at + (n as u64).min(len.saturating_sub(1)).max(len.min(1)));
            }
            Some((_, Spot::Between(k))) if k == self.record => self.stop_at = Some(at + len),
            _ => {}
        }
        if self.header[0] == ENCRYPTED {
            if let Some(f) = self.plan.flip.filter(|f| f.k == self.encrypted && len > 0) {
                self.flip_at = Some(at + (f.at as u64).min(len - 1));
            }
            self.encrypted += 1;
        }
    }

    fn close_record(&mut self) {
        self.records += 1;
        if std::mem::take(&mut self.flipped_current) {
            self.corrupted += 1;
        }
        self.record += 1;
        self.header_len = 0;
        self.flip_at = None;
    }
}
