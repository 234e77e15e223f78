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
    /// Inject an event into a running simulator, in the spirit of `twitch event trigger`
    Trigger(TriggerArgs),
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

    /// How many events a minute the simulated world produces [default: 240]
    #[arg(long, env = "SEV_SIM_EVENTS_PER_MINUTE", value_name = "N")]
    pub sim_events_per_minute: Option<u32>,
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

    /// Seed of the simulated world and its activity: the same seed, the same sequence
    #[arg(long, env = "SEV_SIM_SEED", value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// How many events a minute the simulated world produces (0: only triggered ones)
    #[arg(
        long,
        env = "SEV_SIM_EVENTS_PER_MINUTE",
        value_name = "N",
        default_value_t = 0
    )]
    pub events_per_minute: u32,
}

/// `sev trigger TYPE [flags]`: posts to the simulator's control API (`/_sim/trigger`).
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// EventSub type, e.g. stream.online, channel.raid, channel.chat.notification
    #[arg(value_name = "TYPE")]
    pub kind: String,

    /// The simulator's URL
    #[arg(
        long,
        env = "SEV_SIM_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8090"
    )]
    pub sim: String,

    /// Channel (login or id) [default: favstreamer]
    #[arg(long, short = 'b', value_name = "LOGIN")]
    pub broadcaster: Option<String>,

    /// Acting user (login or id): raider, gifter, chatter, follower… [default: viewer1]
    #[arg(long, short = 'u', value_name = "LOGIN")]
    pub user: Option<String>,

    /// Bits, gift count, raid viewers, months, points…
    #[arg(long, short = 'C', value_name = "N")]
    pub amount: Option<i64>,

    /// Sub tier: 1000, 2000 or 3000
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,

    /// Title (stream, poll, prediction, reward, goal)
    #[arg(long, short = 'd', value_name = "TEXT")]
    pub title: Option<String>,

    /// Category name (channel.update)
    #[arg(long, short = 'G', value_name = "NAME")]
    pub category: Option<String>,

    /// Message text (chat, resub, announcement)
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,

    /// For channel.chat.notification: sub, resub, sub_gift, community_sub_gift, raid, …
    #[arg(long, value_name = "NOTICE")]
    pub notice_type: Option<String>,

    /// Anonymous gift or cheer
    #[arg(long, short = 'a')]
    pub anonymous: bool,
}
