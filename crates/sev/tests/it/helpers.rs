//! `spawn_app()`: the real app on port 0, with its own data dir, stopped at the end of the test.

use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde_json::Value;
use sev::config::{Config, Mode, Settings};
use sev::startup::App;
use sev::state::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Settings every test app starts from: port 0, a temporary data dir, the demo's Twitch mode
/// (no credentials needed for what these tests reach).
pub fn settings(dir: &tempfile::TempDir) -> Settings {
    Settings {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_path_buf()),
        ..Settings::default()
    }
}

pub async fn spawn_app() -> Result<TestApp> {
    spawn_app_with(|s| s).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(Settings) -> Settings) -> Result<TestApp> {
    let dir = tempfile::tempdir()?;
    let config = Config::from_settings(adjust(settings(&dir)), Mode::Demo)?;
    launch(config, dir).await
}

/// The app and a simulator of its own, wired as `sev demo` wires them.
pub async fn spawn_app_with_sim(sim_config: sev_sim::SimConfig) -> Result<(TestApp, Sim)> {
    let dir = tempfile::tempdir()?;
    let sim = sev_sim::Sim::bind("127.0.0.1:0".parse()?, sim_config.clone()).await?;
    let addr = sim.local_addr()?;
    let handle = sim.handle();
    tokio::spawn(sim.run(std::future::pending()));
    let mut config = Config::from_settings(settings(&dir), Mode::Demo)?;
    sev::demo::use_simulator(&mut config, addr, &sim_config)?;
    let app = launch(config, dir).await?;
    Ok((
        app,
        Sim {
            base: url::Url::parse(&format!("http://{addr}"))?,
            handle,
        },
    ))
}

/// A simulator started for a test.
pub struct Sim {
    pub base: url::Url,
    pub handle: sev_sim::SimHandle,
}

impl Sim {
    /// The channel subscriptions: everything but the app's own `user.authorization.revoke`.
    pub async fn subscriptions(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .all_subscriptions()
            .await?
            .into_iter()
            .filter(|s| s["type"] != "user.authorization.revoke")
            .collect())
    }

    pub async fn all_subscriptions(&self) -> Result<Vec<serde_json::Value>> {
        let v: serde_json::Value = reqwest::get(self.base.join("/_sim/subscriptions")?)
            .await?
            .json()
            .await?;
        Ok(v["data"]
            .as_array()
            .map(|a| a.iter().map(|d| d["subscription"].clone()).collect())
            .unwrap_or_default())
    }

    pub fn trigger(&self, t: serde_json::Value) -> Result<serde_json::Value> {
        let t: sev_sim::Trigger = serde_json::from_value(t)?;
        self.handle
            .trigger(&t)
            .map(|(e, _)| e)
            .map_err(anyhow::Error::msg)
    }
}

/// Polls until `f` holds: for truly asynchronous effects (a subscription created, an event
/// delivered by another process's connection).
pub async fn eventually<F, Fut>(what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if f().await? {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn launch(config: Config, dir: tempfile::TempDir) -> Result<TestApp> {
    let app = App::build(config).await?;
    let url = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Ok(TestApp {
        url,
        state,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    })
}

impl TestApp {
    pub async fn get(&self, path: &str) -> Result<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .with_context(|| format!("GET {path}"))
    }

    /// Starts a graceful shutdown; returns how the app's run ended.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(6), task)
                .await
                .context("the app stops within 6 s")??,
            None => Ok(()),
        }
    }
}

/// A PostgreSQL database of the test's own (dropped by [`drop_postgres`]).
pub async fn fresh_postgres() -> Result<(String, String, String)> {
    use sqlx::Connection;
    let admin = std::env::var("SEV_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("sev_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .with_context(|| format!("PostgreSQL at {admin} (set SEV_TEST_POSTGRES_URL)"))?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&name);
    Ok((url.to_string(), admin, name))
}

pub async fn drop_postgres(admin: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

pub fn redis_url() -> String {
    std::env::var("SEV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp, after: Option<i64>) -> Result<Ws> {
    let q = after.map(|a| format!("?after={a}")).unwrap_or_default();
    let url = format!(
        "{}/api/v1/streamers/favstreamer/live{q}",
        app.url.replacen("http", "ws", 1)
    );
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

pub async fn next(ws: &mut Ws) -> Result<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("a message within 10 s")?
            .context("open")??;
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return Ok(serde_json::from_str(t.as_str())?);
        }
    }
}

/// Reads until `ready`, returning the events' cursors.
pub async fn until_ready(ws: &mut Ws) -> Result<Vec<i64>> {
    let mut seen = Vec::new();
    loop {
        let m = next(ws).await?;
        match m["type"].as_str() {
            Some("event") => seen.push(m["event"]["seq"].as_i64().context("seq")?),
            Some("ready") => return Ok(seen),
            _ => anyhow::bail!("unexpected {m}"),
        }
    }
}
