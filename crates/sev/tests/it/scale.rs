//! Scale-out: three `sev serve` processes on one PostgreSQL and one Redis, behind HAProxy.
//! Events injected into the simulator reach viewers on every instance; the instance holding
//! the subscription reconciler is killed (SIGKILL) mid-stream; its leased work moves to the
//! others, and every viewer ends with exactly the log's events, once each, in order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use serde_json::Value;
use sqlx::Connection;
use tokio::process::{Child, Command};

use crate::crash::{sev, start, subscriptions, trigger};
use crate::helpers::{Ws, drop_postgres, eventually, fresh_postgres, redis_url};

const INSTANCES: usize = 3;
const EVENTS_BEFORE: usize = 10;
const EVENTS_DURING: usize = 10;

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Instance {
    child: Child,
    url: String,
    /// Its lease holder id (the `instance-id` file in its data dir).
    holder: String,
    _data: tempfile::TempDir,
}

async fn instance(sim: &str, db: &str, public: &str) -> Result<Instance> {
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let mut cmd = sev();
    cmd.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data.path())
        .env("SEV_PUBLIC_URL", public)
        .env("SEV_DATABASE_URL", db)
        .env("SEV_REDIS_URL", redis_url())
        .env("SEV_CONDUIT_SHARDS", INSTANCES.to_string())
        .env(
            "SEV_TOKEN_KEY",
            "a shared token key of at least thirty-two chars",
        )
        .env("SEV_EVENTSUB_SECRET", "a-shared-eventsub-secret")
        .env("SEV_TWITCH_CLIENT_ID", "sevdemoclient00000000000000000")
        .env(
            "SEV_TWITCH_CLIENT_SECRET",
            "sevdemosecret0000000000000000000",
        )
        .env("SEV_TWITCH_AUTH_URL", format!("{sim}/oauth2"))
        .env("SEV_TWITCH_HELIX_URL", format!("{sim}/helix"))
        .env(
            "SEV_TWITCH_EVENTSUB_WS_URL",
            format!("{}/ws", sim.replacen("http", "ws", 1)),
        );
    let (child, _) = start(cmd, "sev is listening").await?;
    let url = format!("http://127.0.0.1:{port}");
    let holder_file = data.path().join("instance-id");
    // Written when the instance starts its workers, just after it listens.
    eventually("the instance id", || async {
        Ok(std::fs::read_to_string(&holder_file).is_ok_and(|h| !h.trim().is_empty()))
    })
    .await?;
    let holder = std::fs::read_to_string(&holder_file)?.trim().to_owned();
    Ok(Instance {
        child,
        url,
        holder,
        _data: data,
    })
}

async fn haproxy(port: u16, backends: &[&Instance]) -> Result<(Child, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "    server sev{i} {} check inter 300ms fall 1 rise 1\n",
                b.url.trim_start_matches("http://")
            )
        })
        .collect();
    let cfg = format!(
        "global\n    maxconn 1000\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    \
         timeout server 60s\n    timeout tunnel 1h\nfrontend viewers\n    bind 127.0.0.1:{port}\n    \
         default_backend sev\nbackend sev\n    balance roundrobin\n    option httpchk GET /readyz\n{servers}"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg)?;
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting haproxy (scripts/test installs it)")?;
    Ok((child, dir))
}

/// Who holds each unexpired lease, by lease name.
async fn leases(db: &str) -> Result<HashMap<String, String>> {
    let mut conn = sqlx::PgConnection::connect(db).await?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("select name, holder from leases where expires_at > now()")
            .fetch_all(&mut conn)
            .await?;
    conn.close().await?;
    Ok(rows.into_iter().collect())
}

/// A viewer of favstreamer: reconnects through the load balancer with its cursor whenever its
/// socket ends, as the page does.
struct Viewer {
    ws: Ws,
    cursor: i64,
    titles: Vec<String>,
    reconnects: usize,
}

