//! The chat tier (PRODUCT.md): subs, resubs, gifts, cheers and announcements come from
//! `channel.chat.notification` and `channel.chat.message`, which Twitch delivers only over an
//! EventSub WebSocket session authorised by a user with `user:read:chat`. sev runs one such
//! chat reader per wanted streamer, with the token of a signed-in user who has that streamer
//! as a favorite. When the token is revoked or the session cannot subscribe, another fan's
//! token takes over, and the feed gets an explicit gap entry: events sent in between are lost
//! (Twitch does not replay WebSocket deliveries).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use sev_store::Session;
use sev_twitch::eventsub::Transport;
use sev_twitch::helix::{CreateSubscription, HelixError};
use sev_twitch::ws::{SessionEvent, WsConfig, WsSession};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The subscriptions a chat reader holds for its streamer (cost 0: the user is the reader).
pub const CHAT_TYPES: &[(&str, &str)] = &[
    ("channel.chat.notification", "1"),
    ("channel.chat.message", "1"),
];
/// How often the readers are checked against the wanted streamers when nothing else wakes them.
const CHECK_EVERY: Duration = Duration::from_secs(30);
/// A user whose token failed for a streamer is not tried again for it this long.
const BENCH_FOR: Duration = Duration::from_secs(600);
/// Users seen within this window are active (as for the public tier).
const ACTIVE_WINDOW_DAYS: i64 = 30;

/// Why a reader stopped.
#[derive(Debug)]
enum Ended {
    /// Twitch revoked the reader's subscription (authorization revoked, user removed…) or
    /// refused to create it with this token: try another user.
    TokenFailed(String),
    /// Asked to stop (the streamer is no longer wanted, or shutdown).
    Stopped,
}

struct Reader {
    user_id: String,
    stop: CancellationToken,
}

