//! The EventSub WebSocket session against a scripted Twitch: welcome, keepalive loss, the
//! reconnect hand-off with events flowing across it, every close code, and the size cap.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use sev_twitch::eventsub::Event;
use sev_twitch::ws::{CloseReason, Disconnect, SessionEvent, WsConfig, WsSession};
use tokio::sync::Notify;

type Script = Arc<
    dyn Fn(WebSocket, usize, Option<String>) -> futures_util::future::BoxFuture<'static, ()>
        + Send
        + Sync,
>;

#[derive(Clone)]
struct Twitch {
    script: Script,
    connections: Arc<AtomicUsize>,
}

async fn upgrade(State(t): State<Twitch>, RawQuery(q): RawQuery, ws: WebSocketUpgrade) -> Response {
    let n = t.connections.fetch_add(1, Ordering::SeqCst) + 1;
    ws.on_upgrade(move |socket| (t.script)(socket, n, q))
}

async fn twitch(script: Script) -> (url::Url, Arc<AtomicUsize>) {
    let connections = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route("/ws", get(upgrade)).with_state(Twitch {
        script,
        connections: connections.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (
        url::Url::parse(&format!("ws://{addr}/ws")).unwrap(),
        connections,
    )
}

fn config(url: url::Url) -> WsConfig {
    let mut c = WsConfig::new(url);
    c.backoff = Duration::from_millis(10);
    c.welcome_timeout = Duration::from_secs(3);
    c
}

fn welcome(id: &str, keepalive: u64) -> Message {
    text(
        json!({"metadata": {"message_id": format!("w-{id}"), "message_type": "session_welcome", "message_timestamp": "2026-01-02T18:00:00Z"},
        "payload": {"session": {"id": id, "status": "connected", "keepalive_timeout_seconds": keepalive, "reconnect_url": null, "connected_at": "2026-01-02T18:00:00Z"}}}),
    )
}

fn notification(n: u32) -> Message {
    text(
        json!({"metadata": {"message_id": format!("msg-{n}"), "message_type": "notification", "message_timestamp": "2026-01-02T18:00:00Z", "subscription_type": "stream.online", "subscription_version": "1"},
        "payload": {"subscription": {"id": "sub-1", "status": "enabled", "type": "stream.online", "version": "1", "cost": 0, "condition": {"broadcaster_user_id": "4242"}, "transport": {"method": "websocket", "session_id": "s1"}, "created_at": "2026-01-02T18:00:00Z"},
            "event": {"id": n.to_string(), "broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer", "broadcaster_user_name": "FavStreamer", "type": "live", "started_at": "2026-01-02T18:00:00Z"}}}),
    )
}

fn reconnect(url: &str) -> Message {
    text(
        json!({"metadata": {"message_id": "r-1", "message_type": "session_reconnect", "message_timestamp": "2026-01-02T18:00:00Z"},
        "payload": {"session": {"id": "s1", "status": "reconnecting", "keepalive_timeout_seconds": null, "reconnect_url": url, "connected_at": "2026-01-02T18:00:00Z"}}}),
    )
}

fn text(v: serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

async fn next(session: &mut WsSession) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(10), session.next_event())
        .await
        .expect("an event within 10 s")
        .expect("session running")
}

fn event_id(e: &SessionEvent) -> Option<String> {
    match e {
        SessionEvent::Notification { notification, .. } => match &notification.event {
            Event::StreamOnline(s) => Some(s.id.clone()),
            other => panic!("{other:?}"),
        },
        _ => None,
    }
}

/// Keeps a socket open without sending anything, until the client goes away.
async fn idle(mut socket: WebSocket) {
    while let Some(Ok(_)) = socket.recv().await {}
}

#[tokio::test]
async fn welcome_then_notifications_in_order() {
    let seen_query = Arc::new(std::sync::Mutex::new(None));
    let q = seen_query.clone();
    let (url, _) = twitch(Arc::new(move |mut socket, _, query| {
        *q.lock().unwrap() = query;
        Box::pin(async move {
            socket.send(welcome("s1", 10)).await.unwrap();
            for n in 1..=3 {
                socket.send(notification(n)).await.unwrap();
            }
            idle(socket).await;
        })
    }))
    .await;
    let mut c = config(url);
    c.keepalive_timeout_seconds = Some(10);
    let mut session = WsSession::spawn(c);
    assert_eq!(
        next(&mut session).await,
        SessionEvent::Welcome {
            session_id: "s1".into(),
            keepalive_timeout_seconds: Some(10)
        }
    );
    for n in 1..=3 {
        assert_eq!(event_id(&next(&mut session).await), Some(n.to_string()));
    }
    assert_eq!(
        seen_query.lock().unwrap().as_deref(),
        Some("keepalive_timeout_seconds=10")
    );
    session.stop().await;
}

#[tokio::test]
async fn keepalive_loss_reconnects_to_a_new_session() {
    let (url, connections) = twitch(Arc::new(|mut socket, n, _| {
        Box::pin(async move {
            // The first session goes silent after its welcome; the second behaves.
            socket.send(welcome(&format!("s{n}"), 1)).await.unwrap();
            if n > 1 {
                socket.send(notification(7)).await.unwrap();
            }
            idle(socket).await;
        })
    }))
    .await;
    let mut session = WsSession::spawn(config(url));
    assert!(
        matches!(next(&mut session).await, SessionEvent::Welcome { ref session_id, .. } if session_id == "s1")
    );
    assert_eq!(
        next(&mut session).await,
        SessionEvent::Disconnected(Disconnect::KeepaliveTimeout)
    );
    assert!(
        matches!(next(&mut session).await, SessionEvent::Welcome { ref session_id, .. } if session_id == "s2"),
        "a new session to subscribe on"
    );
    assert_eq!(event_id(&next(&mut session).await), Some("7".into()));
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    session.stop().await;
}

#[tokio::test]
async fn the_reconnect_hand_off_loses_and_doubles_nothing() {
    let old_sent = Arc::new(Notify::new());
    let old_closed_by_client = Arc::new(Notify::new());
    let base: Arc<std::sync::Mutex<String>> = Arc::default();
    let (url, _) = {
        let (old_sent, old_closed, base) =
            (old_sent.clone(), old_closed_by_client.clone(), base.clone());
        twitch(Arc::new(move |mut socket, n, _| {
            let (old_sent, old_closed, base) = (old_sent.clone(), old_closed.clone(), base.clone());
            Box::pin(async move {
                if n == 1 {
                    socket.send(welcome("s1", 10)).await.unwrap();
                    socket.send(notification(1)).await.unwrap();
                    socket.send(notification(2)).await.unwrap();
                    let reconnect_url = format!("{}?reconnect_id=abc", base.lock().unwrap());
                    socket.send(reconnect(&reconnect_url)).await.unwrap();
                    // The old socket keeps delivering until the new one is welcomed.
                    socket.send(notification(3)).await.unwrap();
                    socket.send(notification(4)).await.unwrap();
                    old_sent.notify_one();
                    while let Some(Ok(msg)) = socket.recv().await {
                        if matches!(msg, Message::Close(_)) {
                            old_closed.notify_one();
                            return;
                        }
                    }
                    old_closed.notify_one();
                } else {
                    old_sent.notified().await;
                    socket.send(welcome("s1", 10)).await.unwrap();
                    socket.send(notification(4)).await.unwrap(); // delivered on both sockets
                    socket.send(notification(5)).await.unwrap();
                    socket.send(notification(6)).await.unwrap();
                    idle(socket).await;
                }
            })
        }))
        .await
    };
    *base.lock().unwrap() = url.to_string();
    let mut session = WsSession::spawn(config(url));
    let mut ids = Vec::new();
    let mut reconnected = false;
    while ids.len() < 6 {
        match next(&mut session).await {
            SessionEvent::Welcome { session_id, .. } => assert_eq!(session_id, "s1"),
            SessionEvent::Reconnected { session_id } => {
                assert_eq!(session_id, "s1");
                reconnected = true;
            }
            e @ SessionEvent::Notification { .. } => ids.push(event_id(&e).unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(reconnected);
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6"], "each once, in order");
    tokio::time::timeout(Duration::from_secs(5), old_closed_by_client.notified())
        .await
        .expect("the old socket is closed after the new welcome");
    session.stop().await;
}

#[tokio::test]
async fn every_close_code_is_reported_and_followed_by_a_new_session() {
    let (url, _) = twitch(Arc::new(|mut socket, n, _| {
        Box::pin(async move {
            socket.send(welcome(&format!("s{n}"), 10)).await.unwrap();
            let code = 3999 + n as u16; // 4000, 4001, … 4007, then an undocumented 4008
            socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: "scripted".into(),
                })))
                .await
                .unwrap();
            idle(socket).await;
        })
    }))
    .await;
    let mut session = WsSession::spawn(config(url));
    for code in 4000u16..=4008 {
        assert!(matches!(
            next(&mut session).await,
            SessionEvent::Welcome { .. }
        ));
        let expected = match code {
            4000 => CloseReason::InternalServerError,
            4001 => CloseReason::ClientSentInboundTraffic,
            4002 => CloseReason::ClientFailedPingPong,
            4003 => CloseReason::ConnectionUnused,
            4004 => CloseReason::ReconnectGraceTimeExpired,
            4005 => CloseReason::NetworkTimeout,
            4006 => CloseReason::NetworkError,
            4007 => CloseReason::InvalidReconnect,
            _ => CloseReason::Other(code),
        };
        assert_eq!(
            next(&mut session).await,
            SessionEvent::Disconnected(Disconnect::Closed(expected)),
            "close code {code}"
        );
    }
    session.stop().await;
}

