//! The feed API and the live WebSocket: pages, cursors, gaps, privacy, gift bombs folded,
//! resuming with a cursor, and a slow viewer that loses nothing.

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use serde_json::{Value, json};
use sev_twitch::eventsub::Notification;

use crate::helpers::{TestApp, connect, next, spawn_app, until_ready};

fn notification(kind: &str, version: &str, event: Value) -> Result<Notification> {
    Ok(Notification::from_value(json!({
        "subscription": {"id": "s", "status": "enabled", "type": kind, "version": version, "cost": 0,
            "condition": {"broadcaster_user_id": "4242"}, "transport": {"method": "webhook", "callback": "https://x"}, "created_at": "2026-01-01T00:00:00Z"},
        "event": event,
    }))?)
}

fn b() -> Value {
    json!({"broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer", "broadcaster_user_name": "FavStreamer"})
}

fn with(mut a: Value, extra: Value) -> Value {
    if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    a
}

/// Stores events through the same path webhooks take (normalise, ingest) and records the streamer.
async fn ingest(app: &TestApp, items: Vec<(&str, &str, Value)>) -> Result<()> {
    let mut batch = Vec::new();
    for (kind, version, event) in items {
        let n = notification(kind, version, event)?;
        let normalized = sev_pipeline::normalize(&n, &uuid::Uuid::new_v4().to_string(), Utc::now())
            .context("a feed event")?;
        batch.push(normalized.into_new_event());
    }
    app.state.events.ingest(batch).await?;
    app.state
        .events
        .remember_streamer(sev_store::Streamer {
            id: "4242".into(),
            login: "favstreamer".into(),
            display_name: "FavStreamer".into(),
        })
        .await;
    Ok(())
}

fn update(title: &str) -> (&'static str, &'static str, Value) {
    (
        "channel.update",
        "2",
        with(b(), json!({"title": title, "category_name": "Chess"})),
    )
}

async fn titles(app: &TestApp, n: usize) -> Result<()> {
    ingest(app, (0..n).map(|i| update(&format!("t{i}"))).collect()).await
}

async fn get(app: &TestApp, query: &str) -> Result<(u16, Value)> {
    let res = app
        .get(&format!("/api/v1/streamers/favstreamer/events{query}"))
        .await?;
    Ok((res.status().as_u16(), res.json().await?))
}

