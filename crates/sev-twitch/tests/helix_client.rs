//! The Twitch client against scripted servers: rate limits, token renewal, retries, typed
//! errors, and the OAuth calls.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sev_twitch::TwitchUrls;
use sev_twitch::helix::{CreateSubscription, HelixClient, HelixConfig, HelixError};
use sev_twitch::oauth::{
    AppTokenSource, Credentials, OAuthClient, OAuthError, UserToken, UserTokenSource,
};

async fn serve(router: Router) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url::Url::parse(&format!("http://{addr}")).unwrap()
}

fn clients(base: &url::Url) -> (OAuthClient, HelixClient) {
    let urls = TwitchUrls::simulator(base).unwrap();
    let http = sev_twitch::http_client().unwrap();
    let creds = Credentials {
        client_id: "cid".into(),
        client_secret: SecretString::from("csecret".to_owned()),
    };
    let config = HelixConfig {
        backoff: std::time::Duration::from_millis(10),
        ..HelixConfig::default()
    };
    (
        OAuthClient::new(http.clone(), urls.clone(), creds),
        HelixClient::new(http, urls, "cid", config),
    )
}

fn user_token(access: &str) -> UserToken {
    UserToken {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: SecretString::from("refresh-1".to_owned()),
        expires_at: Utc::now() + chrono::Duration::hours(4),
        scopes: vec!["user:read:chat".into()],
    }
}

fn users_body() -> serde_json::Value {
    json!({ "data": [{ "id": "4242", "login": "favstreamer", "display_name": "FavStreamer", "type": "", "broadcaster_type": "partner", "description": "", "profile_image_url": "", "offline_image_url": "", "created_at": "2020-01-01T00:00:00Z" }] })
}

fn bearer(h: &HeaderMap) -> String {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_owned()
}

#[tokio::test]
async fn a_429_with_ratelimit_reset_is_waited_out_and_the_call_succeeds() {
    let hits: Arc<Mutex<Vec<chrono::DateTime<Utc>>>> = Arc::default();
    let reset_at = Arc::new(Mutex::new(None));
    let router = Router::new().route(
        "/helix/users",
        get({
            let (hits, reset_at) = (hits.clone(), reset_at.clone());
            move || async move {
                let n = {
                    let mut h = hits.lock().unwrap();
                    h.push(Utc::now());
                    h.len()
                };
                if n == 1 {
                    let reset = Utc::now().timestamp() + 1;
                    *reset_at.lock().unwrap() = Some(reset);
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [
                            ("Ratelimit-Limit", "800".to_owned()),
                            ("Ratelimit-Remaining", "0".to_owned()),
                            ("Ratelimit-Reset", reset.to_string()),
                        ],
                        axum::Json(
                            json!({"error": "Too Many Requests", "status": 429, "message": ""}),
                        ),
                    )
                        .into_response();
                }
                ([("Ratelimit-Remaining", "799")], axum::Json(users_body())).into_response()
            }
        }),
    );
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let tokens = UserTokenSource::new(oauth, user_token("good"), None);
    let users = helix
        .get_users(&tokens, &[], &["favstreamer"])
        .await
        .unwrap();
    assert_eq!(users[0].id, "4242");
    let hits = hits.lock().unwrap();
    assert_eq!(hits.len(), 2, "one refused call, one retry");
    let reset = reset_at.lock().unwrap().unwrap();
    assert!(
        hits[1].timestamp() >= reset,
        "the retry came after the reset ({} < {reset})",
        hits[1]
    );
}

#[tokio::test]
async fn a_401_leads_to_one_refresh_and_one_retry() {
    let helix_hits = Arc::new(AtomicUsize::new(0));
    let refreshes = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/helix/users", get({
            let hits = helix_hits.clone();
            move |h: HeaderMap| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                if bearer(&h) == "fresh" { axum::Json(users_body()).into_response() } else {
                    (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"}))).into_response()
                }
            }
        }))
        .route("/oauth2/token", post({
            let refreshes = refreshes.clone();
            move |Form(f): Form<std::collections::HashMap<String, String>>| async move {
                assert_eq!(f.get("grant_type").map(String::as_str), Some("refresh_token"));
                assert_eq!(f.get("refresh_token").map(String::as_str), Some("refresh-1"));
                assert_eq!(f.get("client_secret").map(String::as_str), Some("csecret"));
                refreshes.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"access_token": "fresh", "refresh_token": "refresh-2", "expires_in": 14124, "scope": ["user:read:chat"], "token_type": "bearer"}))
            }
        }));
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let stored: Arc<Mutex<Option<String>>> = Arc::default();
    let on_refresh = {
        let stored = stored.clone();
        Arc::new(move |t: &UserToken| {
            *stored.lock().unwrap() = Some(t.refresh_token.expose_secret().to_owned());
        })
    };
    let tokens = UserTokenSource::new(oauth, user_token("stale"), Some(on_refresh));
    let users = helix.get_users(&tokens, &["4242"], &[]).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(helix_hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        stored.lock().unwrap().as_deref(),
        Some("refresh-2"),
        "the rotated refresh token is handed over for storage"
    );
}

