//! The last step of every event's way in: persist, then publish. An event is published only
//! after it is durable, so a viewer never sees what a restart could lose; and the bus is at
//! most once, so viewers fill gaps from the store.

use std::sync::Arc;

use bytes::Bytes;
use sev_bus::Bus;
use sev_store::{Appended, EventLog, EventLogError, NewEvent, StoredEvent};

use crate::metrics::{KindLabels, Metrics};

/// The bus topic of a streamer's events.
pub fn topic(streamer_id: &str) -> String {
    format!("streamer.{streamer_id}")
}

#[derive(Clone)]
pub struct Events {
    log: EventLog,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
}

impl Events {
    pub fn new(log: EventLog, bus: Arc<dyn Bus>, metrics: Arc<Metrics>) -> Self {
        Self { log, bus, metrics }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Stores the events (group-committed with concurrent callers), then publishes the ones
    /// that were new. `Ok` means durable: only then may a webhook be acknowledged.
    pub async fn ingest(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, EventLogError> {
        let outcomes = self.log.append_all(events).await?;
        for outcome in &outcomes {
            match outcome {
                Appended::Stored(event) => {
                    self.metrics
                        .events_stored
                        .get_or_create(&KindLabels {
                            kind: event.kind.clone(),
                        })
                        .inc();
                    self.publish(event).await;
                }
                Appended::Duplicate { .. } => {
                    self.metrics.events_duplicate.inc();
                }
            }
        }
        Ok(outcomes)
    }

    async fn publish(&self, event: &StoredEvent) {
        let payload = match serde_json::to_vec(event) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise a stored event");
                return;
            }
        };
        match self.bus.publish(&topic(&event.streamer_id), payload).await {
            Ok(()) => {
                self.metrics.events_published.inc();
            }
            // The event is stored; viewers catch up from the store when the bus is back.
            Err(e) => {
                tracing::warn!(error = %e, streamer_id = %event.streamer_id, seq = event.seq, "publishing an event failed")
            }
        }
    }
}
