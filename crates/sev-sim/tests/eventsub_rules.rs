//! Every Helix EventSub rule of PLATFORM.md §2.1, each error status reproduced, driven by
//! sev's own Twitch client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sev_sim::SimConfig;
use sev_twitch::eventsub::Transport;
use sev_twitch::helix::{CreateSubscription, HelixError, SubscriptionFilter};

fn sub(kind: &str, version: &str, condition: Value, transport: Transport) -> CreateSubscription {
    CreateSubscription {
        kind: kind.into(),
        version: version.into(),
        condition,
        transport,
    }
}

fn webhook(callback: &str) -> Transport {
    Transport {
        method: "webhook".into(),
        callback: Some(callback.into()),
        secret: Some("s3cr3t-s3cr3t".into()),
        ..Transport::default()
    }
}

fn websocket(session: &str) -> Transport {
    Transport {
        method: "websocket".into(),
        session_id: Some(session.into()),
        ..Transport::default()
    }
}

/// A receiver that answers verification challenges and records every request.
async fn receiver(answer_challenges: bool) -> (String, Arc<Mutex<Vec<(HeaderMap, Value)>>>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let s = seen.clone();
    let router = Router::new().route(
        "/eventsub",
        post(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                s.lock().unwrap().push((headers.clone(), v.clone()));
                match v.get("challenge").and_then(Value::as_str) {
                    Some(c) if answer_challenges => {
                        ([("content-type", "text/plain")], c.to_owned()).into_response()
                    }
                    Some(_) => (axum::http::StatusCode::OK, "no").into_response(),
                    None => axum::http::StatusCode::NO_CONTENT.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/eventsub", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}
use axum::response::IntoResponse;

/// Opens an EventSub WebSocket to the simulator and returns it with its session id.
async fn session(
    sim: &common::TestSim,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
) {
    let (mut ws, _) = tokio_tungstenite::connect_async(sim.urls.eventsub_ws.as_str())
        .await
        .unwrap();
    let welcome = ws.next().await.unwrap().unwrap();
    let v: Value = serde_json::from_str(welcome.to_text().unwrap()).unwrap();
    assert_eq!(v["metadata"]["message_type"], "session_welcome");
    let id = v["payload"]["session"]["id"].as_str().unwrap().to_owned();
    (ws, id)
}

#[tokio::test]
async fn the_token_type_fixes_the_transport() {
    let sim = common::start(SimConfig::default()).await;
    let app = sim.app();
    let viewer = sim.user("viewer1", "").await;
    let (_ws, sid) = session(&sim).await;
    let (cb, _) = receiver(true).await;
    let on = |t| {
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "4242"}),
            t,
        )
    };
    assert!(
        matches!(
            sim.helix
                .create_subscription(&viewer, &on(webhook(&cb)))
                .await,
            Err(HelixError::Unauthorized(_))
        ),
        "webhook with a user token"
    );
    assert!(
        matches!(
            sim.helix
                .create_subscription(&app, &on(websocket(&sid)))
                .await,
            Err(HelixError::Unauthorized(_))
        ),
        "websocket with an app token"
    );
    assert!(
        sim.helix
            .create_subscription(&viewer, &on(websocket(&sid)))
            .await
            .is_ok()
    );
    assert!(
        sim.helix
            .create_subscription(&app, &on(webhook(&cb)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let sim = common::start(SimConfig::default()).await;
    let app = sim.app();
    let (cb, _) = receiver(true).await;
    let cases = [
        sub("stream.online", "1", json!({}), webhook(&cb)),
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "999999"}),
            webhook(&cb),
        ),
        sub(
            "stream.nope",
            "1",
            json!({"broadcaster_user_id": "4242"}),
            webhook(&cb),
        ),
        sub(
            "channel.update",
            "1",
            json!({"broadcaster_user_id": "4242"}),
            webhook(&cb),
        ),
        sub(
            "channel.raid",
            "1",
            json!({"from_broadcaster_user_id": "4242", "to_broadcaster_user_id": "4243"}),
            webhook(&cb),
        ),
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "4242"}),
            Transport {
                secret: Some("short".into()),
                ..webhook(&cb)
            },
        ),
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "4242"}),
            Transport {
                callback: None,
                ..webhook(&cb)
            },
        ),
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "4242"}),
            Transport {
                method: "conduit".into(),
                conduit_id: Some("nope".into()),
                ..Transport::default()
            },
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        assert!(
            matches!(
                sim.helix.create_subscription(&app, c).await,
                Err(HelixError::BadRequest(_))
            ),
            "case {i}"
        );
    }
    let viewer = sim.user("viewer1", "").await;
    let r = sim
        .helix
        .create_subscription(
            &viewer,
            &sub(
                "stream.online",
                "1",
                json!({"broadcaster_user_id": "4242"}),
                websocket("not-a-session"),
            ),
        )
        .await;
    assert!(
        matches!(r, Err(HelixError::BadRequest(_))),
        "an unknown session"
    );
    let r = sim
        .helix
        .list_subscriptions(&app, &SubscriptionFilter::None, None)
        .await;
    assert!(r.is_ok());
    let two_filters = sim.http.get(
        sim.base
            .join("/helix/eventsub/subscriptions?type=a&status=b")
            .unwrap(),
    );
    let token = sim.oauth.app_token().await.unwrap();
    use secrecy::ExposeSecret;
    let res = two_filters
        .bearer_auth(token.access_token.expose_secret())
        .header("Client-Id", &sim.config.client_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "at most one filter");
}

