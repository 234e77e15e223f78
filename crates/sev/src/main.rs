use std::process::ExitCode;

use clap::Parser;
use sev::cli::{Cli, Command, DemoArgs};
use sev::config::{Config, ConfigError, LogFormat, Mode};
use sev::startup::{App, shutdown_signal};

fn main() -> ExitCode {
    // A bare `sev` is `sev demo`, with the demo's flags and SEV_* variables read as usual.
    let command = match Cli::parse().command {
        Some(command) => command,
        None => Cli::parse_from(["sev", "demo"])
            .command
            .unwrap_or_else(|| Command::Demo(DemoArgs::default())),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sev: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(command));
    // Don't wait for stray blocking tasks (e.g. a stdin read) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("sev: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            tracing::error!(error = format!("{e:#}"), "sev failed");
            eprintln!("sev: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(ConfigError),
    Run(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Run(e)
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Demo(args) => {
            let (config, sim) = sev::demo::load(&args)?;
            sev::telemetry::init(config.log_format);
            sev::demo::run(config, sim).await?;
        }
        Command::Serve(args) => {
            let config = Config::load(args.settings, args.config.as_deref(), Mode::Serve)?;
            sev::telemetry::init(config.log_format);
            let signal = shutdown_signal();
            let app = App::build(config).await?;
            println!("sev is listening: open {}", app.public_url());
            tracing::info!(url = %app.public_url(), "sev started");
            app.run_until_stopped(signal).await?;
        }
        Command::Sim(args) => {
            let addr = sev::demo::parse_addr("sim_listen", &args.listen)?;
            sev::telemetry::init(LogFormat::Pretty);
            let sim_config = sev_sim::SimConfig {
                seed: args.seed,
                events_per_minute: args.events_per_minute,
                ..sev_sim::SimConfig::default()
            };
            let signal = shutdown_signal();
            let sim = sev_sim::Sim::bind(addr, sim_config)
                .await
                .map_err(|e| anyhow::anyhow!("starting the simulator on {addr}: {e}"))?;
            let url = sim.url().map_err(anyhow::Error::from)?;
            println!("Twitch simulator listening on {url}");
            println!("  client id:     {}", sim.config().client_id);
            println!("  client secret: {}", sim.config().client_secret);
            println!(
                "  OAuth: {url}/oauth2   Helix: {url}/helix   EventSub WebSocket: ws://{}/ws",
                sim.local_addr().map_err(anyhow::Error::from)?
            );
            println!(
                "  Control API: {url}/_sim (inject events with `sev trigger TYPE --sim {url}`)"
            );
            sim.run(signal).await.map_err(anyhow::Error::from)?;
        }
        Command::Trigger(args) => sev::trigger::run(args).await?,
    }
    Ok(())
}
