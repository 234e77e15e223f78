//! EventSub delivery: the WebSocket rules (welcome, 4003, 4001, keepalive, reconnect
//! hand-off, close codes), webhook retries and revocation, conduits delivering each event to
//! exactly one shard, and injected delivery faults.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sev_sim::SimConfig;
use sev_twitch::eventsub::{Event, Transport};
use sev_twitch::helix::{CreateSubscription, SubscriptionFilter};
use sev_twitch::ws::{CloseReason, Disconnect, SessionEvent, WsConfig, WsSession};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(sim: &common::TestSim, query: &str) -> (Socket, Value) {
    let url = format!("{}{query}", sim.urls.eventsub_ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), ws.next())
        .await
        .expect("welcome at once")
        .unwrap()
        .unwrap();
    (ws, serde_json::from_str(first.to_text().unwrap()).unwrap())
}

async fn next_frame(ws: &mut Socket) -> Message {
    tokio::time::timeout(Duration::from_secs(15), ws.next())
        .await
        .expect("a frame")
        .unwrap()
        .unwrap()
}

fn close_code(m: &Message) -> Option<u16> {
    match m {
        Message::Close(Some(f)) => Some(f.code.into()),
        _ => None,
    }
}

#[tokio::test]
async fn welcome_at_once_then_4003_about_10_s_later_without_a_subscription() {
    let sim = common::start(SimConfig::default()).await;
    let started = Instant::now();
    let (mut ws, welcome) = connect(&sim, "").await;
    assert_eq!(welcome["metadata"]["message_type"], "session_welcome");
    assert_eq!(welcome["payload"]["session"]["status"], "connected");
    assert_eq!(
        welcome["payload"]["session"]["keepalive_timeout_seconds"],
        10
    );
    let mut frame = next_frame(&mut ws).await;
    while frame.is_text() {
        frame = next_frame(&mut ws).await; // a keepalive may come first
    }
    assert_eq!(close_code(&frame), Some(4003));
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(9_500) && after <= Duration::from_millis(11_500),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn keepalive_timeouts_are_clamped_and_inbound_traffic_is_4001() {
    let sim = common::start(SimConfig::default()).await;
    let (_ws, w) = connect(&sim, "?keepalive_timeout_seconds=3").await;
    assert_eq!(w["payload"]["session"]["keepalive_timeout_seconds"], 10);
    let (_ws, w) = connect(&sim, "?keepalive_timeout_seconds=9999").await;
    assert_eq!(w["payload"]["session"]["keepalive_timeout_seconds"], 600);
    let (mut ws, _) = connect(&sim, "").await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(close_code(&next_frame(&mut ws).await), Some(4001));
}

/// Runs sev's own session client against the simulator, subscribing on every welcome.
async fn subscribed_session(
    sim: &common::TestSim,
    viewer: &sev_twitch::oauth::UserTokenSource,
    broadcaster: &str,
) -> WsSession {
    let mut cfg = WsConfig::new(sim.urls.eventsub_ws.clone());
    cfg.backoff = Duration::from_millis(10);
    let mut session = WsSession::spawn(cfg);
    match session.next_event().await.unwrap() {
        SessionEvent::Welcome { session_id, .. } => {
            let t = Transport {
                method: "websocket".into(),
                session_id: Some(session_id),
                ..Transport::default()
            };
            let req = CreateSubscription {
                kind: "stream.online".into(),
                version: "1".into(),
                condition: json!({"broadcaster_user_id": broadcaster}),
                transport: t,
            };
            sim.helix.create_subscription(viewer, &req).await.unwrap();
        }
        other => panic!("{other:?}"),
    }
    session
}

fn online_id(e: &SessionEvent) -> String {
    match e {
        SessionEvent::Notification { notification, .. } => match &notification.event {
            Event::StreamOnline(s) => s.id.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("expected a notification, got {other:?}"),
    }
}

async fn next(session: &mut WsSession) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(10), session.next_event())
        .await
        .expect("an event")
        .unwrap()
}

