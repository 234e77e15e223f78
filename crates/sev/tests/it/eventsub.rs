//! `POST /eventsub`: webhooks as Twitch (or Twitch's CLI) sends them.

use anyhow::{Result, ensure};
use chrono::Utc;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

pub const SECRET: &str = "test-eventsub-secret";

async fn app() -> Result<TestApp> {
    spawn_app_with(|s| sev::config::Settings {
        eventsub_secret: Some(SECRET.into()),
        ..s
    })
    .await
}

pub fn body(kind: &str, event: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "subscription": {"id": "sub-1", "status": "enabled", "type": kind, "version": "1", "cost": 0,
            "condition": {"broadcaster_user_id": "4242"}, "transport": {"method": "webhook", "callback": "https://x/eventsub"},
            "created_at": "2026-01-02T10:00:00Z"},
        "event": event,
    }))
    .unwrap_or_default()
}

pub fn online(id: &str) -> Vec<u8> {
    body(
        "stream.online",
        json!({"id": id, "broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer",
        "broadcaster_user_name": "FavStreamer", "type": "live", "started_at": "2026-12-03T18:00:01Z"}),
    )
}

pub async fn post(
    app: &TestApp,
    message_id: &str,
    message_type: &str,
    body: &[u8],
    secret: &str,
    at: chrono::DateTime<Utc>,
) -> Result<reqwest::Response> {
    let mut req = app
        .client
        .post(format!("{}/eventsub", app.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in sev_twitch::webhook::signed_headers(
        secret.as_bytes(),
        message_id,
        message_type,
        at,
        Some(("stream.online", "1")),
        0,
        body,
    ) {
        req = req.header(k, v);
    }
    Ok(req.send().await?)
}

async fn stored(app: &TestApp) -> Result<Vec<sev_store::StoredEvent>> {
    Ok(app.state.store.events_after("4242", 0, 100).await?.events)
}

#[tokio::test]
async fn a_challenge_is_answered_with_the_raw_challenge() -> Result<()> {
    let app = app().await?;
    let challenge = "pogchamp-kappa-360noscope-vohiyo";
    let b = serde_json::to_vec(
        &json!({"challenge": challenge, "subscription": {"id": "s", "status": "webhook_callback_verification_pending", "type": "stream.online", "version": "1", "condition": {"broadcaster_user_id": "4242"}, "transport": {"method": "webhook", "callback": "https://x"}, "created_at": "2026-01-01T00:00:00Z", "cost": 0}}),
    )?;
    let res = post(
        &app,
        "m-1",
        "webhook_callback_verification",
        &b,
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(res.status() == 200);
    ensure!(res.headers()["content-type"] == "text/plain");
    ensure!(res.text().await? == challenge);
    app.stop().await
}

#[tokio::test]
async fn a_notification_is_stored_once_then_acknowledged() -> Result<()> {
    let app = app().await?;
    let mut live = app
        .state
        .events
        .bus()
        .subscribe(&sev::events::topic("4242"))
        .await?;
    let res = post(
        &app,
        "m-1",
        "notification",
        &online("s1"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(res.status() == 204, "{}", res.status());
    let events = stored(&app).await?;
    ensure!(
        events.len() == 1 && events[0].kind == "stream.online",
        "{events:?}"
    );
    ensure!(events[0].payload["text"] == "FavStreamer went live");
    ensure!(
        matches!(live.recv().await, Some(sev_bus::Delivery::Message(_))),
        "published after it was stored"
    );
    // Twitch retries with the same message id: acknowledged, not stored again.
    let again = post(
        &app,
        "m-1",
        "notification",
        &online("s1"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(again.status() == 204);
    ensure!(stored(&app).await?.len() == 1);
    let streamer = app.state.store.streamer_by_login("favstreamer").await?;
    ensure!(
        streamer.map(|s| s.id) == Some("4242".into()),
        "the channel is findable by login"
    );
    app.stop().await
}

#[tokio::test]
async fn forged_stale_malformed_and_oversized_requests_are_refused_and_change_nothing() -> Result<()>
{
    let app = app().await?;
    let b = online("s1");
    ensure!(
        post(
            &app,
            "m-1",
            "notification",
            &b,
            "wrong-secret-123",
            Utc::now()
        )
        .await?
        .status()
            == 403
    );
    ensure!(
        post(
            &app,
            "m-2",
            "notification",
            &b,
            SECRET,
            Utc::now() - chrono::Duration::minutes(11)
        )
        .await?
        .status()
            == 400
    );
    let unsigned = app
        .client
        .post(format!("{}/eventsub", app.url))
        .body(b.clone())
        .send()
        .await?;
    ensure!(unsigned.status() == 400);
    ensure!(
        post(
            &app,
            "m-3",
            "notification",
            b"{not json",
            SECRET,
            Utc::now()
        )
        .await?
        .status()
            == 400
    );
    let huge = vec![b' '; 300 * 1024];
    ensure!(
        post(&app, "m-4", "notification", &huge, SECRET, Utc::now())
            .await?
            .status()
            == 413
    );
    ensure!(stored(&app).await?.is_empty(), "nothing was stored");
    // The refused message ids were not remembered: the real message still gets in.
    ensure!(
        post(&app, "m-1", "notification", &b, SECRET, Utc::now())
            .await?
            .status()
            == 204
    );
    ensure!(stored(&app).await?.len() == 1);
    app.stop().await
}

#[tokio::test]
async fn unknown_types_and_revocations_are_acknowledged() -> Result<()> {
    let app = app().await?;
    let unknown = body(
        "channel.brand_new_thing",
        json!({"broadcaster_user_id": "4242", "surprise": true}),
    );
    ensure!(
        post(&app, "m-1", "notification", &unknown, SECRET, Utc::now())
            .await?
            .status()
            == 204
    );
    let events = stored(&app).await?;
    ensure!(
        events.len() == 1
            && events[0].kind == "unknown"
            && events[0].payload["raw"]["surprise"] == true,
        "{events:?}"
    );
    let revoked = serde_json::to_vec(
        &json!({"subscription": {"id": "s", "status": "authorization_revoked", "type": "channel.follow", "version": "2", "condition": {}, "transport": {"method": "webhook", "callback": "https://x"}, "created_at": "2026-01-01T00:00:00Z", "cost": 0}}),
    )?;
    ensure!(
        post(&app, "m-2", "revocation", &revoked, SECRET, Utc::now())
            .await?
            .status()
            == 204
    );
    app.stop().await
}

#[tokio::test]
async fn a_store_that_cannot_keep_the_event_gets_twitch_to_retry() -> Result<()> {
    let app = app().await?;
    app.state.store.close().await;
    let res = post(
        &app,
        "m-1",
        "notification",
        &online("s1"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(
        res.status() == 503,
        "5xx, so Twitch retries: {}",
        res.status()
    );
    app.stop().await
}
