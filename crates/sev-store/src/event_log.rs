//! The event-log write path: group commit.
//!
//! Every append goes through one writer task per process. While a transaction is in flight,
//! new appends queue up; the next transaction takes all of them (up to `max_batch`). A burst
//! of N events then costs a handful of commits (and fsyncs) instead of N, while a lone event
//! still commits at once: there is no timer, so batching adds no latency.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{Appended, EventPage, NewEvent, Store, StoreError, StoredEvent};

#[derive(Debug, Clone)]
pub struct EventLogConfig {
    /// Most events written in one transaction.
    pub max_batch: usize,
    /// Appends waiting for the writer before callers wait to enqueue (backpressure).
    pub queue: usize,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        Self {
            max_batch: 512,
            queue: 8192,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EventLogError {
    #[error("event log write failed: {0}")]
    Store(Arc<StoreError>),
    #[error("event log writer has stopped")]
    Closed,
}

impl EventLogError {
    /// The underlying store error, for logging the full cause chain.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            Self::Closed => None,
        }
    }
}

struct Request {
    event: NewEvent,
    reply: oneshot::Sender<Result<Appended, EventLogError>>,
}

/// A handle to the group-committing writer. Clones share the writer; it drains what was
/// queued and stops when the last clone is dropped.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<Request>,
    store: Arc<dyn Store>,
}

impl EventLog {
    /// Starts the writer task. The handle finishes after the last [`EventLog`] clone is dropped
    /// and every queued append was written.
    pub fn start(store: Arc<dyn Store>, config: EventLogConfig) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let task = tokio::spawn(writer(store.clone(), rx, config.max_batch.max(1)));
        (Self { tx, store }, task)
    }

    /// Appends one event; when this returns `Ok`, it is durable.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, EventLogError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { event, reply })
            .await
            .map_err(|_| EventLogError::Closed)?;
        rx.await.map_err(|_| EventLogError::Closed)?
    }

    /// Appends several events, in order; they may share transactions with other callers'.
    pub async fn append_all(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, EventLogError> {
        let mut replies = Vec::with_capacity(events.len());
        for event in events {
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Request { event, reply })
                .await
                .map_err(|_| EventLogError::Closed)?;
            replies.push(rx);
        }
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            out.push(rx.await.map_err(|_| EventLogError::Closed)??);
        }
        Ok(out)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// See [`Store::events_after`].
    pub async fn events_after(
        &self,
        streamer_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        self.store.events_after(streamer_id, after, limit).await
    }

    /// See [`Store::recent_events`].
    pub async fn recent_events(
        &self,
        streamer_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.recent_events(streamer_id, limit).await
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>, max_batch: usize) {
    let mut events: Vec<NewEvent> = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(Request { event, reply }) = next.take() {
            events.push(event);
            replies.push(reply);
            if events.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        // A conflict means another instance stored one of these events at the same moment:
        // a retry finds it and reports the duplicate.
        let mut result = store.append_batch(&events).await;
        for _ in 0..3 {
            if !matches!(result, Err(StoreError::Conflict)) {
                break;
            }
            result = store.append_batch(&events).await;
        }
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    // The caller may have gone away (request cancelled); the event is stored anyway.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), events = events.len(), "event log batch failed; nothing in it was stored");
                let e = Arc::new(e);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(EventLogError::Store(e.clone())));
                }
            }
        }
        events.clear();
    }
}

/// Builds a page, deciding whether the reader missed events: the first event after the
/// cursor is not the next one, or everything after the cursor is gone.
pub(crate) fn page(events: Vec<StoredEvent>, after: i64, last_seq: i64) -> EventPage {
    let gap = match events.first() {
        Some(first) => first.seq > after.saturating_add(1),
        None => last_seq > after,
    };
    EventPage {
        events,
        gap,
        last_seq,
    }
}
