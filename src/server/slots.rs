//! The stream-slot limiter: how many responses may hold a file at once
//! (event streams and `/files` downloads; each costs a socket and a file
//! descriptor), in all and per connection. Handlers take a slot before they
//! open the file, so the server says 503 before it runs out of
//! descriptors, not after.
//!
//! Why per connection too: one HTTP/2 connection multiplexes any number of
//! streams, and without its own bound it took all 1,000 slots of a server
//! and left every other client a 503. A browser keeps its downloads of one
//! page on one connection; [`PER_CONNECTION`] is far above what a page
//! runs at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Responses one connection may hold at once (HTTP/1.1 holds at most one).
pub const PER_CONNECTION: usize = crate::protocol::limits::MAX_STREAMS_PER_CONNECTION;

/// The count of responses holding a file, and its bound (`--max-connections`).
pub struct Slots {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// A connection's own count, kept in its connection data from `on_connect`.
#[derive(Clone, Default)]
pub struct ConnectionSlots(Arc<AtomicUsize>);

/// Holds one slot (and one of its connection's) until dropped, with the
/// response body.
pub struct Slot {
    open: Arc<AtomicUsize>,
    connection: Option<Arc<AtomicUsize>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = &self.connection {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every slot of the server is taken: how many responses hold a file.
    Server(usize),
    /// This connection holds [`PER_CONNECTION`] already.
    Connection,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Slots { open: Arc::new(AtomicUsize::new(0)), max }
    }

    /// Responses currently holding a file.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A slot, or [`Full`] when `max` are taken in all or
    /// [`PER_CONNECTION`] on `connection`.
    pub fn take(&self, connection: Option<&ConnectionSlots>) -> Result<Slot, Full> {
        let taken = self.open.fetch_add(1, Ordering::Relaxed);
        let connection = connection.map(|c| (c.0.fetch_add(1, Ordering::Relaxed), c.0.clone()));
        let slot = Slot { open: self.open.clone(), connection: connection.as_ref().map(|(_, c)| c.clone()) };
        if taken >= self.max {
            return Err(Full::Server(taken));
        }
        if connection.is_some_and(|(held, _)| held >= PER_CONNECTION) {
            return Err(Full::Connection);
        }
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_come_back_when_dropped() {
        let slots = Slots::new(2);
        let (a, b) = (slots.take(None).unwrap(), slots.take(None).unwrap());
        assert_eq!(slots.take(None).err(), Some(Full::Server(2)));
        assert_eq!(slots.open(), 2, "a refused take holds nothing");
        drop(a);
        let c = slots.take(None).unwrap();
        drop((b, c));
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn one_connection_takes_at_most_its_share() {
        let slots = Slots::new(1000);
        let (one, other) = (ConnectionSlots::default(), ConnectionSlots::default());
        let held: Vec<_> = (0..PER_CONNECTION).map(|_| slots.take(Some(&one)).unwrap()).collect();
        assert_eq!(slots.take(Some(&one)).err(), Some(Full::Connection));
        assert!(slots.take(Some(&other)).is_ok(), "another connection still gets one");
        drop(held);
        assert!(slots.take(Some(&one)).is_ok());
        assert_eq!(slots.open(), 0);
    }
}