#[tokio::test]
async fn consent_types_need_the_right_grant() {
    let sim = common::start(SimConfig::default()).await;
    let app = sim.app();
    let (cb, _) = receiver(true).await;
    let polls = |b: &str| {
        sub(
            "channel.poll.begin",
            "1",
            json!({"broadcaster_user_id": b}),
            webhook(&cb),
        )
    };
    assert!(
        matches!(
            sim.helix.create_subscription(&app, &polls("4242")).await,
            Err(HelixError::Forbidden(_))
        ),
        "no grant yet"
    );
    sim.user_token("favstreamer", "channel:read:polls").await;
    assert!(
        sim.helix
            .create_subscription(&app, &polls("4242"))
            .await
            .is_ok(),
        "the broadcaster granted it"
    );

    // Follows: the broadcaster or one of its moderators.
    let follows = |m: &str| {
        sub(
            "channel.follow",
            "2",
            json!({"broadcaster_user_id": "4242", "moderator_user_id": m}),
            webhook(&cb),
        )
    };
    sim.user_token("viewer1", "moderator:read:followers").await;
    assert!(
        matches!(
            sim.helix.create_subscription(&app, &follows("1001")).await,
            Err(HelixError::Forbidden(_))
        ),
        "viewer1 is no moderator"
    );
    sim.user_token("moddy", "moderator:read:followers").await;
    assert!(
        sim.helix
            .create_subscription(&app, &follows("1006"))
            .await
            .is_ok(),
        "moddy moderates favstreamer"
    );

    // Chat over WebSocket: the reading user's own token with user:read:chat.
    let (_ws, sid) = session(&sim).await;
    let reader = sim.user("viewer2", "user:read:chat").await;
    let chat = |u: &str| {
        sub(
            "channel.chat.notification",
            "1",
            json!({"broadcaster_user_id": "4242", "user_id": u}),
            websocket(&sid),
        )
    };
    assert!(
        matches!(
            sim.helix.create_subscription(&reader, &chat("1001")).await,
            Err(HelixError::Forbidden(_))
        ),
        "someone else's reading"
    );
    let created = sim
        .helix
        .create_subscription(&reader, &chat("1002"))
        .await
        .unwrap();
    assert_eq!(
        (created.data[0].status.as_str(), created.data[0].cost),
        ("enabled", 0)
    );
    let no_scope = sim.user("viewer3", "").await;
    let (_ws3, sid3) = session(&sim).await;
    let r = sim
        .helix
        .create_subscription(
            &no_scope,
            &sub(
                "channel.chat.message",
                "1",
                json!({"broadcaster_user_id": "4242", "user_id": "1003"}),
                websocket(&sid3),
            ),
        )
        .await;
    assert!(
        matches!(r, Err(HelixError::Forbidden(_))),
        "user:read:chat is required"
    );
}

