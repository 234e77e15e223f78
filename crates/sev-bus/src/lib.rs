//! sev's event bus: publish to a topic (one per streamer), and every subscriber of that topic,
//! on this instance or another, receives it.
//!
//! Two backends behind one [`Bus`] interface: [`MemoryBus`] (one process, the default) and
//! [`RedisBus`] (Redis pub/sub, for several instances). Either way, each process holds one
//! upstream subscription per topic and fans out locally through a `tokio::sync::broadcast`.
//!
//! Delivery is at most once. Whenever a subscriber may have missed messages (it fell behind,
//! or the Redis connection dropped), it receives [`Delivery::Gap`] and is expected to resync
//! from the store; the bus never silently skips.
//!
//! A new subscription receives everything published after `subscribe` returns. With Redis it
//! may also receive a message published just before (the upstream channel was still
//! subscribed for an earlier subscriber); readers already skip what they have seen by its
//! sequence number, so this costs nothing and needs no extra round trip per subscribe.

mod memory;
mod redis_bus;
mod topics;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

pub use memory::MemoryBus;
pub use redis_bus::{RedisBus, RedisBusConfig};

/// What a [`Subscription`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Message(Bytes),
    /// Messages may have been lost before this point: resync from the source of truth.
    Gap,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid bus URL: {0}")]
    InvalidUrl(String),
    #[error("bus unreachable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("bus has shut down")]
    Closed,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// `memory` or `redis`, for logs and metrics.
    fn kind(&self) -> &'static str;

    /// Publishes to every current subscriber of `topic`, on every instance.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError>;

    /// Subscribes to `topic`. When this returns, every later publish reaches the subscription,
    /// so a caller can subscribe first and then read history without a hole in between.
    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError>;

    /// Whether the bus can deliver right now, for readiness.
    async fn ping(&self) -> Result<(), BusError>;
}

/// A live subscription to one topic. Dropping it unsubscribes.
pub struct Subscription {
    // Field order matters: `rx` drops before `guard`, so the guard sees the true count of
    // remaining receivers when it decides whether the topic is still wanted.
    rx: broadcast::Receiver<Delivery>,
    guard: topics::TopicGuard,
}

impl Subscription {
    /// The next delivery; `None` when the bus has shut down.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match self.rx.recv().await {
            Ok(d) => Some(d),
            // Fell behind: the oldest messages were overwritten. Report it instead of skipping.
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Delivery::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    pub fn topic(&self) -> &str {
        self.guard.topic()
    }
}

/// Connects to the bus the URL names: `None` for in-process, `redis://` for Redis.
pub async fn connect(
    redis_url: Option<&str>,
    config: RedisBusConfig,
) -> Result<std::sync::Arc<dyn Bus>, BusError> {
    Ok(match redis_url {
        None => std::sync::Arc::new(MemoryBus::new(config.capacity)),
        Some(url) => std::sync::Arc::new(RedisBus::connect(url, config).await?),
    })
}
