//! Losing the database or Redis during a stream. A cuttable TCP proxy stands between the app
//! and the real server, so an outage disturbs no other test: cutting it drops every open
//! connection and refuses new ones until it is restored, as a restarting server does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::eventsub::{SECRET, online, post};
use crate::helpers::{
    TestApp, connect, drop_postgres, eventually, fresh_postgres, next, redis_url, spawn_app_with,
    until_ready,
};

struct Cuttable {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Cuttable {
    async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the server is "down"
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                if let Ok(mut o) = open2.lock() {
                    o.push(task.abort_handle());
                }
            }
        })
        .abort_handle();
        Ok(Self {
            addr,
            up,
            open,
            accept,
        })
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut o) = self.open.lock() {
            for t in o.drain(..) {
                t.abort();
            }
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `url` with its host and port replaced by the proxy's.
fn through(url: &str, proxy: &Cuttable) -> Result<String> {
    let mut u = url::Url::parse(url)?;
    u.set_host(Some("127.0.0.1"))?;
    u.set_port(Some(proxy.addr.port()))
        .map_err(|()| anyhow::anyhow!("no port in {url}"))?;
    Ok(u.to_string())
}

fn upstream(url: &str, default_port: u16) -> Result<SocketAddr> {
    let u = url::Url::parse(url)?;
    let host = u.host_str().context("host")?;
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    Ok(format!("{host}:{}", u.port().unwrap_or(default_port)).parse()?)
}

async fn ready(app: &TestApp) -> Result<(u16, Value)> {
    let res = app.get("/readyz").await?;
    Ok((res.status().as_u16(), res.json().await?))
}

async fn stored_ids(app: &TestApp) -> Result<Vec<String>> {
    let v: Value = app
        .get("/api/v1/streamers/favstreamer/events?after=0&limit=500")
        .await?
        .json()
        .await?;
    Ok(v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["raw"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn losing_postgres_answers_5xx_and_keeps_everything_it_acknowledged() -> Result<()> {
    let (db_url, admin, name) = fresh_postgres().await?;
    let proxy = Cuttable::start(upstream(&db_url, 5432)?).await?;
    let proxied = through(&db_url, &proxy)?;
    let app = spawn_app_with(|s| sev::config::Settings {
        eventsub_secret: Some(SECRET.into()),
        database_url: Some(proxied),
        ..s
    })
    .await?;
    let res = post(
        &app,
        "m-1",
        "notification",
        &online("e1"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(res.status() == 204);

    proxy.cut();
    let res = post(
        &app,
        "m-2",
        "notification",
        &online("e2"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(
        res.status() == 503,
        "not acknowledged while it cannot be kept: {}",
        res.status()
    );
    let (code, body) = ready(&app).await?;
    ensure!(
        code == 503 && body["store"]["status"] != "ok",
        "readiness says so: {body}"
    );

    proxy.restore();
    // Twitch retries the unacknowledged message with the same id.
    eventually("the retry is stored", || async {
        let res = post(
            &app,
            "m-2",
            "notification",
            &online("e2"),
            SECRET,
            Utc::now(),
        )
        .await?;
        Ok(res.status() == 204)
    })
    .await?;
    let res = post(
        &app,
        "m-2",
        "notification",
        &online("e2"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(
        res.status() == 204,
        "a further retry is a duplicate, acknowledged"
    );
    ensure!(ready(&app).await?.0 == 200);
    ensure!(
        stored_ids(&app).await? == ["e1", "e2"],
        "each once, in order"
    );
    app.stop().await?;
    drop_postgres(&admin, &name).await
}

#[tokio::test]
async fn losing_redis_loses_no_acknowledged_event() -> Result<()> {
    let redis = redis_url();
    let proxy = Cuttable::start(upstream(&redis, 6379)?).await?;
    let proxied = through(&redis, &proxy)?;
    let app = spawn_app_with(|s| sev::config::Settings {
        eventsub_secret: Some(SECRET.into()),
        redis_url: Some(proxied),
        ..s
    })
    .await?;
    let res = post(
        &app,
        "r-1",
        "notification",
        &online("e1"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(res.status() == 204);
    let mut viewer = connect(&app, Some(0)).await?;
    ensure!(until_ready(&mut viewer).await?.len() == 1);

    proxy.cut();
    let res = post(
        &app,
        "r-2",
        "notification",
        &online("e2"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(
        res.status() == 204,
        "stored, so acknowledged: {}",
        res.status()
    );
    eventually("readiness reports the bus", || async {
        let (code, body) = ready(&app).await?;
        Ok(code == 503 && body["bus"]["status"] != "ok")
    })
    .await?;

    proxy.restore();
    // Back: the viewer is resynced from the store, then live events flow again.
    let m = next(&mut viewer).await?;
    ensure!(
        m["event"]["raw"]["id"] == "e2",
        "the event from the outage: {m}"
    );
    eventually("the bus is back", || async {
        Ok(ready(&app).await?.0 == 200)
    })
    .await?;
    let res = post(
        &app,
        "r-3",
        "notification",
        &online("e3"),
        SECRET,
        Utc::now(),
    )
    .await?;
    ensure!(res.status() == 204);
    let m = next(&mut viewer).await?;
    ensure!(m["event"]["raw"]["id"] == "e3", "live again: {m}");
    ensure!(stored_ids(&app).await? == ["e1", "e2", "e3"]);
    app.stop().await
}
