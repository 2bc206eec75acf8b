//! Notices between instances that serve one root (`serve --redis URL`):
//! "publication R has N chunks, state S", published on a Redis channel of
//! the root each time a chunk is sealed or the state changes, so followers
//! on the other instances read the new chunks from the shared layout at
//! once instead of at their next look.
//!
//! Redis carries notices only, never content: the chunks and the layout
//! stay in the shared files, so losing Redis (or a notice) loses nothing —
//! followers still look at the layout every couple of seconds. The
//! blocking client is enough: one thread subscribes, and notices are sent
//! from the blocking pool right after the seal they announce.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Commands as _;
use serde::{Deserialize, Serialize};

use crate::protocol::{hex, sha256, LiveState};

/// How long the subscriber waits before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(1);

/// What one instance tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    pub rel: String,
    pub chunks: u64,
    pub state: LiveState,
}

pub struct Fanout {
    client: redis::Client,
    channel: String,
    /// The connection notices are published on, made on first use and
    /// again after a failure.
    conn: Mutex<Option<redis::Connection>>,
    /// Whether the current outage was logged already (once per outage).
    down: AtomicBool,
}

impl Fanout {
    /// Checks the URL (`redis://HOST:PORT[/DB]`); connects on first use.
    pub fn new(url: &str, root: &Path) -> redis::RedisResult<Fanout> {
        let client = redis::Client::open(url)?;
        let channel = format!("chunkcast:{}", &hex(&sha256(root.as_os_str().as_encoded_bytes()))[..16]);
        Ok(Fanout { client, channel, conn: Mutex::new(None), down: AtomicBool::new(false) })
    }

    /// Publishes a notice. Blocking (one round trip); a failure is logged
    /// once and otherwise ignored.
    pub fn tell(&self, notice: &Notice) {
        let Ok(message) = serde_json::to_string(notice) else { return };
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let sent = (|| -> redis::RedisResult<()> {
            if conn.is_none() {
                *conn = Some(self.client.get_connection_with_timeout(Duration::from_secs(2))?);
            }
            let c = conn.as_mut().ok_or_else(|| redis::RedisError::from(std::io::Error::other("no connection")))?;
            c.publish::<_, _, ()>(&self.channel, message)
        })();
        match sent {
            Ok(()) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("redis is reachable again");
                }
            }
            Err(e) => {
                *conn = None;
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "could not publish to redis; other instances see new chunks at their next look");
                }
            }
        }
    }

    /// Subscribes on a thread of its own and hands every notice to `heard`,
    /// connecting again after any failure, for as long as the process runs.
    pub fn listen(self: &Arc<Self>, heard: impl Fn(Notice) + Send + 'static) {
        let fanout = self.clone();
        let spawned = std::thread::Builder::new().name("chunkcast-redis".into()).spawn(move || loop {
            if let Err(e) = fanout.subscribe(&heard) {
                if !fanout.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "redis subscription lost; retrying every second");
                }
            }
            std::thread::sleep(RECONNECT);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the redis subscriber");
        }
    }

    fn subscribe(&self, heard: &impl Fn(Notice)) -> redis::RedisResult<()> {
        let mut conn = self.client.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut pubsub = conn.as_pubsub();
        pubsub.subscribe(&self.channel)?;
        tracing::debug!(channel = %self.channel, "subscribed to redis");
        loop {
            let message = pubsub.get_message()?;
            let payload: String = message.get_payload()?;
            if let Ok(notice) = serde_json::from_str::<Notice>(&payload) {
                heard(notice);
            }
        }
    }
}