#[tokio::test]
async fn duplicates_conflict_and_at_most_three_share_a_condition() {
    let sim = common::start(SimConfig::default()).await;
    let app = sim.app();
    let mut callbacks = Vec::new();
    for _ in 0..4 {
        callbacks.push(receiver(true).await.0);
    }
    let on = |cb: &str| {
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "4243"}),
            webhook(cb),
        )
    };
    sim.helix
        .create_subscription(&app, &on(&callbacks[0]))
        .await
        .unwrap();
    assert!(matches!(
        sim.helix
            .create_subscription(&app, &on(&callbacks[0]))
            .await,
        Err(HelixError::Conflict(_))
    ));
    sim.helix
        .create_subscription(&app, &on(&callbacks[1]))
        .await
        .unwrap();
    sim.helix
        .create_subscription(&app, &on(&callbacks[2]))
        .await
        .unwrap();
    assert!(
        matches!(
            sim.helix
                .create_subscription(&app, &on(&callbacks[3]))
                .await,
            Err(HelixError::TooManyRequests { .. })
        ),
        "a fourth is too many"
    );
}

#[tokio::test]
async fn costs_count_against_max_total_cost() {
    let sim = common::start(SimConfig {
        max_total_cost: 2,
        ..SimConfig::default()
    })
    .await;
    let app = sim.app();
    let (cb, _) = receiver(true).await;
    let on = |b: &str| {
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": b}),
            webhook(&cb),
        )
    };
    let first = sim
        .helix
        .create_subscription(&app, &on("4243"))
        .await
        .unwrap();
    assert_eq!(
        (first.data[0].cost, first.total_cost, first.max_total_cost),
        (1, 1, 2)
    );
    sim.helix
        .create_subscription(&app, &on("4244"))
        .await
        .unwrap();
    assert!(
        matches!(
            sim.helix.create_subscription(&app, &on("4245")).await,
            Err(HelixError::TooManyRequests { .. })
        ),
        "over budget"
    );
    // A broadcaster who authorised the app costs nothing.
    sim.user_token("retrorick", "").await;
    let free = sim
        .helix
        .create_subscription(&app, &on("4245"))
        .await
        .unwrap();
    assert_eq!(free.data[0].cost, 0);
}

#[tokio::test]
async fn websocket_limits_three_connections_and_cost_ten_per_user() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "").await;
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(session(&sim).await);
    }
    let online = |b: &str, sid: &str| {
        sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": b}),
            websocket(sid),
        )
    };
    for (ws, b) in sockets.iter().take(3).zip(["4242", "4243", "4244"]) {
        sim.helix
            .create_subscription(&viewer, &online(b, &ws.1))
            .await
            .unwrap();
    }
    let fourth = sim
        .helix
        .create_subscription(&viewer, &online("4245", &sockets[3].1))
        .await;
    assert!(
        matches!(fourth, Err(HelixError::TooManyRequests { .. })),
        "a fourth connection: {fourth:?}"
    );
    // Cost 10 per user: 7 more cost-1 subscriptions fit on the first socket, the 11th does not.
    let ids = ["4245", "4246", "4247", "4248", "4249"];
    for b in ids {
        sim.helix
            .create_subscription(&viewer, &online(b, &sockets[0].1))
            .await
            .unwrap();
    }
    for b in ["4242", "4243"] {
        sim.helix
            .create_subscription(
                &viewer,
                &sub(
                    "stream.offline",
                    "1",
                    json!({"broadcaster_user_id": b}),
                    websocket(&sockets[0].1),
                ),
            )
            .await
            .unwrap();
    }
    let eleventh = sim
        .helix
        .create_subscription(
            &viewer,
            &sub(
                "stream.offline",
                "1",
                json!({"broadcaster_user_id": "4244"}),
                websocket(&sockets[0].1),
            ),
        )
        .await;
    assert!(
        matches!(eleventh, Err(HelixError::TooManyRequests { .. })),
        "cost 10 reached: {eleventh:?}"
    );
    let listed = sim
        .helix
        .list_all_subscriptions(&viewer, &SubscriptionFilter::None)
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        10,
        "a user sees their own WebSocket subscriptions"
    );
}

