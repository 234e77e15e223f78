//! Local fan-out shared by both backends: one broadcast channel per topic with subscribers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::Delivery;

/// Requests to a backend's upstream task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Make sure the topic is subscribed upstream; answer once it is.
    Ensure(String, oneshot::Sender<Result<(), crate::BusError>>),
    /// The topic lost its last local subscriber.
    Release(String),
}

/// The topics this process has subscribers for.
///
/// A std `Mutex` is right here: it is never held across an `.await`, and the critical
/// sections are a hash-map lookup.
pub(crate) struct Topics {
    map: Mutex<HashMap<String, broadcast::Sender<Delivery>>>,
    capacity: usize,
    upstream: Option<mpsc::UnboundedSender<Command>>,
}

impl Topics {
    pub fn new(capacity: usize, upstream: Option<mpsc::UnboundedSender<Command>>) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            upstream,
        })
    }

    /// A local receiver for `topic`.
    pub fn join(self: &Arc<Self>, topic: &str) -> (broadcast::Receiver<Delivery>, TopicGuard) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = match map.get(topic) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                map.insert(topic.to_owned(), tx);
                rx
            }
        };
        let guard = TopicGuard {
            topics: self.clone(),
            topic: topic.to_owned(),
        };
        (rx, guard)
    }

    /// Delivers to local subscribers of `topic`, if any.
    pub fn deliver(&self, topic: &str, delivery: Delivery) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(topic) {
            // No receivers left is not an error: the last one is just leaving.
            let _ = tx.send(delivery);
        }
    }

    /// Delivers a gap to every topic: the upstream may have dropped messages.
    pub fn gap_all(&self) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        for tx in map.values() {
            let _ = tx.send(Delivery::Gap);
        }
    }

    pub fn names(&self) -> Vec<String> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.keys().cloned().collect()
    }

    /// Ends every subscription: their `recv` returns `None`.
    pub fn close(&self) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.clear();
    }

    pub fn contains(&self, topic: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.contains_key(topic)
    }

    fn leave(&self, topic: &str) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        // The leaving subscriber's receiver was dropped just before (field order in
        // `Subscription`), so zero means nobody else listens.
        if map.get(topic).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(topic);
            drop(map);
            if let Some(upstream) = &self.upstream {
                // The backend task is gone only at shutdown; nothing to release then.
                let _ = upstream.send(Command::Release(topic.to_owned()));
            }
        }
    }
}

/// Held by a subscription; leaving the topic when dropped.
pub(crate) struct TopicGuard {
    topics: Arc<Topics>,
    topic: String,
}

impl TopicGuard {
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for TopicGuard {
    fn drop(&mut self) {
        self.topics.leave(&self.topic);
    }
}
