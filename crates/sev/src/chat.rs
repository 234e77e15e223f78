//! The chat tier (PRODUCT.md): subs, resubs, gifts, cheers and announcements come from
//! `channel.chat.notification` and `channel.chat.message`, which Twitch delivers only over an
//! EventSub WebSocket session authorised by a user with `user:read:chat`. Every wanted
//! streamer gets a reader: a signed-in user who has that streamer as a favorite. Twitch allows
//! a user 3 WebSocket sessions with 300 subscriptions each, so sev opens one session per
//! reading user and puts all of that user's assigned streamers on it, preferring users who
//! already read. When the token is revoked or Twitch refuses a subscription, another fan
//! takes the streamer over, and the feed gets an explicit gap entry: events sent in between
//! are lost (Twitch does not replay WebSocket deliveries).

use std::collections::{BTreeMap, HashMap};
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
/// Streamers per reading session: 2 subscriptions each, under Twitch's 300 per session.
const STREAMERS_PER_SESSION: usize = 150;

/// What readers tell the supervisor.
#[derive(Debug)]
enum Report {
    /// Twitch refused this user for this streamer (banned from that chat, a revoked
    /// subscription): another fan should read it.
    StreamerFailed {
        user: String,
        streamer: String,
        why: String,
    },
    /// The user's token is no good any more (revoked, refused): every streamer moves.
    UserFailed { user: String, why: String },
}

enum Command {
    /// Read this streamer's chat; `gap_since`: it was not read since then (a failover).
    Add(String, Option<chrono::DateTime<Utc>>),
    Remove(String),
}

struct Reader {
    commands: mpsc::UnboundedSender<Command>,
    streamers: usize,
    stop: CancellationToken,
}

