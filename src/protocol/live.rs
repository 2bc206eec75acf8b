//! The shapes of live text (`docs/PROTOCOL.md`, "Live text"): a
//! publication's state, the answer of `/api/publish`, and the `state`
//! event viewers get when the producer goes or comes back.

use serde::{Deserialize, Serialize};

/// Where a publication is. `Complete` and `Abandoned` are ends: the file is
/// then an ordinary, finished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    /// A producer is sending (or sent a part less than 2 s ago).
    Live,
    /// The producer's connection broke, or it has been quiet 2 s; it may
    /// resume from the acknowledged offset.
    Interrupted,
    /// The producer ended it (`end=1`).
    Complete,
    /// Interrupted for `--publish-timeout`, or past `--max-publish`.
    Abandoned,
}

impl LiveState {
    pub fn ended(self) -> bool {
        matches!(self, LiveState::Complete | LiveState::Abandoned)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::Live => "live",
            LiveState::Interrupted => "interrupted",
            LiveState::Complete => "complete",
            LiveState::Abandoned => "abandoned",
        }
    }
}

/// The answer of `POST`/`PUT`/`GET /api/publish`: what the server has
/// acknowledged (sealed and flushed) of the publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub file: String,
    /// Bytes acknowledged: the offset the next `POST` must carry.
    pub offset: u64,
    /// Chunks sealed.
    pub chunks: u64,
    pub state: LiveState,
    /// The `root` of the chunks sealed so far.
    pub root: String,
}

/// The data of a live stream's `state` event (no `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEvent {
    pub state: LiveState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_exact() {
        let p = Publication { file: "a.txt".into(), offset: 12, chunks: 2, state: LiveState::Live, root: "ab".into() };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"file":"a.txt","offset":12,"chunks":2,"state":"live","root":"ab"}"#);
        assert_eq!(serde_json::from_str::<Publication>(&json).unwrap(), p);
        let e = serde_json::to_string(&StateEvent { state: LiveState::Interrupted }).unwrap();
        assert_eq!(e, r#"{"state":"interrupted"}"#);
        assert!(LiveState::Abandoned.ended() && !LiveState::Interrupted.ended());
    }
}
