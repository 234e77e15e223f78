//! How many requests one sev instance answers per second on this machine: the history API
//! (`GET /api/v1/streamers/{login}/events`, a store read and JSON) against `GET /healthz` (the
//! same HTTP stack with no work) as the baseline, in the same run. The load generator runs in
//! the same process and shares the cores, so the figures are a floor for the server alone.
//!
//! cargo run --release -p sev --example http_bench -- [seconds per phase] [connections] [limit]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use sev::config::{Config, Mode, Settings};
use sev::startup::App;
use sev_store::{NewEvent, Streamer};

struct Phase {
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

async fn hammer(url: String, seconds: u64, connections: usize) -> Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, stop) = (url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // One client per worker: one keep-alive connection each, as browsers hold.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let (mut ok, mut errors, mut lat) = (0usize, 0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await?;
                        ok += 1;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            Ok::<_, anyhow::Error>((ok, errors, lat))
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut phase = Phase {
        requests: 0,
        errors: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (ok, errors, lat) = t.await??;
        phase.requests += ok;
        phase.errors += errors;
        phase.latencies_us.extend(lat);
    }
    phase.seconds = started.elapsed().as_secs_f64();
    phase.latencies_us.sort_unstable();
    Ok(phase)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .map_or(Ok(10), |a| a.parse())
        .context("seconds")?;
    let connections: usize = args
        .next()
        .map_or(Ok(64), |a| a.parse())
        .context("connections")?;
    let limit: u32 = args.next().map_or(Ok(25), |a| a.parse()).context("limit")?;

    let dir = tempfile::tempdir()?;
    let settings = Settings {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_path_buf()),
        ..Settings::default()
    };
    // Demo mode without a simulator: no Twitch connections, only what is measured.
    let config = Config::from_settings(settings, Mode::Demo)?;
    let app = App::build(config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    state
        .store
        .upsert_streamer(&Streamer {
            id: "4242".into(),
            login: "favstreamer".into(),
            display_name: "Favstreamer".into(),
        })
        .await?;
    let events: Vec<NewEvent> = (0..200)
        .map(|i| {
            let feed = serde_json::json!({
                "kind": "channel.update", "visibility": "public",
                "text": format!("Title: “Day {i} of the grind” · Chess"),
                "source": {"subscription_type": "channel.update", "subscription_version": "2", "message_ids": [format!("m{i}")]},
                "raw": {"broadcaster_user_id": "4242", "title": format!("Day {i} of the grind"), "category_name": "Chess"},
            });
            NewEvent {
                id: uuid::Uuid::now_v7(),
                streamer_id: "4242".into(),
                kind: "channel.update".into(),
                occurred_at: Utc::now(),
                dedupe_keys: vec![format!("msg:m{i}")],
                payload: feed,
            }
        })
        .collect();
    state.events.ingest(events).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    println!("{connections} connections, {seconds} s per phase");
    let baseline = hammer(format!("{base}/healthz"), seconds, connections).await?;
    let history = hammer(
        format!("{base}/api/v1/streamers/favstreamer/events?limit={limit}"),
        seconds,
        connections,
    )
    .await?;
    println!("| endpoint | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    let history_name = format!("GET /api/v1/streamers/favstreamer/events?limit={limit}");
    for (name, p) in [
        ("GET /healthz (baseline)", &baseline),
        (history_name.as_str(), &history),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} |",
            p.rate(),
            p.percentile(0.5),
            p.percentile(0.99),
            p.errors
        );
    }
    println!(
        "history / baseline: {:.2}",
        history.rate() / baseline.rate()
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
