//! The public tier's way in: a conduit whose shard is an outbound EventSub WebSocket (the
//! default; no public HTTPS needed) or webhooks to `POST /eventsub`, and the subscription
//! manager keeping one subscription per (type, streamer) for every user's favorites.
//!
//! Runs until shutdown; Twitch being unreachable is retried with backoff, never fatal.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;
use sev_pipeline::{Destination, Manager};
use sev_twitch::TwitchUrls;
use sev_twitch::conduit::{Shard, ShardEvent, ensure_conduit};
use sev_twitch::helix::{HelixClient, HelixConfig};
use sev_twitch::oauth::{AppTokenSource, Credentials, OAuthClient, TokenSource};
use sev_twitch::ws::WsConfig;
use tokio_util::sync::CancellationToken;

use crate::config::EventSubTransport;
use crate::metrics::KindLabels;
use crate::state::AppState;

/// How often the manager reconciles when nothing asks it to sooner.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// Users seen within this window count as active: their favorites are collected.
const ACTIVE_WINDOW_DAYS: i64 = 30;
/// Subscriptions nobody wants any more are kept this long (a viewer may come back).
const GRACE: Duration = Duration::from_secs(15 * 60);

pub fn urls(state: &AppState) -> TwitchUrls {
    let t = &state.config.twitch;
    TwitchUrls {
        auth: t.auth_url.clone(),
        helix: t.helix_url.clone(),
        eventsub_subscriptions: t.eventsub_subscriptions_url.clone(),
        eventsub_ws: t.eventsub_ws_url.clone(),
    }
}

/// The Twitch clients the connector's tasks use (app token, Helix).
pub struct Clients {
    pub helix: Arc<HelixClient>,
    pub app: Arc<dyn TokenSource>,
    pub urls: TwitchUrls,
}

impl Clients {
    pub fn new(state: &AppState) -> Option<Self> {
        let http = match sev_twitch::http_client() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot build an HTTP client; no Twitch events will arrive");
                return None;
            }
        };
        let urls = urls(state);
        let credentials = Credentials {
            client_id: state.config.twitch.client_id.clone(),
            client_secret: state.config.twitch.client_secret.clone(),
        };
        let oauth = OAuthClient::new(http.clone(), urls.clone(), credentials);
        Some(Self {
            app: Arc::new(AppTokenSource::new(oauth)),
            helix: Arc::new(HelixClient::new(
                http,
                urls.clone(),
                state.config.twitch.client_id.clone(),
                HelixConfig::default(),
            )),
            urls,
        })
    }
}

/// Retries `f` with backoff until it succeeds or `stop` is cancelled.
async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    stop: &CancellationToken,
    mut f: impl FnMut() -> F,
) -> Option<T> {
    let mut wait = Duration::from_secs(1);
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => tracing::warn!(error = %e, retry_in = ?wait, "{what} failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// One conduit shard: its WebSocket session, attached to the conduit, until `stop`.
pub async fn run_shard(state: AppState, shard_id: u32, stop: CancellationToken) {
    let Some(c) = Clients::new(&state) else {
        return;
    };
    // The reconciler (maybe on another instance) creates the conduit; a shard looks for it
    // twice a second, so events flow as soon as it exists.
    let conduit = loop {
        match c.helix.get_conduits(c.app.as_ref()).await {
            Ok(list) => {
                if let Some(found) = list
                    .into_iter()
                    .find(|x| x.shard_count > i64::from(shard_id))
                {
                    break found;
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for the EventSub conduit failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    let shard = Shard::spawn(
        c.helix.clone(),
        c.app.clone(),
        conduit.id.clone(),
        shard_id.to_string(),
        WsConfig::new(c.urls.eventsub_ws.clone()),
    );
    tracing::info!(conduit = %conduit.id, shard_id, "EventSub shard started");
    consume(state, shard, stop).await;
}

/// The subscription reconciler (and, with conduits, the conduit itself), until `stop`.
pub async fn run_reconciler(state: AppState, stop: CancellationToken) {
    let Some(c) = Clients::new(&state) else {
        return;
    };
    let destination = match state.config.eventsub_transport {
        EventSubTransport::Webhook => Destination::Webhook {
            callback: crate::config::join(&state.public_url, "eventsub").to_string(),
            secret: state.eventsub_secret.expose_secret().to_owned(),
        },
        EventSubTransport::Conduit => {
            let shards = state.config.conduit_shards;
            let Some(conduit) = retry("setting up the EventSub conduit", &stop, || {
                ensure_conduit(&c.helix, c.app.as_ref(), shards)
            })
            .await
            else {
                return;
            };
            tracing::info!(conduit = %conduit.id, shards, "EventSub conduit ready");
            // Twitch drops events for a conduit without an enabled shard: subscribe only once
            // a shard (on this instance or another) is attached.
            loop {
                match c.helix.get_shards(c.app.as_ref(), &conduit.id, None).await {
                    Ok(page) if page.data.iter().any(|s| s.status == "enabled") => break,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "listing the conduit's shards failed"),
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            Destination::Conduit(conduit.id)
        }
    };

    let mut manager = Manager::new(c.helix, c.app, destination, GRACE)
        .watch_authorization_revokes(&state.config.twitch.client_id);
    loop {
        let since = Utc::now() - chrono::Duration::days(ACTIVE_WINDOW_DAYS);
        let wanted = match (
            state.store.wanted_streamers(since).await,
            state.store.consent_grants().await,
        ) {
            (Ok(w), Ok(c)) => Ok((
                w,
                c.into_iter()
                    .map(|(user_id, streamer_id)| sev_pipeline::Consent {
                        streamer_id,
                        user_id,
                    })
                    .collect::<Vec<_>>(),
            )),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match wanted {
            Ok((wanted, consents)) => match manager.reconcile_with(&wanted, &consents).await {
                Ok(status) => {
                    for (name, n) in Manager::summary(&status) {
                        state
                            .metrics
                            .subscriptions
                            .get_or_create(&KindLabels { kind: name.into() })
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                    if let Ok(v) = serde_json::to_value(&status)
                        && let Err(e) = state
                            .store
                            .put_app_state(crate::state::SUBSCRIPTIONS_STATE, &v)
                            .await
                    {
                        tracing::warn!(error = %e, "sharing the subscription report failed");
                    }
                    *state
                        .subscriptions
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reconciling EventSub subscriptions failed; retrying")
                }
            },
            Err(e) => tracing::warn!(error = %e, "reading the wanted streamers failed; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = state.resubscribe.notified() => {}
            () = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
}

/// Turns the shard's notifications into feed events.
async fn consume(state: AppState, mut shard: Shard, stop: CancellationToken) {
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            e = shard.next_event() => match e { Some(e) => e, None => break },
        };
        match event {
            ShardEvent::Notification {
                message_id,
                notification,
            } => {
                crate::events::ingest_notification(&state, &message_id, &notification).await;
            }
            ShardEvent::Revocation(s) => {
                tracing::warn!(id = %s.id, status = %s.status, "Twitch revoked a subscription; repairing");
                state.resubscribe.notify_one();
            }
            ShardEvent::Attached { session_id } => {
                tracing::info!(%session_id, "EventSub shard attached")
            }
            ShardEvent::AttachFailed { error, .. } => {
                tracing::warn!(%error, "attaching the EventSub shard failed; retrying")
            }
            ShardEvent::Lost(reason) => {
                tracing::warn!(?reason, "EventSub shard lost; reconnecting")
            }
        }
    }
    shard.stop().await;
}
