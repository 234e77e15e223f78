//! Event-log write throughput: group commit against one transaction per event, both durable
//! (SQLite `synchronous=FULL`; PostgreSQL commits), measured in the same run.
//!
//! ```sh
//! cargo run --release -p sev-store --example event_log_bench -- [sqlite|postgres] [EVENTS] [WRITERS]
//! ```
//! PostgreSQL comes from `SEV_TEST_POSTGRES_URL` (default `postgres://postgres:postgres@127.0.0.1:5432/postgres`);
//! a database of its own is created and dropped. Results: docs/benchmarks.md.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use sev_store::{EventLog, EventLogConfig, NewEvent, Store};
use sqlx::Connection;

fn event(streamer: usize, n: usize) -> NewEvent {
    NewEvent {
        id: uuid::Uuid::now_v7(),
        streamer_id: format!("{}", 4000 + streamer),
        kind: "channel.chat.notification".into(),
        occurred_at: Utc::now(),
        dedupe_keys: vec![format!("msg:{}", uuid::Uuid::new_v4())],
        payload: serde_json::json!({
            "kind": "gift", "visibility": "public", "text": format!("Viewer{n} gifted a Tier 1 sub to Someone"),
            "raw": {"broadcaster_user_id": "4242", "chatter_user_login": "viewer", "notice_type": "sub_gift", "n": n},
        }),
    }
}

async fn open(
    backend: &str,
) -> anyhow::Result<(
    Arc<dyn Store>,
    Option<(String, String)>,
    Option<tempfile::TempDir>,
)> {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            Ok((sev_store::connect(&url).await?, None, Some(dir)))
        }
        _ => {
            let admin = std::env::var("SEV_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
            let name = format!("sev_bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("create database {name}"))
                .execute(&mut conn)
                .await?;
            let mut url = url::Url::parse(&admin)?;
            url.set_path(&name);
            Ok((
                sev_store::connect(url.as_str()).await?,
                Some((admin, name)),
                None,
            ))
        }
    }
}

async fn close(store: Arc<dyn Store>, drop: Option<(String, String)>) -> anyhow::Result<()> {
    store.close().await;
    if let Some((admin, name)) = drop {
        let mut conn = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let events: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let writers: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(64);
    let baseline_events = (events / 10).max(200);

    // Baseline: one transaction (one fsync) per event, one writer.
    let (store, drop, _dir) = open(&backend).await?;
    let start = Instant::now();
    for n in 0..baseline_events {
        store.append_batch(&[event(n % 8, n)]).await?;
    }
    let baseline = baseline_events as f64 / start.elapsed().as_secs_f64();
    close(store, drop).await?;

    // Group commit: many concurrent writers through the EventLog, as webhooks and shards are.
    let (store, drop, _dir) = open(&backend).await?;
    let (log, writer) = EventLog::start(store.clone(), EventLogConfig::default());
    let start = Instant::now();
    let per_writer = events / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..per_writer {
                log.append(event(w % 8, n)).await?;
            }
            Ok::<_, sev_store::EventLogError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let grouped = (per_writer * writers) as f64 / start.elapsed().as_secs_f64();
    drop_log(log, writer).await;
    let stored: usize = {
        let mut total = 0;
        for s in 0..8 {
            total += store
                .events_after(&format!("{}", 4000 + s), 0, 1)
                .await?
                .last_seq as usize;
        }
        total
    };
    close(store, drop).await?;

    println!("backend: {backend}");
    println!(
        "baseline (one transaction per event): {baseline_events} events, {baseline:.0} events/s"
    );
    println!(
        "group commit ({writers} writers): {} events, {grouped:.0} events/s (stored: {stored})",
        per_writer * writers
    );
    println!("ratio: {:.1}x", grouped / baseline);
    Ok(())
}

async fn drop_log(log: EventLog, writer: tokio::task::JoinHandle<()>) {
    std::mem::drop(log);
    let _ = writer.await;
}
