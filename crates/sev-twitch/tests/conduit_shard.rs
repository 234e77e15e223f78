//! A conduit shard against a scripted Twitch: the conduit is found or created, each new
//! WebSocket session is attached to the shard, and a lost socket is re-attached.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use secrecy::SecretString;
use serde_json::{Value, json};
use sev_twitch::TwitchUrls;
use sev_twitch::conduit::{Shard, ShardEvent, ensure_conduit};
use sev_twitch::helix::{HelixClient, HelixConfig};
use sev_twitch::oauth::{AppTokenSource, Credentials, OAuthClient};
use sev_twitch::ws::{CloseReason, Disconnect, WsConfig};

#[derive(Clone, Default)]
struct Twitch {
    conduits: Arc<Mutex<Vec<Value>>>,
    attached: Arc<Mutex<Vec<(String, String)>>>,
    sockets: Arc<AtomicUsize>,
}

async fn ws(State(t): State<Twitch>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    let n = t.sockets.fetch_add(1, Ordering::SeqCst) + 1;
    upgrade.on_upgrade(move |mut socket| async move {
        let welcome = json!({"metadata": {"message_id": format!("w{n}"), "message_type": "session_welcome", "message_timestamp": "2026-01-02T18:00:00Z"},
            "payload": {"session": {"id": format!("session-{n}"), "status": "connected", "keepalive_timeout_seconds": 10, "reconnect_url": null, "connected_at": "2026-01-02T18:00:00Z"}}});
        socket.send(Message::Text(welcome.to_string().into())).await.unwrap();
        if n == 1 {
            // Wait for the attach, then drop the socket as a network failure would.
            while t.attached.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
            socket.send(Message::Close(Some(CloseFrame { code: 4006, reason: "network error".into() }))).await.unwrap();
        }
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

async fn conduits(
    State(t): State<Twitch>,
    method: axum::http::Method,
    body: Option<axum::Json<Value>>,
) -> impl IntoResponse {
    let mut conduits = t.conduits.lock().unwrap();
    match method.as_str() {
        "GET" => axum::Json(json!({"data": *conduits})),
        "POST" => {
            let c = json!({"id": "conduit-1", "shard_count": body.unwrap().0["shard_count"]});
            conduits.push(c.clone());
            axum::Json(json!({"data": [c]}))
        }
        _ => {
            let b = body.unwrap().0;
            let c = json!({"id": b["id"], "shard_count": b["shard_count"]});
            conduits[0] = c.clone();
            axum::Json(json!({"data": [c]}))
        }
    }
}

async fn shards(State(t): State<Twitch>, axum::Json(body): axum::Json<Value>) -> impl IntoResponse {
    assert_eq!(body["conduit_id"], "conduit-1");
    let shard = &body["shards"][0];
    t.attached.lock().unwrap().push((
        shard["id"].as_str().unwrap().to_owned(),
        shard["transport"]["session_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ));
    (
        axum::http::StatusCode::ACCEPTED,
        axum::Json(
            json!({"data": [{"id": shard["id"], "status": "enabled", "transport": shard["transport"]}], "errors": []}),
        ),
    )
}

async fn next(s: &mut Shard) -> ShardEvent {
    tokio::time::timeout(Duration::from_secs(10), s.next_event())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn shards_attach_each_new_session_and_reattach_after_a_loss() {
    let twitch = Twitch::default();
    let router = Router::new()
        .route("/ws", get(ws))
        .route(
            "/helix/eventsub/conduits",
            get(conduits).post(conduits).patch(conduits),
        )
        .route(
            "/helix/eventsub/conduits/shards",
            axum::routing::patch(shards),
        )
        .route(
            "/oauth2/token",
            axum::routing::post(|| async {
                axum::Json(
                    json!({"access_token": "app", "expires_in": 5_000_000, "token_type": "bearer"}),
                )
            }),
        )
        .with_state(twitch.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let urls = TwitchUrls::simulator(&base).unwrap();
    let http = sev_twitch::http_client().unwrap();
    let oauth = OAuthClient::new(
        http.clone(),
        urls.clone(),
        Credentials {
            client_id: "cid".into(),
            client_secret: SecretString::from("s".to_owned()),
        },
    );
    let app: Arc<dyn sev_twitch::oauth::TokenSource> = Arc::new(AppTokenSource::new(oauth));
    let helix = Arc::new(HelixClient::new(
        http,
        urls.clone(),
        "cid",
        HelixConfig::default(),
    ));

    let conduit = ensure_conduit(&helix, app.as_ref(), 1).await.unwrap();
    assert_eq!(
        (conduit.id.as_str(), conduit.shard_count),
        ("conduit-1", 1),
        "created when missing"
    );
    let again = ensure_conduit(&helix, app.as_ref(), 1).await.unwrap();
    assert_eq!(again, conduit, "reused when present");
    let grown = ensure_conduit(&helix, app.as_ref(), 4).await.unwrap();
    assert_eq!(grown.shard_count, 4, "grown when too small");

    let mut ws = WsConfig::new(urls.eventsub_ws.clone());
    ws.backoff = Duration::from_millis(10);
    let mut shard = Shard::spawn(
        helix.clone(),
        app.clone(),
        conduit.id.clone(),
        "0".into(),
        ws,
    );
    assert_eq!(
        next(&mut shard).await,
        ShardEvent::Attached {
            session_id: "session-1".into()
        }
    );
    assert_eq!(
        next(&mut shard).await,
        ShardEvent::Lost(Disconnect::Closed(CloseReason::NetworkError))
    );
    assert_eq!(
        next(&mut shard).await,
        ShardEvent::Attached {
            session_id: "session-2".into()
        }
    );
    assert_eq!(
        *twitch.attached.lock().unwrap(),
        [
            ("0".to_owned(), "session-1".to_owned()),
            ("0".to_owned(), "session-2".to_owned())
        ]
    );
    shard.stop().await;
}
