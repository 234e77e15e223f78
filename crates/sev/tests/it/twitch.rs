//! sev against its simulator, end to end: favorites become shared subscriptions on a conduit,
//! and events triggered in the simulator reach the feed.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::helpers::{eventually, spawn_app_with_sim};

#[tokio::test]
async fn favorites_become_one_shared_set_and_events_reach_the_feed() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    for i in 0..1000 {
        let id = format!("{}", 200_000 + i);
        app.state
            .store
            .upsert_user(&sev_store::Streamer {
                id: id.clone(),
                login: format!("fan{i}"),
                display_name: format!("Fan{i}"),
            })
            .await?;
        app.state.store.add_favorite(&id, "4242").await?;
    }
    app.state.favorites_changed();
    eventually("five subscriptions for favstreamer", || async {
        let subs = sim.subscriptions().await?;
        Ok(subs.len() == 5 && subs.iter().all(|s| s["status"] == "enabled"))
    })
    .await?;
    let subs = sim.subscriptions().await?;
    ensure!(
        subs.iter().all(|s| s["transport"]["method"] == "conduit"),
        "{subs:?}"
    );

    let status: Value = app.get("/admin/subscriptions").await?.json().await?;
    let for_favstreamer = status["subscribed"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["streamer_id"] == "4242").count());
    ensure!(
        for_favstreamer == Some(5) && status["streamers"] == 1,
        "{status}"
    );
    ensure!(
        status["subscribed"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["type"] == "user.authorization.revoke")),
        "and the app's own revoke subscription: {status}"
    );

    // An event made in the simulator arrives in the feed, through the conduit's WebSocket shard.
    let event = sim.trigger(json!({"type": "stream.online", "broadcaster": "favstreamer"}))?;
    eventually("the event in the feed", || async {
        let res = app
            .get("/api/v1/streamers/favstreamer/events?after=0")
            .await?;
        if res.status() != 200 {
            return Ok(false);
        }
        let page: Value = res.json().await?;
        Ok(page["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["raw"]["id"] == event["id"])))
    })
    .await?;
    let page: Value = app
        .get("/api/v1/streamers/favstreamer/events?after=0")
        .await?
        .json()
        .await?;
    let first = page["events"].get(0).context("one event")?;
    ensure!(first["text"] == "Favstreamer went live", "{first}");
    app.stop().await
}
