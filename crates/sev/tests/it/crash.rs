//! sev killed with SIGKILL mid-stream and started again on the same data: every event it had
//! stored is still there, once; the viewer resumes from its cursor with exactly what it missed;
//! the shared subscriptions are adopted, not duplicated; new events flow.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::eventually;

pub fn sev() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sev"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SEV_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null())
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts a process and waits for the line that starts with `prefix`; returns what follows.
pub async fn start(mut cmd: Command, prefix: &str) -> Result<(Child, String)> {
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok::<_, anyhow::Error>(rest.trim().to_owned());
            }
        }
        bail!("exited before printing {prefix:?}")
    })
    .await??;
    // Keep draining stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, rest))
}

async fn serve(sim: &str, data: &std::path::Path) -> Result<(Child, String)> {
    let mut cmd = sev();
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
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
    let (child, url) = start(cmd, "sev is listening: open").await?;
    let port = url::Url::parse(&url)?.port().context("port")?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

pub async fn trigger(sim: &str, title: &str) -> Result<()> {
    let res = reqwest::Client::new()
        .post(format!("{sim}/_sim/trigger"))
        .json(&json!({"type": "channel.update", "broadcaster": "favstreamer", "title": title}))
        .send()
        .await?;
    ensure!(res.status().is_success());
    Ok(())
}

async fn history(app: &str) -> Result<Vec<(i64, String)>> {
    let res = reqwest::get(format!(
        "{app}/api/v1/streamers/favstreamer/events?after=0&limit=500"
    ))
    .await?;
    if res.status() == 404 {
        return Ok(Vec::new());
    }
    let page: Value = res.json().await?;
    Ok(page["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["seq"].as_i64().unwrap_or(0),
                        e["raw"]["title"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

pub async fn subscriptions(sim: &str) -> Result<Vec<Value>> {
    let v: Value = reqwest::get(format!("{sim}/_sim/subscriptions"))
        .await?
        .json()
        .await?;
    Ok(v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d["subscription"].clone())
                // The channel subscriptions: the app's own one is not what these tests count.
                .filter(|s| s["type"] != "user.authorization.revoke")
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn killed_mid_stream_and_restarted_nothing_stored_is_lost_or_doubled() -> Result<()> {
    let (_sim_process, sim) = start(
        {
            let mut c = sev();
            c.args(["sim", "--listen", "127.0.0.1:0"]);
            c
        },
        "Twitch simulator listening on",
    )
    .await?;
    let data = tempfile::tempdir()?;
    // A fan of favstreamer, as the web app would have recorded them.
    let store = sev_store::connect(&format!(
        "sqlite://{}",
        data.path().join("sev.db").display()
    ))
    .await?;
    store
        .upsert_user(&sev_store::Streamer {
            id: "1001".into(),
            login: "viewer1".into(),
            display_name: "Viewer1".into(),
        })
        .await?;
    store.add_favorite("1001", "4242").await?;
    store.close().await;

    let (mut first, app) = serve(&sim, data.path()).await?;
    eventually("subscribed", || async {
        Ok(subscriptions(&sim)
            .await?
            .iter()
            .filter(|s| s["status"] == "enabled")
            .count()
            == 5)
    })
    .await?;
    eventually("the shard attached", || async {
        let v: Value = reqwest::get(format!("{sim}/_sim/sessions"))
            .await?
            .json()
            .await?;
        Ok(v["data"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["connected"] == true && s["used"] == true)
        }))
    })
    .await?;
    for i in 0..5 {
        trigger(&sim, &format!("before-{i}")).await?;
    }
    eventually("five events stored", || async {
        Ok(history(&app).await?.len() == 5)
    })
    .await?;
    let mut viewer_cursor = 0;
    let seen_before = history(&app).await?;
    if let Some((seq, _)) = seen_before.last() {
        viewer_cursor = *seq;
    }

    // Mid-stream: more events, and the process is killed without warning.
    for i in 0..5 {
        trigger(&sim, &format!("during-{i}")).await?;
    }
    first.start_kill()?;
    first.wait().await?;
    let stored_at_crash = {
        let store = sev_store::connect(&format!(
            "sqlite://{}",
            data.path().join("sev.db").display()
        ))
        .await?;
        let page = store.events_after("4242", 0, 500).await?;
        store.close().await;
        page.events.len()
    };
    ensure!(
        stored_at_crash >= 5,
        "what was stored before the kill is durable"
    );

    let (_second, app) = serve(&sim, data.path()).await?;
    eventually("the shard re-attached", || async {
        let v: Value = reqwest::get(format!("{sim}/_sim/sessions"))
            .await?
            .json()
            .await?;
        Ok(v["data"].as_array().is_some_and(|a| {
            a.iter()
                .filter(|s| s["connected"] == true && s["used"] == true)
                .count()
                == 1
        }))
    })
    .await?;
    for i in 0..5 {
        trigger(&sim, &format!("after-{i}")).await?;
    }
    eventually("the new events stored", || async {
        Ok(history(&app).await?.len() == stored_at_crash + 5)
    })
    .await?;

    let all = history(&app).await?;
    let seqs: Vec<i64> = all.iter().map(|(s, _)| *s).collect();
    ensure!(
        seqs == (1..=all.len() as i64).collect::<Vec<_>>(),
        "dense cursors, nothing doubled: {all:?}"
    );
    let mut titles: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    ensure!(titles.len() == all.len(), "each event once: {all:?}");
    ensure!(
        all.iter().take(5).map(|(_, t)| t.as_str()).eq((0..5)
            .map(|i| format!("before-{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str))
    );
    ensure!(
        all.iter()
            .rev()
            .take(5)
            .all(|(_, t)| t.starts_with("after-"))
    );
    ensure!(
        subscriptions(&sim).await?.len() == 5,
        "adopted at restart, not duplicated"
    );

    // The viewer comes back with its cursor: exactly what it missed, then live.
    let mut ws = tokio_tungstenite::connect_async(format!(
        "{}/api/v1/streamers/favstreamer/live?after={viewer_cursor}",
        app.replacen("http", "ws", 1)
    ))
    .await?
    .0;
    let mut missed = Vec::new();
    loop {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await?
            .context("open")??;
        let v: Value = serde_json::from_str(msg.to_text()?)?;
        match v["type"].as_str() {
            Some("event") => missed.push(v["event"]["seq"].as_i64().context("seq")?),
            Some("ready") => break,
            other => bail!("unexpected {other:?}"),
        }
    }
    ensure!(
        missed == ((viewer_cursor + 1)..=all.len() as i64).collect::<Vec<_>>(),
        "{missed:?}"
    );
    Ok(())
}