async fn open(base: &str, after: i64) -> Result<Ws> {
    let url = format!(
        "{}/api/v1/streamers/favstreamer/live?after={after}",
        base.replacen("http", "ws", 1)
    );
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

impl Viewer {
    async fn new(base: &str) -> Result<Self> {
        Ok(Self {
            ws: open(base, 0).await?,
            cursor: 0,
            titles: Vec::new(),
            reconnects: 0,
        })
    }

    /// Reads until it has seen `n` events.
    async fn until(&mut self, n: usize, lb: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.titles.len() < n {
            ensure!(
                Instant::now() < deadline,
                "{} of {n} events: {:?}",
                self.titles.len(),
                self.titles
            );
            let msg = tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await;
            let text = match msg {
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => t,
                Ok(Some(Ok(_))) | Err(_) => continue,
                Ok(Some(Err(_)) | None) => {
                    // The instance went away: back through the balancer, from our cursor.
                    self.reconnects += 1;
                    self.ws = open(lb, self.cursor).await?;
                    continue;
                }
            };
            let m: Value = serde_json::from_str(text.as_str())?;
            if m["type"] == "event" {
                let seq = m["event"]["seq"].as_i64().context("seq")?;
                ensure!(
                    seq > self.cursor,
                    "in order, once: {seq} after {}",
                    self.cursor
                );
                self.cursor = seq;
                self.titles.push(
                    m["event"]["raw"]["title"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn three_instances_behind_haproxy_share_work_and_survive_a_kill() -> Result<()> {
    let (_sim_process, sim) = start(
        {
            let mut c = sev();
            c.args(["sim", "--listen", "127.0.0.1:0"]);
            c
        },
        "Twitch simulator listening on",
    )
    .await?;
    let (db, admin, name) = fresh_postgres().await?;
    let store = sev_store::connect(&db).await?;
    store
        .upsert_user(&sev_store::Streamer {
            id: "1001".into(),
            login: "viewer1".into(),
            display_name: "Viewer1".into(),
        })
        .await?;
    store.add_favorite("1001", "4242").await?;
    store.close().await;

    let lb_port = free_port()?;
    let lb = format!("http://127.0.0.1:{lb_port}");
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(instance(&sim, &db, &lb).await?);
    }
    let (_haproxy, _cfg) = haproxy(lb_port, &instances.iter().collect::<Vec<_>>()).await?;

    // The work spreads: every unit held, by every instance.
    let units = 3 + INSTANCES; // reconciler, chat, validation, and one shard per instance
    // Spreading takes a few renewal rounds: the first instance gives back what the later
    // ones take, one unit per round.
    let spread_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = leases(&db).await?;
        let mut per_holder: HashMap<&String, usize> = HashMap::new();
        for (n, h) in &l {
            if !n.starts_with("instance:") {
                *per_holder.entry(h).or_default() += 1;
            }
        }
        if per_holder.values().sum::<usize>() == units
            && per_holder.len() == INSTANCES
            && per_holder.values().all(|n| *n == units / INSTANCES)
        {
            break;
        }
        ensure!(
            Instant::now() < spread_deadline,
            "the work spreads evenly: {per_holder:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually("subscribed, with every shard attached", || async {
        let subs = subscriptions(&sim).await?;
        let v: Value = reqwest::get(format!("{sim}/_sim/sessions"))
            .await?
            .json()
            .await?;
        let attached = v["data"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|s| s["connected"] == true && s["used"] == true)
                .count()
        });
        Ok(subs.iter().filter(|s| s["status"] == "enabled").count() == 5 && attached == INSTANCES)
    })
    .await?;
    // The first events make the streamer known to every instance's API.
    trigger(&sim, "a-0").await?;
    eventually("the first event through the balancer", || async {
        let r = reqwest::get(format!("{lb}/api/v1/streamers/favstreamer/events")).await?;
        Ok(r.status() == 200)
    })
    .await?;

    // A viewer on each instance directly, and as many through the balancer.
    let mut viewers = Vec::new();
    for i in &instances {
        viewers.push(Viewer::new(&i.url).await?);
    }
    for _ in 0..INSTANCES {
        viewers.push(Viewer::new(&lb).await?);
    }
    for i in 1..EVENTS_BEFORE {
        trigger(&sim, &format!("a-{i}")).await?;
    }
    for v in &mut viewers {
        v.until(EVENTS_BEFORE, &lb).await?;
    }

    // Kill the instance holding the reconciler, mid-stream.
    let before = leases(&db).await?;
    let victim_holder = before.get("reconciler").context("a reconciler")?.clone();
    let moved: Vec<String> = before
        .iter()
        .filter(|(n, h)| **h == victim_holder && !n.starts_with("instance:"))
        .map(|(n, _)| n.clone())
        .collect();
    let victim = instances
        .iter()
        .position(|i| i.holder == victim_holder)
        .context("the victim")?;
    let killed_at = Instant::now();
    instances[victim].child.start_kill()?;
    instances[victim].child.wait().await?;
    for i in 0..EVENTS_DURING {
        trigger(&sim, &format!("b-{i}")).await?;
    }
    let moved_done = || async {
        let now = leases(&db).await?;
        Ok::<_, anyhow::Error>(
            moved
                .iter()
                .all(|n| now.get(n).is_some_and(|h| *h != victim_holder)),
        )
    };
    let mut moved_after = Duration::ZERO;
    while killed_at.elapsed() < Duration::from_secs(40) {
        if moved_done().await? {
            moved_after = killed_at.elapsed();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(
        !moved_after.is_zero(),
        "work held by the dead instance: {moved:?} did not move"
    );
    ensure!(
        moved_after < Duration::from_secs(30),
        "moved within 30 s: {moved_after:?}"
    );

    let total = EVENTS_BEFORE + EVENTS_DURING;
    for v in &mut viewers {
        v.until(total, &lb).await?;
    }
    let log: Value = reqwest::get(format!(
        "{lb}/api/v1/streamers/favstreamer/events?after=0&limit=500"
    ))
    .await?
    .json()
    .await?;
    let logged: Vec<String> = log["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["raw"]["title"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut sent: Vec<String> = (0..EVENTS_BEFORE).map(|i| format!("a-{i}")).collect();
    sent.extend((0..EVENTS_DURING).map(|i| format!("b-{i}")));
    let mut sorted = logged.clone();
    sorted.sort();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    ensure!(sorted == sent_sorted, "every event stored once: {logged:?}");
    for (i, v) in viewers.iter().enumerate() {
        ensure!(
            v.titles == logged,
            "viewer {i} saw the log, in order: {:?}",
            v.titles
        );
    }
    let reconnects: usize = viewers.iter().map(|v| v.reconnects).sum();
    let line = format!(
        "scale-out: {INSTANCES} instances behind HAProxy, {} viewers, {total} events, 1 instance killed, \
         its {} leases ({}) moved in {:.1} s, {reconnects} viewer reconnects, nothing lost or doubled",
        viewers.len(),
        moved.len(),
        moved.join(", "),
        moved_after.as_secs_f64()
    );
    println!("{line}");
    // scripts/test prints this after the suite, where a passing test's output is not shown.
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("scale-out.txt"), format!("{line}\n"));
    for i in &mut instances {
        let _ = i.child.start_kill();
    }
    drop_postgres(&admin, &name).await?;
    if moved.is_empty() {
        bail!("the victim held no work");
    }
    Ok(())
}