/// Runs the chat readers until shutdown.
pub async fn run(state: AppState, stop: CancellationToken) {
    let (report_tx, mut reports) = mpsc::unbounded_channel::<Report>();
    let mut readers: HashMap<String, Reader> = HashMap::new();
    let mut assigned: HashMap<String, String> = HashMap::new();
    let mut benched: HashMap<(String, String), Instant> = HashMap::new();
    // Streamers whose reader failed: the next reader starts the feed with a gap entry.
    let mut gap: HashMap<String, chrono::DateTime<Utc>> = HashMap::new();
    let mut pending: Vec<Report> = Vec::new();
    loop {
        while let Ok(r) = reports.try_recv() {
            pending.push(r);
        }
        for report in pending.drain(..) {
            let failed: Vec<(String, String)> = match report {
                Report::StreamerFailed {
                    user,
                    streamer,
                    why,
                } => {
                    tracing::warn!(streamer_id = %streamer, user_id = %user, %why, "chat reader refused for this channel; failing over");
                    vec![(user, streamer)]
                }
                Report::UserFailed { user, why } => {
                    tracing::warn!(user_id = %user, %why, "chat reader's token failed; failing over");
                    if let Some(r) = readers.remove(&user) {
                        r.stop.cancel();
                    }
                    assigned
                        .iter()
                        .filter(|(_, u)| **u == user)
                        .map(|(s, u)| (u.clone(), s.clone()))
                        .collect()
                }
            };
            for (user, streamer) in failed {
                if assigned.get(&streamer) == Some(&user) {
                    assigned.remove(&streamer);
                    if let Some(r) = readers.get_mut(&user) {
                        let _ = r.commands.send(Command::Remove(streamer.clone()));
                        r.streamers = r.streamers.saturating_sub(1);
                    }
                }
                benched.insert((streamer.clone(), user), Instant::now());
                gap.entry(streamer).or_insert_with(Utc::now);
            }
        }
        benched.retain(|_, at| at.elapsed() < BENCH_FOR);

        let since = Utc::now() - chrono::Duration::days(ACTIVE_WINDOW_DAYS);
        match state.store.wanted_streamers(since).await {
            Ok(wanted) => {
                assigned.retain(|streamer, user| {
                    let keep = wanted.contains(streamer);
                    if !keep && let Some(r) = readers.get_mut(user) {
                        let _ = r.commands.send(Command::Remove(streamer.clone()));
                        r.streamers = r.streamers.saturating_sub(1);
                    }
                    keep
                });
                for streamer in wanted {
                    if assigned.contains_key(&streamer) {
                        continue;
                    }
                    let candidates = match state.store.chat_reader_sessions(&streamer).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(error = %e, "listing chat-reader candidates failed");
                            continue;
                        }
                    };
                    let usable: Vec<Session> = candidates
                        .into_iter()
                        .filter(|s| !benched.contains_key(&(streamer.clone(), s.user_id.clone())))
                        .collect();
                    // A user who already reads (with room) before opening another session.
                    let chosen = usable
                        .iter()
                        .find(|s| {
                            readers
                                .get(&s.user_id)
                                .is_some_and(|r| r.streamers < STREAMERS_PER_SESSION)
                        })
                        .or_else(|| usable.iter().find(|s| !readers.contains_key(&s.user_id)));
                    let Some(session) = chosen.cloned() else {
                        continue;
                    };
                    let reader = readers.entry(session.user_id.clone()).or_insert_with(|| {
                        let (commands, rx) = mpsc::unbounded_channel();
                        let stop = stop.child_token();
                        tokio::spawn(read(
                            state.clone(),
                            session.clone(),
                            rx,
                            report_tx.clone(),
                            stop.clone(),
                        ));
                        Reader {
                            commands,
                            streamers: 0,
                            stop,
                        }
                    });
                    let _ = reader
                        .commands
                        .send(Command::Add(streamer.clone(), gap.remove(&streamer)));
                    reader.streamers += 1;
                    assigned.insert(streamer, session.user_id.clone());
                }
                readers.retain(|_, r| {
                    let keep = r.streamers > 0;
                    if !keep {
                        r.stop.cancel();
                    }
                    keep
                });
            }
            Err(e) => tracing::warn!(error = %e, "reading the wanted streamers failed"),
        }

        tokio::select! {
            () = stop.cancelled() => break,
            () = state.chat_wake.notified() => {}
            Some(r) = reports.recv() => pending.push(r),
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

/// One reading user: a WebSocket session holding the chat subscriptions of every streamer
/// assigned to them.
async fn read(
    state: AppState,
    session: Session,
    mut commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedSender<Report>,
    stop: CancellationToken,
) {
    let user = session.user_id.clone();
    let Some(tokens) = crate::web::user_tokens(&state, &session) else {
        let _ = reports.send(Report::UserFailed {
            user,
            why: "the stored token cannot be opened".into(),
        });
        return;
    };
    // Streamer → when it stopped being read (a gap to report once it is read again).
    let mut streamers: BTreeMap<String, Option<chrono::DateTime<Utc>>> = BTreeMap::new();
    let mut current: Option<String> = None;
    // Streamer → the ids of its subscriptions on the current session.
    let mut subs: HashMap<String, Vec<String>> = HashMap::new();
    let mut ws = WsSession::spawn(WsConfig::new(state.config.twitch.eventsub_ws_url.clone()));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            cmd = commands.recv() => match cmd {
                None => break,
                Some(Command::Add(streamer, gap)) => {
                    streamers.insert(streamer.clone(), gap);
                    if let Some(sid) = &current
                        && let Err(r) = subscribe(&state, &tokens, &user, sid, &streamer, &mut streamers, &mut subs).await
                    {
                        let fatal = matches!(r, Report::UserFailed { .. });
                        let _ = reports.send(r);
                        if fatal {
                            break;
                        }
                    }
                }
                Some(Command::Remove(streamer)) => {
                    // Deleted, so the session keeps room (300) for the streamers it reads.
                    for id in subs.remove(&streamer).unwrap_or_default() {
                        if let Err(e) = state.web.helix.delete_subscription(&tokens, &id).await {
                            tracing::debug!(error = %e, "deleting a chat subscription failed");
                        }
                    }
                    streamers.remove(&streamer);
                    set_active(&state, &streamer, false);
                }
            },
            event = ws.next_event() => match event {
                None => break,
                Some(SessionEvent::Welcome { session_id, .. }) => {
                    current = Some(session_id.clone());
                    // A new session: the old one's subscriptions are gone with it.
                    subs.clear();
                    let names: Vec<String> = streamers.keys().cloned().collect();
                    let mut fatal = false;
                    for streamer in names {
                        if let Err(r) = subscribe(&state, &tokens, &user, &session_id, &streamer, &mut streamers, &mut subs).await {
                            fatal = matches!(r, Report::UserFailed { .. });
                            let _ = reports.send(r);
                            if fatal {
                                break;
                            }
                        }
                    }
                    if fatal {
                        break;
                    }
                }
                Some(SessionEvent::Notification { message_id, notification }) => {
                    crate::events::ingest_notification(&state, &message_id, &notification).await;
                }
                Some(SessionEvent::Revocation(sub)) => {
                    let streamer = sub
                        .condition
                        .get("broadcaster_user_id")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let why = format!("subscription revoked: {}", sub.status);
                    if matches!(sub.status.as_str(), "authorization_revoked" | "user_removed") {
                        let _ = reports.send(Report::UserFailed { user: user.clone(), why });
                        break;
                    }
                    streamers.remove(&streamer);
                    set_active(&state, &streamer, false);
                    let _ = reports.send(Report::StreamerFailed { user: user.clone(), streamer, why });
                }
                Some(SessionEvent::Reconnected { .. }) => {}
                Some(SessionEvent::Disconnected(reason)) => {
                    // The subscriptions died with the session; the next welcome recreates
                    // them, and what was sent meanwhile is lost: say so in the feed.
                    tracing::warn!(?reason, user_id = %user, "chat reader disconnected; reconnecting");
                    current = None;
                    let now = Utc::now();
                    for (streamer, gap) in &mut streamers {
                        gap.get_or_insert(now);
                        set_active(&state, streamer, false);
                    }
                }
            },
        }
    }
    for streamer in streamers.keys() {
        set_active(&state, streamer, false);
    }
    ws.stop().await;
}

