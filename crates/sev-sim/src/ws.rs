//! The EventSub WebSocket server at `/ws` (PLATFORM.md §4): welcome at once, keepalives,
//! close 4003 when nothing subscribes in time, 4001 on inbound traffic, `session_reconnect`
//! with a 30 s grace (then 4004), and any close code on request.

use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::eventsub::{Outbound, SessionRec};
use crate::state::{Shared, lock};

pub fn router() -> Router<Shared> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    keepalive_timeout_seconds: Option<String>,
    reconnect_id: Option<String>,
}

async fn upgrade(
    State(state): State<Shared>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    // Out-of-range values are clamped, as Twitch does; garbage takes the default.
    let keepalive = q
        .keepalive_timeout_seconds
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(10, |k| k.clamp(10, 600));
    ws.on_upgrade(move |socket| run(state, socket, keepalive, q.reconnect_id))
}

fn frame(message_type: &str, payload: serde_json::Value) -> Message {
    Message::Text(
        json!({
            "metadata": {
                "message_id": uuid::Uuid::new_v4().to_string(),
                "message_type": message_type,
                "message_timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            },
            "payload": payload,
        })
        .to_string()
        .into(),
    )
}

fn session_payload(
    id: &str,
    status: &str,
    keepalive: Option<u64>,
    reconnect_url: Option<&str>,
) -> serde_json::Value {
    json!({"session": {
        "id": id, "status": status, "keepalive_timeout_seconds": keepalive,
        "reconnect_url": reconnect_url,
        "connected_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    }})
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
}

async fn run(state: Shared, mut socket: WebSocket, keepalive_s: u64, reconnect_id: Option<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (subscribe_deadline, grace) = {
        let st = lock(&state);
        (st.config.subscribe_deadline, st.config.reconnect_grace)
    };
    // A reconnect takes over its session (and subscriptions); anything else is a new session.
    let joined = {
        let mut st = lock(&state);
        match reconnect_id.as_deref() {
            Some(id) => st.eventsub.sessions.get_mut(id).map(|rec| {
                let old = std::mem::replace(&mut rec.tx, tx.clone());
                rec.connected = true;
                (rec.id.clone(), Some(old))
            }),
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                st.eventsub.sessions.insert(
                    id.clone(),
                    SessionRec {
                        id: id.clone(),
                        client_id: None,
                        user_id: None,
                        tx: tx.clone(),
                        connected: true,
                        used: false,
                    },
                );
                Some((id, None))
            }
        }
    };
    let Some((session_id, old_tx)) = joined else {
        close(&mut socket, 4007, "invalid reconnect").await;
        return;
    };
    if socket
        .send(frame(
            "session_welcome",
            session_payload(&session_id, "connected", Some(keepalive_s), None),
        ))
        .await
        .is_err()
    {
        return;
    }
    // The old socket stops receiving now that the new one is welcomed, and must be closed by
    // the client within the grace period.
    if let Some(old) = old_tx {
        let _ = old.send(Outbound::Close(0, String::new()));
    }

    let keepalive = Duration::from_secs(keepalive_s);
    let mut keepalive_on = true;
    let mut next_keepalive = Instant::now() + keepalive;
    let unused_deadline = Instant::now() + subscribe_deadline;
    let mut grace_deadline: Option<Instant> = None;
    let mut replaced = false;
    let end_status = loop {
        let grace_sleep = async {
            match grace_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Frame(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() { break "websocket_network_error"; }
                    next_keepalive = Instant::now() + keepalive;
                }
                // Code 0: this socket was replaced by a reconnect; the client should close it.
                Some(Outbound::Close(0, _)) => {
                    replaced = true;
                    grace_deadline = Some(Instant::now() + grace);
                }
                Some(Outbound::Close(code, reason)) => {
                    close(&mut socket, code, &reason).await;
                    break status_for(code);
                }
                Some(Outbound::Reconnect(url)) => {
                    let _ = socket.send(frame("session_reconnect", session_payload(&session_id, "reconnecting", None, Some(&url)))).await;
                }
                Some(Outbound::Keepalive(on)) => keepalive_on = on,
                None => break "websocket_internal_error",
            },
            () = tokio::time::sleep_until(next_keepalive), if keepalive_on && !replaced => {
                if socket.send(frame("session_keepalive", json!({}))).await.is_err() { break "websocket_network_error"; }
                next_keepalive = Instant::now() + keepalive;
            }
            () = tokio::time::sleep_until(unused_deadline), if !replaced && !is_used(&state, &session_id) => {
                close(&mut socket, 4003, "connection unused").await;
                break "websocket_connection_unused";
            }
            () = grace_sleep => {
                close(&mut socket, 4004, "reconnect grace time expired").await;
                break "websocket_failed_to_reconnect";
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    close(&mut socket, 4001, "client sent inbound traffic").await;
                    break "websocket_received_inbound_traffic";
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "websocket_disconnected",
            },
        }
    };
    if !replaced {
        let mut st = lock(&state);
        st.eventsub.session_closed(&session_id, end_status);
    }
}

fn is_used(state: &Shared, session_id: &str) -> bool {
    lock(state)
        .eventsub
        .sessions
        .get(session_id)
        .is_some_and(|s| s.used)
}

/// The subscription status after a close with `code`.
fn status_for(code: u16) -> &'static str {
    match code {
        4001 => "websocket_received_inbound_traffic",
        4002 => "websocket_failed_ping_pong",
        4003 => "websocket_connection_unused",
        4004 => "websocket_failed_to_reconnect",
        4005 => "websocket_network_timeout",
        4006 => "websocket_network_error",
        _ => "websocket_internal_error",
    }
}

/// Sends `session_reconnect` to a session: its client must connect to the returned URL.
pub fn request_reconnect(state: &Shared, session_id: &str) -> Option<String> {
    let st = lock(state);
    let rec = st
        .eventsub
        .sessions
        .get(session_id)
        .filter(|s| s.connected)?;
    let base = st.base_url.replacen("http", "ws", 1);
    let url = format!("{base}/ws?reconnect_id={session_id}");
    rec.tx.send(Outbound::Reconnect(url.clone())).ok()?;
    Some(url)
}
