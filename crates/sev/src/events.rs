//! The last step of every event's way in: persist, then publish. An event is published only
//! after it is durable, so a viewer never sees what a restart could lose; and the bus is at
//! most once, so viewers fill gaps from the store.

use std::sync::Arc;

use bytes::Bytes;
use sev_bus::Bus;
use sev_store::{Appended, EventLog, EventLogError, NewEvent, StoredEvent, Streamer};

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
    /// Streamers already recorded (id → login and name), to skip redundant writes.
    known: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, String)>>>,
}

/// The streamer an event is filed under, with the login and name the event carries.
pub fn streamer_of(id: &str, raw: &serde_json::Value) -> Option<Streamer> {
    [
        "broadcaster_user",
        "to_broadcaster_user",
        "from_broadcaster_user",
        "user",
    ]
    .iter()
    .find_map(|prefix| {
        let field = |suffix: &str| {
            raw.get(format!("{prefix}_{suffix}"))
                .and_then(serde_json::Value::as_str)
        };
        (field("id") == Some(id)).then(|| Streamer {
            id: id.to_owned(),
            login: field("login").unwrap_or_default().to_owned(),
            display_name: field("name").unwrap_or_default().to_owned(),
        })
    })
    .filter(|s| !s.login.is_empty())
}

impl Events {
    pub fn new(log: EventLog, bus: Arc<dyn Bus>, metrics: Arc<Metrics>) -> Self {
        Self {
            log,
            bus,
            metrics,
            known: Arc::default(),
        }
    }

    /// Records a streamer's login and name, unless nothing changed since the last time.
    pub async fn remember_streamer(&self, s: Streamer) {
        let fresh = {
            let known = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            known.get(&s.id) != Some(&(s.login.clone(), s.display_name.clone()))
        };
        if !fresh {
            return;
        }
        match self.log.store().upsert_streamer(&s).await {
            Ok(()) => {
                let mut known = self
                    .known
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                known.insert(s.id.clone(), (s.login, s.display_name));
            }
            Err(e) => {
                tracing::warn!(error = %e, streamer_id = %s.id, "could not record a streamer")
            }
        }
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

/// Stores one EventSub notification that arrived over a WebSocket (a conduit shard or a chat
/// reader) and publishes it. There is no acknowledgement to withhold over a WebSocket: a
/// failed write is logged, and nothing can bring the event back.
pub async fn ingest_notification(
    state: &crate::state::AppState,
    message_id: &str,
    notification: &sev_twitch::eventsub::Notification,
) {
    state.metrics.eventsub_notifications.inc();
    if let Err(e) = store_notification(state, message_id, notification).await {
        tracing::error!(error = %e, %message_id, "could not store an EventSub notification");
    }
}

/// Why a notification could not be kept: a webhook answers 503 so Twitch retries.
#[derive(Debug, thiserror::Error)]
pub enum NotStored {
    #[error("handling an app event failed")]
    App(#[source] sev_store::StoreError),
    #[error("storing the event failed")]
    Log(#[source] EventLogError),
}

/// Handles one verified notification, from any transport: the app's own events, or a feed
/// event normalised, stored durably (then published) and its streamer remembered.
pub async fn store_notification(
    state: &crate::state::AppState,
    message_id: &str,
    notification: &sev_twitch::eventsub::Notification,
) -> Result<(), NotStored> {
    if let Some(handled) = handle_app_event(state, notification).await {
        return handled.map_err(NotStored::App);
    }
    let Some(normalized) = sev_pipeline::normalize(notification, message_id, chrono::Utc::now())
    else {
        return Ok(());
    };
    let streamer = streamer_of(&normalized.streamer_id, &notification.raw_event);
    state
        .events
        .ingest(vec![normalized.into_new_event()])
        .await
        .map_err(NotStored::Log)?;
    if let Some(s) = streamer {
        state.events.remember_streamer(s).await;
    }
    Ok(())
}

/// Handles the app's own events (not a channel's feed). `None`: not one of them. `Some(Err)`:
/// it could not be handled now (a webhook should then ask Twitch to retry).
pub async fn handle_app_event(
    state: &crate::state::AppState,
    notification: &sev_twitch::eventsub::Notification,
) -> Option<Result<(), sev_store::StoreError>> {
    use sev_twitch::eventsub::Event;
    let Event::AuthorizationRevoke(revoke) = &notification.event else {
        return None;
    };
    if revoke.client_id != state.config.twitch.client_id {
        return Some(Ok(()));
    }
    let user_id = revoke.user.user_id.clone()?;
    Some(sign_out_everywhere(state, &user_id).await)
}

/// The user revoked sev on Twitch: their sessions and broadcaster-mode grants end now.
async fn sign_out_everywhere(
    state: &crate::state::AppState,
    user_id: &str,
) -> Result<(), sev_store::StoreError> {
    let ended = state.store.delete_user_sessions(user_id).await?;
    let mut grants = 0;
    for (user, streamer) in state.store.consent_grants().await? {
        if user == user_id {
            state.store.revoke_consent(&user, &streamer).await?;
            grants += 1;
        }
    }
    if grants > 0 {
        state.favorites_changed();
    }
    tracing::info!(%user_id, sessions = ended, grants, "the user revoked sev on Twitch; signed out everywhere");
    Ok(())
}
