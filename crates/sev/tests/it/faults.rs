//! The pipeline under faults injected in the simulator: duplicated and reordered deliveries,
//! a session_reconnect mid-stream, keepalive loss, a revocation. In each, what the viewer saw
//! equals what the simulator sent: once each, in the log's per-streamer order.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::helpers::{
    Sim, TestApp, Ws, connect, eventually, next, spawn_app_with_sim, until_ready,
};

/// The app, its simulator with favstreamer subscribed, and a viewer from the start of the log.
async fn setup() -> Result<(TestApp, Sim, Ws)> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    app.state
        .store
        .upsert_user(&sev_store::Streamer {
            id: "1001".into(),
            login: "viewer1".into(),
            display_name: "Viewer1".into(),
        })
        .await?;
    app.state.store.add_favorite("1001", "4242").await?;
    app.state
        .events
        .remember_streamer(sev_store::Streamer {
            id: "4242".into(),
            login: "favstreamer".into(),
            display_name: "Favstreamer".into(),
        })
        .await;
    app.state.favorites_changed();
    eventually("favstreamer subscribed", || async {
        let subs = sim.subscriptions().await?;
        Ok(subs.len() == 5 && subs.iter().all(|s| s["status"] == "enabled"))
    })
    .await?;
    let mut viewer = connect(&app, Some(0)).await?;
    ensure!(until_ready(&mut viewer).await?.is_empty());
    Ok((app, sim, viewer))
}

/// Triggers title changes; returns the titles sent.
fn send(sim: &Sim, prefix: &str, n: usize) -> Result<Vec<String>> {
    (0..n)
        .map(|i| {
            let title = format!("{prefix}-{i}");
            sim.trigger(
                json!({"type": "channel.update", "broadcaster": "favstreamer", "title": title}),
            )?;
            Ok(title)
        })
        .collect()
}

/// Reads `n` events; checks they come in cursor order, and returns their titles.
async fn receive(viewer: &mut Ws, n: usize, last_seq: &mut i64) -> Result<Vec<String>> {
    let mut titles = Vec::new();
    while titles.len() < n {
        let m = next(viewer).await?;
        ensure!(m["type"] == "event", "only events: {m}");
        let seq = m["event"]["seq"].as_i64().context("seq")?;
        ensure!(
            seq > *last_seq,
            "in the log's order: {seq} after {last_seq}"
        );
        *last_seq = seq;
        titles.push(
            m["event"]["raw"]["title"]
                .as_str()
                .context("title")?
                .to_owned(),
        );
    }
    Ok(titles)
}

fn same_set(sent: &[String], seen: &[String]) -> Result<()> {
    let a: BTreeSet<&String> = sent.iter().collect();
    let b: BTreeSet<&String> = seen.iter().collect();
    ensure!(
        seen.len() == sent.len() && a == b,
        "sent {sent:?}, seen {seen:?}"
    );
    Ok(())
}

async fn control(sim: &Sim, path: &str, body: Value) -> Result<Value> {
    let res = reqwest::Client::new()
        .post(sim.base.join(path)?)
        .json(&body)
        .send()
        .await?;
    ensure!(res.status().is_success(), "{path}: {}", res.status());
    Ok(res.json().await.unwrap_or(Value::Null))
}

async fn shard_session(sim: &Sim) -> Result<String> {
    let v: Value = reqwest::get(sim.base.join("/_sim/sessions")?)
        .await?
        .json()
        .await?;
    let s = v["data"]
        .as_array()
        .context("sessions")?
        .iter()
        .find(|s| s["connected"] == true)
        .context("a connected session")?;
    Ok(s["id"].as_str().context("id")?.to_owned())
}

#[tokio::test]
async fn duplicated_and_reordered_deliveries_are_shown_once_each() -> Result<()> {
    let (app, sim, mut viewer) = setup().await?;
    let mut last = 0;
    control(&sim, "/_sim/faults/delivery", json!({"duplicate": 3})).await?;
    let sent = send(&sim, "dup", 5)?;
    let mut seen = receive(&mut viewer, 5, &mut last).await?;
    same_set(&sent, &seen)?;
    control(&sim, "/_sim/faults/delivery", json!({"reorder": 2})).await?;
    let sent = send(&sim, "reorder", 6)?;
    let live = receive(&mut viewer, 6, &mut last).await?;
    same_set(&sent, &live)?;
    seen.extend(live);
    // Twitch numbers nothing, so the log's order is the order: a viewer who comes later (or
    // reconnects) sees exactly what the live viewer saw, in the same order (decision 0007).
    let mut later = connect(&app, Some(0)).await?;
    let (mut from, mut replayed) = (0, Vec::new());
    replayed.extend(receive(&mut later, 11, &mut from).await?);
    ensure!(
        replayed == seen,
        "same order for everyone: {replayed:?} vs {seen:?}"
    );
    // And nothing more: the duplicates were never stored.
    let page: Value = app
        .get("/api/v1/streamers/favstreamer/events?after=0&limit=500")
        .await?
        .json()
        .await?;
    ensure!(
        page["events"].as_array().map(Vec::len) == Some(11),
        "{page}"
    );
    app.stop().await
}

#[tokio::test]
async fn a_session_reconnect_mid_stream_loses_nothing() -> Result<()> {
    let (app, sim, mut viewer) = setup().await?;
    let mut last = 0;
    let mut sent = send(&sim, "before", 3)?;
    let mut seen = receive(&mut viewer, 3, &mut last).await?;
    let sid = shard_session(&sim).await?;
    control(&sim, &format!("/_sim/sessions/{sid}/reconnect"), json!({})).await?;
    sent.extend(send(&sim, "during", 3)?);
    seen.extend(receive(&mut viewer, 3, &mut last).await?);
    sent.extend(send(&sim, "after", 3)?);
    seen.extend(receive(&mut viewer, 3, &mut last).await?);
    same_set(&sent, &seen)?;
    app.stop().await
}

#[tokio::test]
async fn keepalive_loss_is_noticed_and_the_shard_comes_back() -> Result<()> {
    let (app, sim, mut viewer) = setup().await?;
    let mut last = 0;
    let first = shard_session(&sim).await?;
    control(
        &sim,
        &format!("/_sim/sessions/{first}/keepalive"),
        json!({"enabled": false}),
    )
    .await?;
    // sev notices the silence, reconnects and re-attaches the shard to a new session.
    eventually("a new shard session", || async {
        Ok(shard_session(&sim).await.is_ok_and(|s| s != first))
    })
    .await?;
    let sent = send(&sim, "back", 3)?;
    same_set(&sent, &receive(&mut viewer, 3, &mut last).await?)?;
    app.stop().await
}

#[tokio::test]
async fn a_revoked_subscription_is_repaired_and_events_flow_again() -> Result<()> {
    let (app, sim, mut viewer) = setup().await?;
    let mut last = 0;
    let subs = sim.subscriptions().await?;
    let update = subs
        .iter()
        .find(|s| s["type"] == "channel.update")
        .context("channel.update")?;
    let id = update["id"].as_str().context("id")?;
    control(
        &sim,
        &format!("/_sim/subscriptions/{id}/revoke"),
        json!({"status": "authorization_revoked"}),
    )
    .await?;
    eventually("a replacement subscription", || async {
        let subs = sim.subscriptions().await?;
        Ok(subs
            .iter()
            .any(|s| s["type"] == "channel.update" && s["status"] == "enabled" && s["id"] != id))
    })
    .await?;
    let sent = send(&sim, "repaired", 2)?;
    same_set(&sent, &receive(&mut viewer, 2, &mut last).await?)?;
    app.stop().await
}