#[tokio::test]
async fn webhook_status_goes_from_pending_to_enabled_or_failed() {
    let sim = common::start(SimConfig::default()).await;
    let app = sim.app();
    let (good, seen) = receiver(true).await;
    let (bad, _) = receiver(false).await;
    let ok = sim
        .helix
        .create_subscription(
            &app,
            &sub(
                "stream.online",
                "1",
                json!({"broadcaster_user_id": "4242"}),
                webhook(&good),
            ),
        )
        .await
        .unwrap();
    assert_eq!(ok.data[0].status, "webhook_callback_verification_pending");
    assert!(
        ok.data[0].transport.secret.is_none(),
        "the secret is never echoed"
    );
    let failed = sim
        .helix
        .create_subscription(
            &app,
            &sub(
                "stream.offline",
                "1",
                json!({"broadcaster_user_id": "4242"}),
                webhook(&bad),
            ),
        )
        .await
        .unwrap();
    let status = |id: String| {
        let sim = &sim;
        let app = &app;
        async move {
            sim.helix
                .list_subscriptions(app, &SubscriptionFilter::SubscriptionId(id), None)
                .await
                .unwrap()
                .data[0]
                .status
                .clone()
        }
    };
    common::eventually("verification", || async {
        status(ok.data[0].id.clone()).await == "enabled"
    })
    .await;
    common::eventually("failed verification", || async {
        status(failed.data[0].id.clone()).await == "webhook_callback_verification_failed"
    })
    .await;
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        headers["twitch-eventsub-message-type"],
        "webhook_callback_verification"
    );
    assert!(body["challenge"].is_string());
}

#[tokio::test]
async fn delete_list_filters_and_pagination() {
    let sim = common::start(SimConfig {
        subscriptions_page_size: 2,
        ..SimConfig::default()
    })
    .await;
    let app = sim.app();
    let (cb, _) = receiver(true).await;
    let mut ids = Vec::new();
    for b in ["4242", "4243", "4244"] {
        ids.push(
            sim.helix
                .create_subscription(
                    &app,
                    &sub(
                        "stream.online",
                        "1",
                        json!({"broadcaster_user_id": b}),
                        webhook(&cb),
                    ),
                )
                .await
                .unwrap()
                .data[0]
                .id
                .clone(),
        );
    }
    sim.helix
        .create_subscription(
            &app,
            &sub(
                "stream.offline",
                "1",
                json!({"broadcaster_user_id": "4242"}),
                webhook(&cb),
            ),
        )
        .await
        .unwrap();
    let page = sim
        .helix
        .list_subscriptions(&app, &SubscriptionFilter::None, None)
        .await
        .unwrap();
    assert_eq!((page.data.len(), page.total), (2, 4));
    assert!(page.cursor().is_some());
    assert_eq!(
        sim.helix
            .list_all_subscriptions(&app, &SubscriptionFilter::None)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        sim.helix
            .list_all_subscriptions(&app, &SubscriptionFilter::Type("stream.offline".into()))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sim.helix
            .list_all_subscriptions(&app, &SubscriptionFilter::UserId("4243".into()))
            .await
            .unwrap()
            .len(),
        1
    );
    sim.helix.delete_subscription(&app, &ids[0]).await.unwrap();
    assert!(matches!(
        sim.helix.delete_subscription(&app, &ids[0]).await,
        Err(HelixError::NotFound(_))
    ));
    assert_eq!(
        sim.helix
            .list_all_subscriptions(&app, &SubscriptionFilter::None)
            .await
            .unwrap()
            .len(),
        3
    );
}
