//! What every request handler can reach.

use std::sync::Arc;

use sev_store::Store;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::events::Events;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The URL viewers open, with the real port when the listener was bound to port 0.
    pub public_url: Url,
    pub store: Arc<dyn Store>,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    /// Cancelled when shutdown begins: long-lived connections end themselves.
    pub shutdown: CancellationToken,
    /// The secret EventSub webhook signatures are checked with.
    pub eventsub_secret: secrecy::SecretString,
    /// The subscription manager's last report (`GET /admin/subscriptions`).
    pub subscriptions: Arc<std::sync::RwLock<Option<sev_pipeline::Status>>>,
    /// Wakes the subscription manager (favorites changed, a subscription was revoked).
    pub resubscribe: Arc<tokio::sync::Notify>,
    /// Wakes the chat readers' supervisor (favorites changed). A `Notify` wakes one waiter,
    /// so each task that waits has its own; [`AppState::favorites_changed`] wakes both.
    pub chat_wake: Arc<tokio::sync::Notify>,
    /// Twitch clients, the token sealer and cookie settings for the pages.
    pub web: Arc<crate::web::Web>,
    /// Streamers whose chat reader is subscribed right now (the chat tier is active).
    pub chat_readers: Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
}

impl AppState {
    /// Someone's favorites changed: the subscription manager and the chat readers look now.
    pub fn favorites_changed(&self) {
        self.resubscribe.notify_one();
        self.chat_wake.notify_one();
    }
}

impl AppState {
    /// The subscription manager's last report, wherever it runs: the instance holding the
    /// reconciler shares it through the store. `None` before the first report.
    pub async fn subscription_status(&self) -> Option<sev_pipeline::Status> {
        match self.store.app_state(SUBSCRIPTIONS_STATE).await {
            Ok(Some(v)) => serde_json::from_value(v).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "reading the subscription report failed");
                self.subscriptions
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            }
        }
    }
}

/// Where the subscription manager's report is shared (`Store::put_app_state`).
pub const SUBSCRIPTIONS_STATE: &str = "subscriptions";
