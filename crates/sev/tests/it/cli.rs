//! The `sev` binary as an operator meets it: start, answer, stop on SIGINT; bad configuration
//! refused with one line and exit code 2.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn sev() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sev"));
    // Start from a clean slate: no SEV_* settings leak in from the test environment.
    for (key, _) in std::env::vars() {
        if key.starts_with("SEV_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn demo_prints_its_url_answers_and_stops_on_sigint_within_5s() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = sev()
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await? {
            printed.push(line.clone());
            if let Some(url) = line.trim().strip_prefix("Open:") {
                return Ok::<_, anyhow::Error>(url.trim().to_owned());
            }
        }
        bail!("demo exited without printing its URL: {printed:?}")
    })
    .await
    .context("the demo prints its URL within 20 s")??;
    let port = url::Url::parse(&url)?.port().context("URL has the port")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = client.get(format!("{base}{path}")).send().await?;
        ensure!(res.status() == 200, "{path}: {}", res.status());
    }

    let pid = child.id().context("running")?;
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -INT");
    let exit = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .context("exits within 5 s of SIGINT")??;
    ensure!(
        exit.success(),
        "clean exit: {exit:?} after {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Runs `sev` with the given environment and arguments; it must refuse to start.
async fn refused(env: &[(&str, &str)], args: &[&str]) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let mut cmd = sev();
    cmd.current_dir(dir.path())
        .args(args)
        .envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output()).await??;
    let stderr = String::from_utf8(out.stderr)?;
    ensure!(
        out.status.code() == Some(2),
        "exit code 2, got {:?}; stderr: {stderr}",
        out.status
    );
    ensure!(stderr.trim().lines().count() == 1, "one line: {stderr:?}");
    ensure!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    Ok(stderr)
}

#[tokio::test]
async fn a_malformed_url_is_refused_naming_the_setting() -> Result<()> {
    let err = refused(
        &[("SEV_REDIS_URL", "::not a url::")],
        &["demo", "--listen", "127.0.0.1:0"],
    )
    .await?;
    ensure!(
        err.contains("redis_url") && err.contains("SEV_REDIS_URL"),
        "{err}"
    );
    let err = refused(&[("SEV_REDIS_URL", "::not a url::")], &[]).await?;
    ensure!(
        err.contains("SEV_REDIS_URL"),
        "a bare `sev` reads the environment too: {err}"
    );
    let err = refused(&[], &["demo", "--public-url", "not a url"]).await?;
    ensure!(err.contains("public_url"), "{err}");
    Ok(())
}

#[tokio::test]
async fn contradictions_and_missing_settings_are_refused() -> Result<()> {
    let err = refused(
        &[
            ("SEV_TWITCH_CLIENT_ID", "abc"),
            ("SEV_TWITCH_CLIENT_SECRET", "def"),
        ],
        &[
            "serve",
            "--eventsub-transport",
            "webhook",
            "--public-url",
            "http://sev.example",
        ],
    )
    .await?;
    ensure!(
        err.contains("eventsub_transport") && err.contains("https"),
        "{err}"
    );
    let err = refused(&[], &["serve"]).await?;
    ensure!(err.contains("twitch_client_id"), "{err}");
    let err = refused(&[], &["demo", "--listen", "localhost"]).await?;
    ensure!(err.contains("listen"), "{err}");
    Ok(())
}

#[tokio::test]
async fn unknown_settings_are_refused_not_ignored() -> Result<()> {
    let err = refused(&[("SEV_LISTEN_PORT", "8080")], &["demo"]).await?;
    ensure!(err.contains("SEV_LISTEN_PORT"), "{err}");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("sev.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nredis = \"redis://x\"\n")?;
    let path = file.to_string_lossy().into_owned();
    let err = refused(&[], &["demo", "--config", &path]).await?;
    ensure!(err.contains("redis") && err.contains("sev.toml"), "{err}");
    Ok(())
}

#[tokio::test]
async fn help_documents_every_command_and_its_environment_variables() -> Result<()> {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["serve", "--help"],
        vec!["sim", "--help"],
    ] {
        let out = sev().args(&args).output().await?;
        ensure!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout)?;
        ensure!(!text.is_empty(), "{args:?}");
        if args[0] == "serve" {
            for needle in [
                "--listen",
                "SEV_LISTEN",
                "--database-url",
                "--redis-url",
                "--config",
                "--log-format",
                "--twitch-helix-url",
            ] {
                ensure!(text.contains(needle), "serve --help lacks {needle}");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn sim_runs_alone_and_trigger_injects_into_it() -> Result<()> {
    let mut sim = sev()
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = sim.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("Twitch simulator listening on ") {
                return Ok::<_, anyhow::Error>(url.trim().to_owned());
            }
        }
        bail!("sev sim exited without printing its URL")
    })
    .await??;
    let out = sev()
        .args([
            "trigger",
            "channel.raid",
            "-b",
            "favstreamer",
            "-u",
            "speedrunsam",
            "-C",
            "321",
            "--sim",
            &url,
        ])
        .output()
        .await?;
    let stdout = String::from_utf8(out.stdout)?;
    ensure!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        stdout.contains("\"viewers\": 321") && stdout.contains("delivered to 0 subscription(s)"),
        "{stdout}"
    );
    let bad = sev()
        .args(["trigger", "channel.nonsense", "--sim", &url])
        .output()
        .await?;
    ensure!(!bad.status.success(), "an unknown type is refused");
    ensure!(
        String::from_utf8(bad.stderr)?.contains("cannot build an event"),
        "with the simulator's reason"
    );
    sim.kill().await?;
    Ok(())
}