#[tokio::test]
async fn an_oversized_message_ends_the_session_and_a_malformed_one_is_skipped() {
    let (url, _) = twitch(Arc::new(|mut socket, n, _| {
        Box::pin(async move {
            socket.send(welcome(&format!("s{n}"), 10)).await.unwrap();
            if n == 1 {
                socket
                    .send(Message::Text("{not json".into()))
                    .await
                    .unwrap();
                socket
                    .send(Message::Binary(vec![1, 2, 3].into()))
                    .await
                    .unwrap();
                socket.send(notification(1)).await.unwrap();
                socket
                    .send(Message::Text("x".repeat(100_000).into()))
                    .await
                    .unwrap();
            }
            idle(socket).await;
        })
    }))
    .await;
    let mut c = config(url);
    c.max_message_size = 64 * 1024;
    let mut session = WsSession::spawn(c);
    assert!(matches!(
        next(&mut session).await,
        SessionEvent::Welcome { .. }
    ));
    assert_eq!(
        event_id(&next(&mut session).await),
        Some("1".into()),
        "junk before it was skipped"
    );
    assert_eq!(
        next(&mut session).await,
        SessionEvent::Disconnected(Disconnect::MessageTooLarge)
    );
    assert!(
        matches!(next(&mut session).await, SessionEvent::Welcome { ref session_id, .. } if session_id == "s2")
    );
    session.stop().await;
}

#[tokio::test]
async fn no_welcome_in_time_is_a_lost_session() {
    let (url, _) = twitch(Arc::new(|socket, _, _| Box::pin(idle(socket)))).await;
    let mut c = config(url);
    c.welcome_timeout = Duration::from_millis(300);
    let mut session = WsSession::spawn(c);
    assert_eq!(
        next(&mut session).await,
        SessionEvent::Disconnected(Disconnect::NoWelcome)
    );
    session.stop().await;
}
