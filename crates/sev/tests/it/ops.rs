//! The operator endpoints and graceful shutdown, in process.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::Value;

use crate::helpers::{drop_postgres, fresh_postgres, redis_url, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_and_readyz_reports_the_backends() -> Result<()> {
    let app = spawn_app().await?;
    let health = app.get("/healthz").await?;
    ensure!(health.status() == 200);
    let ready = app.get("/readyz").await?;
    ensure!(ready.status() == 200, "ready: {}", ready.status());
    let body: Value = ready.json().await?;
    ensure!(
        body["store"]["backend"] == "sqlite" && body["store"]["status"] == "ok",
        "{body}"
    );
    ensure!(
        body["bus"]["backend"] == "memory" && body["bus"]["status"] == "ok",
        "{body}"
    );
    app.stop().await
}

#[tokio::test]
async fn readyz_is_503_when_the_store_is_gone() -> Result<()> {
    let app = spawn_app().await?;
    app.state.store.close().await;
    let ready = app.get("/readyz").await?;
    ensure!(ready.status() == 503, "status {}", ready.status());
    let body: Value = ready.json().await?;
    ensure!(
        body["status"] == "unavailable" && body["store"]["status"] != "ok",
        "{body}"
    );
    ensure!(
        app.get("/healthz").await?.status() == 200,
        "alive all the same"
    );
    app.stop().await
}

#[tokio::test]
async fn runs_on_postgres_and_redis_when_configured() -> Result<()> {
    let (db_url, admin, name) = fresh_postgres().await?;
    let app = spawn_app_with(|s| sev::config::Settings {
        database_url: Some(db_url),
        redis_url: Some(redis_url()),
        ..s
    })
    .await?;
    let body: Value = app.get("/readyz").await?.json().await?;
    ensure!(body["status"] == "ready", "{body}");
    ensure!(
        body["store"]["backend"] == "postgres" && body["bus"]["backend"] == "redis",
        "{body}"
    );
    app.stop().await?;
    drop_postgres(&admin, &name).await
}

#[tokio::test]
async fn metrics_count_requests_and_connections() -> Result<()> {
    let app = spawn_app().await?;
    for _ in 0..3 {
        app.get("/healthz").await?;
    }
    app.get("/no-such-page").await?;
    let res = app.get("/metrics").await?;
    ensure!(res.status() == 200);
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let text = res.text().await?;
    ensure!(
        text.contains(r#"sev_http_requests_total{method="GET",route="/healthz",status="200"} 3"#),
        "{text}"
    );
    ensure!(
        text.contains(r#"sev_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    // The client keeps its connection alive: at least this one is open, and it was counted.
    let open = metric(&text, "sev_connections_open").unwrap_or_default();
    let total = metric(&text, "sev_connections_total").unwrap_or_default();
    ensure!(open >= 1.0 && total >= 1.0, "open {open}, total {total}");
    ensure!(text.trim_end().ends_with("# EOF"));
    app.stop().await
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes_quickly() -> Result<()> {
    let app = spawn_app().await?;
    // An idle keep-alive connection must not hold the shutdown up.
    app.get("/healthz").await?;
    let url = app.url.clone();
    let started = Instant::now();
    app.stop().await?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let after = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .send()
        .await;
    ensure!(after.is_err(), "nothing listens after shutdown");
    Ok(())
}