fn trigger(sim: &common::TestSim, broadcaster: &str) -> String {
    let t: sev_sim::Trigger =
        serde_json::from_value(json!({"type": "stream.online", "broadcaster": broadcaster}))
            .unwrap();
    let (event, _) = sim.handle.trigger(&t).unwrap();
    event["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn notifications_reach_only_subscribers_of_that_condition() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "").await;
    let mut session = subscribed_session(&sim, &viewer, "4242").await;
    trigger(&sim, "speedrunsam");
    let id = trigger(&sim, "favstreamer");
    assert_eq!(
        online_id(&next(&mut session).await),
        id,
        "speedrunsam's event went nowhere"
    );
    session.stop().await;
}

#[tokio::test]
async fn the_reconnect_hand_off_carries_subscriptions_and_loses_nothing() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "").await;
    let mut session = subscribed_session(&sim, &viewer, "4242").await;
    let before = trigger(&sim, "favstreamer");
    assert_eq!(online_id(&next(&mut session).await), before);
    let sessions = sim.get("/_sim/sessions").await;
    let sid = sessions["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["connected"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.control(&format!("/_sim/sessions/{sid}/reconnect"), json!({}))
        .await;
    assert_eq!(
        next(&mut session).await,
        SessionEvent::Reconnected {
            session_id: sid.clone()
        }
    );
    let after = trigger(&sim, "favstreamer");
    assert_eq!(
        online_id(&next(&mut session).await),
        after,
        "the subscription moved with the session"
    );
    let subs = sim
        .helix
        .list_all_subscriptions(&viewer, &SubscriptionFilter::None)
        .await
        .unwrap();
    assert_eq!(subs[0].status, "enabled");
    session.stop().await;
}

#[tokio::test]
async fn a_close_code_on_request_disables_the_sessions_subscriptions() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "").await;
    let mut session = subscribed_session(&sim, &viewer, "4242").await;
    let sessions = sim.get("/_sim/sessions").await;
    let sid = sessions["data"][0]["id"].as_str().unwrap().to_owned();
    sim.control(
        &format!("/_sim/sessions/{sid}/close"),
        json!({"code": 4005}),
    )
    .await;
    assert_eq!(
        next(&mut session).await,
        SessionEvent::Disconnected(Disconnect::Closed(CloseReason::NetworkTimeout))
    );
    let subs = sim
        .helix
        .list_all_subscriptions(&viewer, &SubscriptionFilter::None)
        .await
        .unwrap();
    assert_eq!(subs[0].status, "websocket_network_timeout");
    assert!(subs[0].transport.disconnected_at.is_some());
    session.stop().await;
}

#[tokio::test]
async fn delivery_faults_duplicate_drop_and_reorder() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "").await;
    let (mut ws, welcome) = connect(&sim, "").await;
    let sid = welcome["payload"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Transport {
        method: "websocket".into(),
        session_id: Some(sid),
        ..Transport::default()
    };
    sim.helix
        .create_subscription(
            &viewer,
            &CreateSubscription {
                kind: "stream.online".into(),
                version: "1".into(),
                condition: json!({"broadcaster_user_id": "4242"}),
                transport: t,
            },
        )
        .await
        .unwrap();
    let mut recv = async || loop {
        let f = next_frame(&mut ws).await;
        let v: Value = serde_json::from_str(f.to_text().unwrap()).unwrap();
        if v["metadata"]["message_type"] == "notification" {
            return (
                v["metadata"]["message_id"].as_str().unwrap().to_owned(),
                v["payload"]["event"]["id"].as_str().unwrap().to_owned(),
            );
        }
    };
    sim.control("/_sim/faults/delivery", json!({"duplicate": 1}))
        .await;
    let a = trigger(&sim, "favstreamer");
    let (m1, e1) = recv().await;
    let (m2, e2) = recv().await;
    assert_eq!(
        (m1.as_str(), e1.as_str()),
        (m2.as_str(), a.as_str()),
        "the same message twice"
    );
    assert_eq!(e2, a);
    sim.control("/_sim/faults/delivery", json!({"drop": 1}))
        .await;
    trigger(&sim, "favstreamer");
    let c = trigger(&sim, "favstreamer");
    assert_eq!(recv().await.1, c, "the dropped one never came");
    sim.control("/_sim/faults/delivery", json!({"reorder": 1}))
        .await;
    let d = trigger(&sim, "favstreamer");
    let e = trigger(&sim, "favstreamer");
    assert_eq!((recv().await.1, recv().await.1), (e, d), "swapped");
}