/// Runs the chat readers until shutdown.
pub async fn run(state: AppState) {
    let (done_tx, mut done) = mpsc::unbounded_channel::<(String, String, Ended)>();
    let mut readers: HashMap<String, Reader> = HashMap::new();
    let mut benched: HashMap<(String, String), Instant> = HashMap::new();
    // Streamers whose reader failed: the next reader starts the feed with a gap entry.
    let mut gap: HashMap<String, chrono::DateTime<Utc>> = HashMap::new();
    loop {
        while let Ok((streamer, user, ended)) = done.try_recv() {
            if readers.get(&streamer).is_some_and(|r| r.user_id == user) {
                readers.remove(&streamer);
            }
            if let Ended::TokenFailed(why) = ended {
                tracing::warn!(streamer_id = %streamer, user_id = %user, %why, "chat reader lost its token; failing over");
                benched.insert((streamer.clone(), user), Instant::now());
                gap.entry(streamer).or_insert_with(Utc::now);
            }
        }
        benched.retain(|_, at| at.elapsed() < BENCH_FOR);

        let since = Utc::now() - chrono::Duration::days(ACTIVE_WINDOW_DAYS);
        match state.store.wanted_streamers(since).await {
            Ok(wanted) => {
                readers.retain(|streamer, r| {
                    let keep = wanted.contains(streamer);
                    if !keep {
                        r.stop.cancel();
                    }
                    keep
                });
                for streamer in wanted {
                    if readers.contains_key(&streamer) {
                        continue;
                    }
                    let candidates = match state.store.chat_reader_sessions(&streamer).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "listing chat-reader candidates failed");
                            continue;
                        }
                    };
                    let Some(session) = candidates
                        .into_iter()
                        .find(|s| !benched.contains_key(&(streamer.clone(), s.user_id.clone())))
                    else {
                        continue;
                    };
                    let stop = state.shutdown.child_token();
                    readers.insert(
                        streamer.clone(),
                        Reader {
                            user_id: session.user_id.clone(),
                            stop: stop.clone(),
                        },
                    );
                    let since = gap.remove(&streamer);
                    let (state, tx) = (state.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let user = session.user_id.clone();
                        let ended = read(&state, &streamer, &session, since, stop).await;
                        let _ = tx.send((streamer, user, ended));
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the wanted streamers failed"),
        }

        tokio::select! {
            () = state.shutdown.cancelled() => break,
            () = state.chat_wake.notified() => {}
            Some(msg) = done.recv() => { let _ = done_tx.send(msg); }
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
    for r in readers.values() {
        r.stop.cancel();
    }
}

/// The gap entry a failover leaves in the feed, so every viewer (and the history) shows it.
fn gap_event(streamer_id: &str, since: chrono::DateTime<Utc>) -> sev_store::NewEvent {
    let now = Utc::now();
    let feed = sev_pipeline::FeedEvent {
        kind: "gap".into(),
        visibility: sev_pipeline::Visibility::Public,
        text: format!(
            "Chat events between {} and {} UTC may be missing: sev's chat reader for this channel changed.",
            since.format("%H:%M:%S"),
            now.format("%H:%M:%S")
        ),
        actor: None,
        target: None,
        amount: None,
        message: None,
        group: None,
        source: sev_pipeline::Source {
            subscription_type: "sev.chat_reader".into(),
            subscription_version: "1".into(),
            message_ids: Vec::new(),
        },
        raw: json!({ "since": since, "until": now }),
    };
    let id = uuid::Uuid::now_v7();
    sev_store::NewEvent {
        id,
        streamer_id: streamer_id.to_owned(),
        kind: feed.kind.clone(),
        occurred_at: now,
        dedupe_keys: vec![format!("gap:{id}")],
        payload: serde_json::to_value(&feed).unwrap_or_default(),
    }
}

/// One chat reader: a WebSocket session with the chat subscriptions for one streamer.
async fn read(
    state: &AppState,
    streamer_id: &str,
    session: &Session,
    gap_since: Option<chrono::DateTime<Utc>>,
    stop: CancellationToken,
) -> Ended {
    let Some(tokens) = crate::web::user_tokens(state, session) else {
        return Ended::TokenFailed("the stored token cannot be opened".into());
    };
    let mut gap_since = gap_since;
    let mut ws = WsSession::spawn(WsConfig::new(state.config.twitch.eventsub_ws_url.clone()));
    let helix = &state.web.helix;
    let ended = loop {
        let event = tokio::select! {
            () = stop.cancelled() => break Ended::Stopped,
            e = ws.next_event() => match e { Some(e) => e, None => break Ended::Stopped },
        };
        match event {
            SessionEvent::Welcome { session_id, .. } => {
                let mut failed = None;
                for (kind, version) in CHAT_TYPES {
                    let req = CreateSubscription {
                        kind: (*kind).into(),
                        version: (*version).into(),
                        condition: json!({ "broadcaster_user_id": streamer_id, "user_id": session.user_id }),
                        transport: Transport {
                            method: "websocket".into(),
                            session_id: Some(session_id.clone()),
                            ..Transport::default()
                        },
                    };
                    match helix.create_subscription(&tokens, &req).await {
                        Ok(_) | Err(HelixError::Conflict(_)) => {}
                        Err(
                            e @ (HelixError::Unauthorized(_)
                            | HelixError::Forbidden(_)
                            | HelixError::Token(_)),
                        ) => {
                            failed = Some(e.to_string());
                            break;
                        }
                        // Twitch unreachable or busy: the socket closes unused and the session
                        // reconnects, trying again.
                        Err(e) => {
                            tracing::warn!(error = %e, %kind, "creating a chat subscription failed")
                        }
                    }
                }
                if let Some(why) = failed {
                    break Ended::TokenFailed(why);
                }
                tracing::info!(streamer_id, user_id = %session.user_id, "chat reader subscribed");
                set_active(state, streamer_id, true);
                if let Some(since) = gap_since.take()
                    && let Err(e) = state
                        .events
                        .ingest(vec![gap_event(streamer_id, since)])
                        .await
                {
                    tracing::warn!(error = %e, "storing a chat gap entry failed");
                }
            }
            SessionEvent::Notification {
                message_id,
                notification,
            } => crate::events::ingest_notification(state, &message_id, &notification).await,
            SessionEvent::Revocation(sub) => {
                break Ended::TokenFailed(format!("subscription revoked: {}", sub.status));
            }
            SessionEvent::Reconnected { .. } => {}
            SessionEvent::Disconnected(reason) => {
                // The subscriptions died with the session; the next welcome recreates them,
                // and what was sent meanwhile is lost: say so in the feed.
                tracing::warn!(
                    ?reason,
                    streamer_id,
                    "chat reader disconnected; reconnecting"
                );
                gap_since.get_or_insert_with(Utc::now);
                set_active(state, streamer_id, false);
            }
        }
    };
    set_active(state, streamer_id, false);
    ws.stop().await;
    ended
}

fn set_active(state: &AppState, streamer_id: &str, active: bool) {
    let mut set = state
        .chat_readers
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if active {
        set.insert(streamer_id.to_owned());
    } else {
        set.remove(streamer_id);
    }
}
