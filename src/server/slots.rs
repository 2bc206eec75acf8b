//! The stream-slot limiter: how many responses may hold a file at once
//! (event streams and `/files` downloads; each costs a socket and a file
//! descriptor). Handlers take a slot before they open the file, so the
//! server says 503 before it runs out of descriptors, not after.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The count of responses holding a file, and its bound (`--max-connections`).
pub struct Slots {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// Holds one slot until dropped (with the response body).
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every slot is taken: how many responses hold a file now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full(pub usize);

impl Slots {
    pub fn new(max: usize) -> Self {
        Slots { open: Arc::new(AtomicUsize::new(0)), max }
    }

    /// Responses currently holding a file.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A slot, or [`Full`] when `max` are taken.
    pub fn take(&self) -> Result<Slot, Full> {
        let taken = self.open.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(self.open.clone());
        if taken >= self.max {
            return Err(Full(taken));
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
        let (a, b) = (slots.take().unwrap(), slots.take().unwrap());
        assert_eq!(slots.take().err(), Some(Full(2)));
        assert_eq!(slots.open(), 2, "a refused take holds nothing");
        drop(a);
        let c = slots.take().unwrap();
        drop((b, c));
        assert_eq!(slots.open(), 0);
    }
}