fn seqs(v: &Value) -> Vec<i64> {
    v["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["seq"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn history_pages_by_cursor() -> Result<()> {
    let app = spawn_app().await?;
    titles(&app, 5).await?;
    let (status, page) = get(&app, "?after=2&limit=2").await?;
    ensure!(status == 200);
    ensure!(
        seqs(&page) == [3, 4]
            && page["cursor"] == 4
            && page["more"] == true
            && page["gap"] == false,
        "{page}"
    );
    ensure!(
        page["events"][0]["text"] == "Title: “t2” · Chess"
            && page["streamer"]["login"] == "favstreamer",
        "{page}"
    );
    let (_, newest) = get(&app, "?limit=3").await?;
    ensure!(
        seqs(&newest) == [3, 4, 5] && newest["more"] == false,
        "no cursor: the newest events, oldest first: {newest}"
    );
    ensure!(
        get(&app, "?limit=0").await?.0 == 400
            && get(&app, "?after=-1").await?.0 == 400
            && get(&app, "?limit=x").await?.0 == 400
    );
    let unknown = app.get("/api/v1/streamers/nobody_here/events").await?;
    ensure!(unknown.status() == 404);
    ensure!(
        app.get("/api/v1/streamers/bad%20login/events")
            .await?
            .status()
            == 400
    );
    app.stop().await
}

#[tokio::test]
async fn consent_events_stay_private_and_gift_bombs_fold() -> Result<()> {
    let app = spawn_app().await?;
    let chat = |notice: &str, object: Value| {
        let mut e = with(
            b(),
            json!({"chatter_user_id": "5", "chatter_user_login": "alice", "chatter_user_name": "Alice", "chatter_is_anonymous": false, "message": {"text": ""}, "notice_type": notice}),
        );
        e[notice] = object;
        ("channel.chat.notification", "1", e)
    };
    ingest(&app, vec![
        ("channel.follow", "2", with(b(), json!({"user_id": "7", "user_login": "newfan", "user_name": "NewFan", "followed_at": "2026-12-03T18:00:00Z"}))),
        chat("community_sub_gift", json!({"id": "cg1", "total": 2, "sub_tier": "1000"})),
        chat("sub_gift", json!({"recipient_user_id": "8", "recipient_user_login": "bob", "recipient_user_name": "Bob", "sub_tier": "1000", "community_gift_id": "cg1"})),
        chat("sub_gift", json!({"recipient_user_id": "9", "recipient_user_login": "cat", "recipient_user_name": "Cat", "sub_tier": "1000", "community_gift_id": "cg1"})),
    ])
    .await?;
    let (_, page) = get(&app, "?after=0").await?;
    let events = page["events"].as_array().context("events")?;
    ensure!(
        events.len() == 1,
        "the follow is hidden and the recipients folded: {page}"
    );
    ensure!(events[0]["text"] == "Alice gifted 2 Tier 1 subs");
    let names: Vec<&str> = events[0]["recipients"]
        .as_array()
        .context("recipients")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(names == ["Bob", "Cat"], "{names:?}");
    ensure!(page["cursor"] == 4, "the cursor moves past hidden events");
    app.stop().await
}

#[tokio::test]
async fn a_viewer_gets_history_then_live_and_resumes_exactly() -> Result<()> {
    let app = spawn_app().await?;
    titles(&app, 3).await?;
    let mut ws = connect(&app, Some(0)).await?;
    ensure!(until_ready(&mut ws).await? == [1, 2, 3]);
    titles(&app, 2).await?;
    for want in [4, 5] {
        let m = next(&mut ws).await?;
        ensure!(m["type"] == "event" && m["event"]["seq"] == want, "{m}");
    }
    drop(ws);
    // Away for a while, then back with the last cursor: exactly what was missed, then live.
    titles(&app, 3).await?;
    let mut ws = connect(&app, Some(5)).await?;
    ensure!(until_ready(&mut ws).await? == [6, 7, 8]);
    titles(&app, 1).await?;
    ensure!(next(&mut ws).await?["event"]["seq"] == 9);
    // Without a cursor: live from now on.
    let mut fresh = connect(&app, None).await?;
    ensure!(until_ready(&mut fresh).await?.is_empty());
    titles(&app, 1).await?;
    ensure!(next(&mut fresh).await?["event"]["seq"] == 10);
    app.stop().await
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_gets_a_gap() -> Result<()> {
    let app = spawn_app().await?;
    titles(&app, 4).await?;
    app.state
        .store
        .prune_before(Utc::now() + chrono::Duration::seconds(1))
        .await?;
    titles(&app, 2).await?;
    let mut ws = connect(&app, Some(1)).await?;
    let gap = next(&mut ws).await?;
    ensure!(
        gap["type"] == "gap" && gap["after"] == 1 && gap["next"] == 5,
        "{gap}"
    );
    ensure!(until_ready(&mut ws).await? == [5, 6]);
    let (_, page) = get(&app, "?after=1").await?;
    ensure!(page["gap"] == true, "the API says so too: {page}");
    app.stop().await
}

#[tokio::test]
async fn a_slow_viewer_is_resynced_and_loses_nothing() -> Result<()> {
    let app = spawn_app().await?;
    app.state
        .events
        .remember_streamer(sev_store::Streamer {
            id: "4242".into(),
            login: "favstreamer".into(),
            display_name: "FavStreamer".into(),
        })
        .await;
    let mut slow = connect(&app, Some(0)).await?;
    ensure!(until_ready(&mut slow).await?.is_empty());
    // 3,000 events while the viewer reads nothing: more than the bus keeps for one subscriber.
    for chunk in 0..6 {
        ingest(
            &app,
            (0..500).map(|i| update(&format!("c{chunk}-{i}"))).collect(),
        )
        .await?;
    }
    let mut seen = Vec::new();
    while seen.len() < 3000 {
        let m = next(&mut slow).await?;
        ensure!(m["type"] == "event", "{m}");
        seen.push(m["event"]["seq"].as_i64().context("seq")?);
    }
    ensure!(
        seen == (1..=3000).collect::<Vec<_>>(),
        "every event once, in order"
    );
    app.stop().await
}

#[tokio::test]
async fn the_retention_window_prunes_and_readers_are_told() -> Result<()> {
    let app = spawn_app().await?;
    titles(&app, 3).await?;
    let pruned =
        sev::retention::prune(&app.state, Utc::now() + chrono::Duration::seconds(1)).await?;
    ensure!(pruned == 3);
    titles(&app, 1).await?;
    let (_, page) = get(&app, "?after=0").await?;
    ensure!(page["gap"] == true && seqs(&page) == [4], "{page}");
    let metrics = app.get("/metrics").await?.text().await?;
    ensure!(metrics.contains("sev_events_pruned_total 3"), "{metrics}");
    app.stop().await
}
