//! Persist, then publish: the step every event takes on its way in.

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use serde_json::{Value, json};
use sev_bus::Delivery;
use sev_store::{Appended, NewEvent};

use crate::helpers::spawn_app;

fn event(key: &str) -> NewEvent {
    NewEvent {
        id: uuid::Uuid::now_v7(),
        streamer_id: "4242".into(),
        kind: "stream.online".into(),
        occurred_at: Utc::now(),
        dedupe_keys: vec![key.into()],
        payload: json!({ "broadcaster_user_login": "favstreamer" }),
    }
}

#[tokio::test]
async fn a_stored_event_is_published_once_and_duplicates_are_not() -> Result<()> {
    let app = spawn_app().await?;
    let events = &app.state.events;
    let mut sub = events.bus().subscribe(&sev::events::topic("4242")).await?;

    let first = events.ingest(vec![event("msg-1")]).await?;
    let Appended::Stored(stored) = &first[0] else {
        anyhow::bail!("stored: {first:?}")
    };
    // Durable before it is published: it is in the store by the time it is delivered.
    let Some(Delivery::Message(bytes)) = sub.recv().await else {
        anyhow::bail!("published")
    };
    let published: Value = serde_json::from_slice(&bytes)?;
    ensure!(
        published["seq"] == 1 && published["kind"] == "stream.online",
        "{published}"
    );
    let in_store = app.state.store.events_after("4242", 0, 10).await?;
    ensure!(in_store.events.as_slice() == std::slice::from_ref(stored));

    let again = events.ingest(vec![event("msg-1"), event("msg-2")]).await?;
    ensure!(
        matches!(again[0], Appended::Duplicate { seq: 1, .. }),
        "{again:?}"
    );
    let Some(Delivery::Message(bytes)) = sub.recv().await else {
        anyhow::bail!("published")
    };
    let next: Value = serde_json::from_slice(&bytes)?;
    ensure!(
        next["seq"] == 2,
        "the duplicate was not published; the next event was: {next}"
    );

    let text = app.get("/metrics").await?.text().await?;
    ensure!(
        text.contains(r#"sev_events_stored_total{kind="stream.online"} 2"#),
        "{text}"
    );
    ensure!(text.contains("sev_events_duplicate_total 1"), "{text}");
    ensure!(text.contains("sev_events_published_total 2"), "{text}");
    app.stop().await.context("stop")
}
