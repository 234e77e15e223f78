//! `sev demo`: the app and a built-in Twitch simulator in one process, on embedded defaults.

use std::net::SocketAddr;

use anyhow::Context;
use secrecy::SecretString;
use sev_sim::{Sim, SimConfig};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::cli::DemoArgs;
use crate::config::{Config, ConfigError, Mode, Settings};
use crate::startup::{App, shutdown_signal};

/// Parses an address setting into the one-line error every setting uses.
pub fn parse_addr(name: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError {
        name,
        env: format!("SEV_{}", name.to_ascii_uppercase()),
        problem: format!("{value:?} is not an address like 127.0.0.1:8080"),
    })
}

/// Refuses Twitch settings: the demo's Twitch is its simulator (use `sev serve` otherwise).
fn reject_twitch_settings(s: &Settings) -> Result<(), ConfigError> {
    let given = [
        ("twitch_client_id", s.twitch_client_id.is_some()),
        ("twitch_client_secret", s.twitch_client_secret.is_some()),
        ("twitch_auth_url", s.twitch_auth_url.is_some()),
        ("twitch_helix_url", s.twitch_helix_url.is_some()),
        (
            "twitch_eventsub_subscriptions_url",
            s.twitch_eventsub_subscriptions_url.is_some(),
        ),
        ("twitch_eventsub_ws_url", s.twitch_eventsub_ws_url.is_some()),
        ("twitch_player_url", s.twitch_player_url.is_some()),
        ("twitch_chat_url", s.twitch_chat_url.is_some()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(ConfigError {
            name,
            env: format!("SEV_{}", name.to_ascii_uppercase()),
            problem:
                "`sev demo` uses its built-in simulator; use `sev serve` to talk to another Twitch"
                    .into(),
        }),
        None => Ok(()),
    }
}

/// Points the config's Twitch at the simulator.
pub fn use_simulator(
    config: &mut Config,
    sim_addr: SocketAddr,
    sim: &SimConfig,
) -> anyhow::Result<()> {
    let base = Url::parse(&format!("http://{sim_addr}"))?;
    config.twitch.client_id = sim.client_id.clone();
    config.twitch.client_secret = SecretString::from(sim.client_secret.clone());
    config.twitch.auth_url = crate::config::join(&base, "oauth2");
    config.twitch.helix_url = crate::config::join(&base, "helix");
    config.twitch.eventsub_subscriptions_url =
        crate::config::join(&base, "helix/eventsub/subscriptions");
    config.twitch.eventsub_ws_url = Url::parse(&format!("ws://{sim_addr}/ws"))?;
    // The simulator's stand-in embeds: real ones would need the internet.
    config.twitch.player_url = crate::config::join(&base, "embed/player");
    config.twitch.chat_url = crate::config::join(&base, "embed");
    Ok(())
}

/// Loads and checks the demo's configuration (exit code 2 territory on error).
pub fn load(args: &DemoArgs) -> Result<(Config, SimOptions), ConfigError> {
    reject_twitch_settings(&args.serve.settings)?;
    let addr = parse_addr(
        "sim_listen",
        args.sim_listen.as_deref().unwrap_or("127.0.0.1:0"),
    )?;
    let config = Config::load(
        args.serve.settings.clone(),
        args.serve.config.as_deref(),
        Mode::Demo,
    )?;
    Ok((
        config,
        SimOptions {
            addr,
            events_per_minute: args.sim_events_per_minute.unwrap_or(DEMO_EVENTS_PER_MINUTE),
        },
    ))
}

/// Busy enough that a picked channel shows public events (going live, title changes, raids:
/// about a sixth of what the world produces, spread over eight channels) within a minute.
pub const DEMO_EVENTS_PER_MINUTE: u32 = 240;

/// The demo's simulator settings.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    pub addr: SocketAddr,
    pub events_per_minute: u32,
}

pub async fn run(mut config: Config, options: SimOptions) -> anyhow::Result<()> {
    let signal = shutdown_signal();
    let sim_config = SimConfig {
        events_per_minute: options.events_per_minute,
        ..SimConfig::default()
    };
    let sim = Sim::bind(options.addr, sim_config.clone())
        .await
        .with_context(|| format!("starting the simulator on {}", options.addr))?;
    let sim_addr = sim.local_addr()?;
    use_simulator(&mut config, sim_addr, &sim_config)?;
    let app = App::build(config).await?;

    println!("sev demo is running.");
    println!("  Open:      {}", app.public_url());
    println!("  Simulator: http://{sim_addr}  (Twitch as sev sees it in this demo)");
    println!("Press Ctrl-C to stop.");
    tracing::info!(url = %app.public_url(), simulator = %format!("http://{sim_addr}"), "sev demo started");

    let stop = CancellationToken::new();
    let sim_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let res = sim.run(stop.clone().cancelled_owned()).await;
            if !stop.is_cancelled() {
                tracing::error!(result = ?res, "the simulator stopped; stopping the demo");
                stop.cancel();
            }
            res
        })
    };
    let app_stop = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = signal => {}
                () = stop.cancelled() => {}
            }
        }
    };
    let result = app.run_until_stopped(app_stop).await;
    stop.cancel();
    match tokio::time::timeout(std::time::Duration::from_millis(500), sim_task).await {
        Ok(Ok(Ok(()))) | Err(_) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "simulator stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "simulator task failed"),
    }
    result
}
