//! The in-process bus: for one instance, the default.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::topics::Topics;
use crate::{Bus, BusError, Delivery, Subscription};

pub struct MemoryBus {
    topics: Arc<Topics>,
}

impl MemoryBus {
    /// `capacity`: how many messages a subscriber may fall behind before it gets a gap.
    pub fn new(capacity: usize) -> Self {
        Self {
            topics: Topics::new(capacity, None),
        }
    }
}

impl Drop for MemoryBus {
    fn drop(&mut self) {
        self.topics.close();
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        self.topics.deliver(topic, Delivery::Message(payload));
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        let (rx, guard) = self.topics.join(topic);
        Ok(Subscription { rx, guard })
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}