/// A webhook receiver that answers challenges and fails (500) or accepts notifications.
async fn receiver(fail: bool) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let s = seen.clone();
    let router = Router::new().route(
        "/eventsub",
        post(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                if let Some(c) = v.get("challenge").and_then(Value::as_str) {
                    return c.to_owned().into_response();
                }
                s.lock().unwrap().push((headers, body));
                if fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    axum::http::StatusCode::NO_CONTENT.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/eventsub", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

async fn webhook_sub(sim: &common::TestSim, callback: &str, broadcaster: &str) -> String {
    let app = sim.app();
    let t = Transport {
        method: "webhook".into(),
        callback: Some(callback.into()),
        secret: Some("webhook-secret-1".into()),
        ..Transport::default()
    };
    let created = sim
        .helix
        .create_subscription(
            &app,
            &CreateSubscription {
                kind: "stream.online".into(),
                version: "1".into(),
                condition: json!({"broadcaster_user_id": broadcaster}),
                transport: t,
            },
        )
        .await
        .unwrap();
    let id = created.data[0].id.clone();
    common::eventually("verification", || {
        let app = &app;
        let id = id.clone();
        async move {
            sim.helix
                .list_subscriptions(app, &SubscriptionFilter::SubscriptionId(id), None)
                .await
                .unwrap()
                .data[0]
                .status
                == "enabled"
        }
    })
    .await;
    id
}

#[tokio::test]
async fn signed_webhook_notifications_verify() {
    let sim = common::start(SimConfig::default()).await;
    let (cb, seen) = receiver(false).await;
    webhook_sub(&sim, &cb, "4242").await;
    let id = trigger(&sim, "favstreamer");
    common::eventually("a notification", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    let (headers, body) = seen.lock().unwrap()[0].clone();
    let v = sev_twitch::webhook::verify(b"webhook-secret-1", &headers, &body, chrono::Utc::now())
        .unwrap();
    assert_eq!(
        v.message_type,
        sev_twitch::webhook::MessageType::Notification
    );
    let n = sev_twitch::eventsub::Notification::from_json(&body).unwrap();
    assert!(matches!(n.event, Event::StreamOnline(ref s) if s.id == id));
    assert!(n.subscription.transport.secret.is_none());
}

#[tokio::test]
async fn failed_webhooks_are_retried_with_the_same_id_then_revoked() {
    let sim = common::start(SimConfig {
        webhook_retry_delay: Duration::from_millis(5),
        ..SimConfig::default()
    })
    .await;
    let (cb, seen) = receiver(true).await;
    let sub_id = webhook_sub(&sim, &cb, "4242").await;
    for _ in 0..3 {
        trigger(&sim, "favstreamer");
    }
    common::eventually("a revocation", || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(h, _)| h["twitch-eventsub-message-type"] == "revocation")
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    let notifications: Vec<&HeaderMap> = seen
        .iter()
        .map(|(h, _)| h)
        .filter(|h| h["twitch-eventsub-message-type"] == "notification")
        .collect();
    assert_eq!(notifications.len(), 9, "3 messages × 3 attempts");
    for attempt in notifications.chunks(3) {
        let ids: Vec<&str> = attempt
            .iter()
            .map(|h| h["twitch-eventsub-message-id"].to_str().unwrap())
            .collect();
        assert!(
            ids.iter().all(|i| *i == ids[0]),
            "retries keep the message id"
        );
        let retries: Vec<&str> = attempt
            .iter()
            .map(|h| h["twitch-eventsub-message-retry"].to_str().unwrap())
            .collect();
        assert_eq!(retries, ["0", "1", "2"]);
    }
    let (_, body) = seen
        .iter()
        .find(|(h, _)| h["twitch-eventsub-message-type"] == "revocation")
        .unwrap();
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        v["subscription"]["status"],
        "notification_failures_exceeded"
    );
    assert_eq!(v["subscription"]["id"], sub_id.as_str());
}

#[tokio::test]
async fn a_conduit_delivers_each_event_to_exactly_one_enabled_shard() {
    let sim = common::start(SimConfig::default()).await;
    let app = sim.app();
    let conduit = sim.helix.create_conduit(&app, 2).await.unwrap();
    let (mut a, wa) = connect(&sim, "").await;
    let (mut b, wb) = connect(&sim, "").await;
    let shard = |sid: &Value| Transport {
        method: "websocket".into(),
        session_id: sid.as_str().map(str::to_owned),
        ..Transport::default()
    };
    let attached = sim
        .helix
        .update_shards(
            &app,
            &conduit.id,
            &[
                ("0".into(), shard(&wa["payload"]["session"]["id"])),
                ("1".into(), shard(&wb["payload"]["session"]["id"])),
            ],
        )
        .await
        .unwrap();
    assert!(attached.errors.is_empty() && attached.data.len() == 2);
    let bad = sim
        .helix
        .update_shards(
            &app,
            &conduit.id,
            &[
                ("7".into(), shard(&wa["payload"]["session"]["id"])),
                ("1".into(), shard(&json!("nope"))),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        bad.errors.len(),
        2,
        "out of range and not connected: {bad:?}"
    );
    let t = Transport {
        method: "conduit".into(),
        conduit_id: Some(conduit.id.clone()),
        ..Transport::default()
    };
    sim.helix
        .create_subscription(
            &app,
            &CreateSubscription {
                kind: "stream.online".into(),
                version: "1".into(),
                condition: json!({"broadcaster_user_id": "4242"}),
                transport: t,
            },
        )
        .await
        .unwrap();

    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.push(trigger(&sim, "favstreamer"));
    }
    let collect = async |ws: &mut Socket, n: usize| {
        let mut got = Vec::new();
        while got.len() < n {
            let v: Value = serde_json::from_str(next_frame(ws).await.to_text().unwrap()).unwrap();
            if v["metadata"]["message_type"] == "notification" {
                got.push(v["payload"]["event"]["id"].as_str().unwrap().to_owned());
            }
        }
        got
    };
    let mut got = collect(&mut a, 5).await;
    got.extend(collect(&mut b, 5).await);
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "ten events, each to one shard, none twice");

    // Shard 1's socket goes away: everything goes to shard 0.
    drop(b);
    common::eventually("shard 1 disabled", || async {
        let shards = sim.helix.get_shards(&app, &conduit.id, None).await.unwrap();
        shards
            .data
            .iter()
            .any(|s| s.id == "1" && s.status != "enabled")
    })
    .await;
    let mut more = Vec::new();
    for _ in 0..3 {
        more.push(trigger(&sim, "favstreamer"));
    }
    assert_eq!(collect(&mut a, 3).await, more);
}

#[tokio::test]
async fn an_old_socket_kept_open_after_a_reconnect_gets_4004() {
    let sim = common::start(SimConfig {
        reconnect_grace: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let viewer = sim.user("viewer1", "").await;
    let (mut old, welcome) = connect(&sim, "").await;
    let sid = welcome["payload"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Transport {
        method: "websocket".into(),
        session_id: Some(sid.clone()),
        ..Transport::default()
    };
    sim.helix
        .create_subscription(
            &viewer,
            &CreateSubscription {
                kind: "stream.online".into(),
                version: "1".into(),
                condition: json!({"broadcaster_user_id": "4242"}),
                transport: t,
            },
        )
        .await
        .unwrap();
    let answer = sim
        .control(&format!("/_sim/sessions/{sid}/reconnect"), json!({}))
        .await;
    let url = answer["reconnect_url"].as_str().unwrap().to_owned();
    let v: Value = serde_json::from_str(next_frame(&mut old).await.to_text().unwrap()).unwrap();
    assert_eq!(
        (
            v["metadata"]["message_type"].as_str(),
            v["payload"]["session"]["reconnect_url"].as_str()
        ),
        (Some("session_reconnect"), Some(url.as_str()))
    );
    let (mut new, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let w: Value = serde_json::from_str(next_frame(&mut new).await.to_text().unwrap()).unwrap();
    assert_eq!(
        w["payload"]["session"]["id"].as_str(),
        Some(sid.as_str()),
        "the same session"
    );
    assert_eq!(
        close_code(&next_frame(&mut old).await),
        Some(4004),
        "the old socket was never closed by the client"
    );
    let id = trigger(&sim, "favstreamer");
    let n: Value = serde_json::from_str(next_frame(&mut new).await.to_text().unwrap()).unwrap();
    assert_eq!(
        n["payload"]["event"]["id"].as_str(),
        Some(id.as_str()),
        "events flow on the new socket"
    );
    let bogus =
        tokio_tungstenite::connect_async(format!("{}?reconnect_id=nope", sim.urls.eventsub_ws))
            .await
            .unwrap()
            .0
            .next()
            .await
            .unwrap()
            .unwrap();
    assert_eq!(close_code(&bogus), Some(4007), "an invalid reconnect URL");
}

#[tokio::test]
async fn a_revocation_reaches_the_websocket_and_stopped_keepalives_are_noticed() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "").await;
    let mut session = subscribed_session(&sim, &viewer, "4242").await;
    let subs = sim.get("/_sim/subscriptions").await;
    let id = subs["data"][0]["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.control(
        &format!("/_sim/subscriptions/{id}/revoke"),
        json!({"status": "authorization_revoked"}),
    )
    .await;
    match next(&mut session).await {
        SessionEvent::Revocation(s) => assert_eq!(
            (s.id.as_str(), s.status.as_str()),
            (id.as_str(), "authorization_revoked")
        ),
        other => panic!("{other:?}"),
    }
    let sessions = sim.get("/_sim/sessions").await;
    let sid = sessions["data"][0]["id"].as_str().unwrap().to_owned();
    sim.control(
        &format!("/_sim/sessions/{sid}/keepalive"),
        json!({"enabled": false}),
    )
    .await;
    let lost = tokio::time::timeout(Duration::from_secs(15), session.next_event())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        lost,
        SessionEvent::Disconnected(Disconnect::KeepaliveTimeout),
        "silence past the keepalive window is a lost session"
    );
    session.stop().await;
}
