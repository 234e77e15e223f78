//! The `sev` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

/// sev, the Streamer Event Viewer: a Twitch streamer's live player, chat and a live,
/// human-readable feed of the channel's events, on one page.
///
/// Every setting can also be given as a `SEV_*` environment variable (shown with each flag)
/// or as a key of the same name in the --config TOML file. Flags win over the environment,
/// which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "sev", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run sev with a built-in Twitch simulator: no configuration needed (the default command)
    Demo(DemoArgs),
    /// Run sev against the Twitch configured: real Twitch, or a simulator elsewhere
    Serve(ServeArgs),
    /// Run the Twitch simulator alone, for sev instances or any other Twitch app
    Sim(SimArgs),
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML file with settings (keys as the flags, with underscores)
    #[arg(long, env = "SEV_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Default, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Address of the built-in Twitch simulator [default: 127.0.0.1:0, any free port]
    #[arg(long, env = "SEV_SIM_LISTEN", value_name = "ADDR")]
    pub sim_listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on
    #[arg(
        long,
        env = "SEV_SIM_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: String,
}