#[tokio::test]
async fn a_second_401_is_an_error_not_a_loop() {
    let helix_hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/helix/users", get({
            let hits = helix_hits.clone();
            move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"})))
            }
        }))
        .route("/oauth2/token", post(|| async { axum::Json(json!({"access_token": "fresh", "refresh_token": "r2", "expires_in": 100000, "token_type": "bearer"})) }));
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let tokens = UserTokenSource::new(oauth, user_token("stale"), None);
    let err = helix.get_users(&tokens, &["1"], &[]).await.unwrap_err();
    assert!(
        matches!(err, HelixError::Unauthorized(ref m) if m == "Invalid OAuth token"),
        "{err:?}"
    );
    assert_eq!(helix_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn error_statuses_become_typed_errors() {
    let router = Router::new().route(
        "/helix/eventsub/subscriptions",
        post(|h: HeaderMap| async move {
            let code = bearer(&h).parse::<u16>().unwrap();
            (
                StatusCode::from_u16(code).unwrap(),
                axum::Json(
                    json!({"error": "x", "status": code, "message": format!("says {code}")}),
                ),
            )
        }),
    );
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let req = CreateSubscription {
        kind: "stream.online".into(),
        version: "1".into(),
        condition: json!({"broadcaster_user_id": "1"}),
        transport: Default::default(),
    };
    for code in [400u16, 403, 404, 409, 503, 418] {
        let tokens = UserTokenSource::new(oauth.clone(), user_token(&code.to_string()), None);
        let err = helix.create_subscription(&tokens, &req).await.unwrap_err();
        let ok = match (code, &err) {
            (400, HelixError::BadRequest(m))
            | (403, HelixError::Forbidden(m))
            | (404, HelixError::NotFound(m))
            | (409, HelixError::Conflict(m)) => m == &format!("says {code}"),
            (503, HelixError::Server { status: 503, .. }) => true,
            (418, HelixError::Unexpected { status: 418, .. }) => true,
            _ => false,
        };
        assert!(ok, "{code}: {err:?}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_but_not_for_writes() {
    let gets = Arc::new(AtomicUsize::new(0));
    let posts = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route(
        "/helix/eventsub/subscriptions",
        get({
            let gets = gets.clone();
            move || async move {
                if gets.fetch_add(1, Ordering::SeqCst) < 2 { return StatusCode::BAD_GATEWAY.into_response(); }
                axum::Json(json!({"data": [], "total": 0, "total_cost": 0, "max_total_cost": 10000, "pagination": {}})).into_response()
            }
        })
        .post({
            let posts = posts.clone();
            move || async move { posts.fetch_add(1, Ordering::SeqCst); StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let tokens = UserTokenSource::new(oauth, user_token("t"), None);
    let list = helix
        .list_all_subscriptions(&tokens, &sev_twitch::helix::SubscriptionFilter::None)
        .await
        .unwrap();
    assert!(list.is_empty());
    assert_eq!(
        gets.load(Ordering::SeqCst),
        3,
        "two 502s retried, then success"
    );
    let req = CreateSubscription {
        kind: "stream.online".into(),
        version: "1".into(),
        condition: json!({}),
        transport: Default::default(),
    };
    assert!(matches!(
        helix.create_subscription(&tokens, &req).await,
        Err(HelixError::Server { status: 503, .. })
    ));
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "a create is never repeated blindly"
    );
}

#[tokio::test]
async fn pagination_follows_the_cursor_to_the_end() {
    let router = Router::new().route(
        "/helix/eventsub/subscriptions",
        get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
            let sub = |id: &str| json!({"id": id, "status": "enabled", "type": "stream.online", "version": "1", "condition": {"broadcaster_user_id": id}, "transport": {"method": "conduit", "conduit_id": "c"}, "created_at": "2026-01-01T00:00:00Z", "cost": 1});
            assert_eq!(q.get("type").map(String::as_str), Some("stream.online"));
            match q.get("after").map(String::as_str) {
                None => axum::Json(json!({"data": [sub("1"), sub("2")], "total": 3, "total_cost": 3, "max_total_cost": 10000, "pagination": {"cursor": "p2"}})),
                Some("p2") => axum::Json(json!({"data": [sub("3")], "total": 3, "total_cost": 3, "max_total_cost": 10000, "pagination": {}})),
                Some(other) => panic!("unexpected cursor {other}"),
            }
        }),
    );
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let tokens = UserTokenSource::new(oauth, user_token("t"), None);
    let all = helix
        .list_all_subscriptions(
            &tokens,
            &sev_twitch::helix::SubscriptionFilter::Type("stream.online".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
}

#[tokio::test]
async fn the_app_token_is_fetched_once_and_renewed_after_a_401() {
    let issued = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/oauth2/token", post({
            let issued = issued.clone();
            move |Form(f): Form<std::collections::HashMap<String, String>>| async move {
                assert_eq!(f.get("grant_type").map(String::as_str), Some("client_credentials"));
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                axum::Json(json!({"access_token": format!("app-{n}"), "expires_in": 5_000_000, "token_type": "bearer"}))
            }
        }))
        .route("/helix/streams", get(|h: HeaderMap| async move {
            assert_eq!(h.get("client-id").and_then(|v| v.to_str().ok()), Some("cid"));
            if bearer(&h) == "app-1" { return StatusCode::UNAUTHORIZED.into_response(); }
            axum::Json(json!({"data": [], "pagination": {}})).into_response()
        }));
    let base = serve(router).await;
    let (oauth, helix) = clients(&base);
    let tokens = AppTokenSource::new(oauth);
    assert!(
        helix
            .get_streams(&tokens, &["1"], &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        helix
            .get_streams(&tokens, &["1"], &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "fetched once, renewed once after the 401, then reused"
    );
}

#[tokio::test]
async fn oauth_calls_speak_twitchs_protocol() {
    let revoked: Arc<Mutex<Vec<String>>> = Arc::default();
    let router = Router::new()
        .route("/oauth2/token", post(|Form(f): Form<std::collections::HashMap<String, String>>| async move {
            match f.get("code").map(String::as_str) {
                Some("good-code") => {
                    assert_eq!(f.get("redirect_uri").map(String::as_str), Some("http://localhost:8080/auth/callback"));
                    axum::Json(json!({"access_token": "a1", "refresh_token": "r1", "expires_in": 14124, "scope": ["user:read:chat"], "token_type": "bearer"})).into_response()
                }
                _ => (StatusCode::BAD_REQUEST, axum::Json(json!({"status": 400, "message": "Invalid authorization code"}))).into_response(),
            }
        }))
        .route("/oauth2/validate", get(|h: HeaderMap| async move {
            match h.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("OAuth a1") => axum::Json(json!({"client_id": "cid", "login": "viewer", "scopes": ["user:read:chat"], "user_id": "1001", "expires_in": 14000})).into_response(),
                _ => (StatusCode::UNAUTHORIZED, axum::Json(json!({"status": 401, "message": "invalid access token"}))).into_response(),
            }
        }))
        .route("/oauth2/revoke", post({
            let revoked = revoked.clone();
            move |Form(f): Form<std::collections::HashMap<String, String>>| async move {
                assert_eq!(f.get("client_id").map(String::as_str), Some("cid"));
                revoked.lock().unwrap().push(f.get("token").cloned().unwrap_or_default());
                StatusCode::OK
            }
        }));
    let base = serve(router).await;
    let (oauth, _) = clients(&base);

    let url = oauth.authorize_url(
        "http://localhost:8080/auth/callback",
        &["user:read:chat", "user:read:follows"],
        "st4te",
        true,
    );
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/oauth2/authorize");
    assert_eq!(q["client_id"], "cid");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "user:read:chat user:read:follows");
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["force_verify"], "true");

    let token = oauth
        .exchange_code("good-code", "http://localhost:8080/auth/callback")
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "a1");
    assert!(
        matches!(oauth.exchange_code("replayed", "http://localhost:8080/auth/callback").await, Err(OAuthError::Refused(m)) if m == "Invalid authorization code")
    );

    let v = oauth.validate(&token.access_token).await.unwrap();
    assert_eq!(
        (v.user_id.as_deref(), v.login.as_deref()),
        (Some("1001"), Some("viewer"))
    );
    assert!(matches!(
        oauth.validate(&SecretString::from("nope".to_owned())).await,
        Err(OAuthError::InvalidToken)
    ));

    oauth.revoke(&token.access_token).await.unwrap();
    assert_eq!(*revoked.lock().unwrap(), ["a1"]);
    assert!(
        !format!("{token:?}").contains("a1"),
        "tokens never show in Debug output"
    );
}