/// Creates one streamer's chat subscriptions on the session; on success marks the chat tier
/// active and writes the pending gap entry, if any.
async fn subscribe(
    state: &AppState,
    tokens: &dyn sev_twitch::oauth::TokenSource,
    user: &str,
    session_id: &str,
    streamer: &str,
    streamers: &mut BTreeMap<String, Option<chrono::DateTime<Utc>>>,
    subs: &mut HashMap<String, Vec<String>>,
) -> Result<(), Report> {
    for (kind, version) in CHAT_TYPES {
        let req = CreateSubscription {
            kind: (*kind).into(),
            version: (*version).into(),
            condition: json!({ "broadcaster_user_id": streamer, "user_id": user }),
            transport: Transport {
                method: "websocket".into(),
                session_id: Some(session_id.to_owned()),
                ..Transport::default()
            },
        };
        match state.web.helix.create_subscription(tokens, &req).await {
            Ok(created) => subs
                .entry(streamer.to_owned())
                .or_default()
                .extend(created.data.into_iter().map(|s| s.id)),
            Err(HelixError::Conflict(_)) => {}
            Err(e @ (HelixError::Unauthorized(_) | HelixError::Token(_))) => {
                return Err(Report::UserFailed {
                    user: user.to_owned(),
                    why: e.to_string(),
                });
            }
            Err(e @ HelixError::Forbidden(_)) => {
                streamers.remove(streamer);
                return Err(Report::StreamerFailed {
                    user: user.to_owned(),
                    streamer: streamer.to_owned(),
                    why: e.to_string(),
                });
            }
            // Twitch unreachable or busy: the next welcome (after the unused socket closes)
            // tries again.
            Err(e) => {
                tracing::warn!(error = %e, %kind, streamer_id = %streamer, "creating a chat subscription failed");
                return Ok(());
            }
        }
    }
    tracing::info!(streamer_id = %streamer, user_id = %user, "chat reader subscribed");
    set_active(state, streamer, true);
    if let Some(since) = streamers.get_mut(streamer).and_then(Option::take)
        && let Err(e) = state.events.ingest(vec![gap_event(streamer, since)]).await
    {
        tracing::warn!(error = %e, "storing a chat gap entry failed");
    }
    Ok(())
}

fn set_active(state: &AppState, streamer_id: &str, active: bool) {
    let mut set = state
        .chat_readers
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let changed = if active {
        set.insert(streamer_id.to_owned())
    } else {
        set.remove(streamer_id)
    };
    if !changed {
        return;
    }
    // Shared through the store: the stream page may be served by another instance. The
    // snapshot is taken when the write runs, so the last write carries the latest set.
    drop(set);
    let state = state.clone();
    tokio::spawn(async move {
        let snapshot: Vec<String> = state
            .chat_readers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        if let Err(e) = state
            .store
            .put_app_state(CHAT_STATE, &serde_json::json!(snapshot))
            .await
        {
            tracing::warn!(error = %e, "sharing the chat readers failed");
        }
    });
}

/// Where the streamers with a running chat reader are shared (`Store::put_app_state`).
pub const CHAT_STATE: &str = "chat_readers";

/// Whether a chat reader runs for this streamer, on any instance.
pub async fn reading(state: &AppState, streamer_id: &str) -> bool {
    match state.store.app_state(CHAT_STATE).await {
        Ok(Some(v)) => v
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(streamer_id))),
        _ => state
            .chat_readers
            .read()
            .is_ok_and(|s| s.contains(streamer_id)),
    }
}
