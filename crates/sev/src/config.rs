//! Configuration: command-line flags, `SEV_*` environment variables and a TOML file, layered
//! as defaults < file < environment < flags, then checked as a whole.
//!
//! Every setting has one name in all three places: the flag `--twitch-helix-url`, the
//! variable `SEV_TWITCH_HELIX_URL` and the file key `twitch_helix_url`. A problem is reported
//! as one line naming the setting, and the process exits with code 2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// One layer of settings: what the file, or the environment and flags, say.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on, e.g. 127.0.0.1:8080 [default: 127.0.0.1:8080]
    #[arg(long, env = "SEV_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// The URL viewers open (scheme, host, optional port). It decides the Twitch embeds'
    /// `parent`, the OAuth redirect URL and the webhook callback [default: http://localhost:<port>]
    #[arg(long, env = "SEV_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Directory for local state: the SQLite database and generated secrets [default: ./sev-data]
    #[arg(long, env = "SEV_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// `sqlite:PATH` (embedded) or `postgres://…` (several instances) [default: sqlite in the data dir]
    #[arg(
        long,
        env = "SEV_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// `redis://…`: use Redis as the event bus, so several instances share live events
    /// [default: in-process bus]
    #[arg(
        long,
        env = "SEV_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,

    /// Log format: pretty (for a terminal) or json (for log collectors) [default: pretty]
    #[arg(long, env = "SEV_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Twitch application client id (`sev demo` uses the simulator's)
    #[arg(long, env = "SEV_TWITCH_CLIENT_ID", value_name = "ID")]
    pub twitch_client_id: Option<String>,

    /// Twitch application client secret
    #[arg(
        long,
        env = "SEV_TWITCH_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub twitch_client_secret: Option<String>,

    /// Twitch OAuth base URL: /authorize, /token, /validate and /revoke live under it
    /// [default: https://id.twitch.tv/oauth2]
    #[arg(long, env = "SEV_TWITCH_AUTH_URL", value_name = "URL")]
    pub twitch_auth_url: Option<String>,

    /// Twitch Helix base URL [default: https://api.twitch.tv/helix]
    #[arg(long, env = "SEV_TWITCH_HELIX_URL", value_name = "URL")]
    pub twitch_helix_url: Option<String>,

    /// EventSub subscriptions endpoint [default: <helix URL>/eventsub/subscriptions]
    #[arg(
        long,
        env = "SEV_TWITCH_EVENTSUB_SUBSCRIPTIONS_URL",
        value_name = "URL"
    )]
    pub twitch_eventsub_subscriptions_url: Option<String>,

    /// EventSub WebSocket URL [default: wss://eventsub.wss.twitch.tv/ws]
    #[arg(long, env = "SEV_TWITCH_EVENTSUB_WS_URL", value_name = "URL")]
    pub twitch_eventsub_ws_url: Option<String>,

    /// Twitch player embed; the page adds `?channel=…&parent=…` [default: https://player.twitch.tv/]
    #[arg(long, env = "SEV_TWITCH_PLAYER_URL", value_name = "URL")]
    pub twitch_player_url: Option<String>,

    /// Twitch chat embed base; the page adds `/<login>/chat?parent=…`
    /// [default: https://www.twitch.tv/embed]
    #[arg(long, env = "SEV_TWITCH_CHAT_URL", value_name = "URL")]
    pub twitch_chat_url: Option<String>,

    /// Key that seals (encrypts) users' Twitch tokens at rest, at least 32 characters; every
    /// instance sharing a database needs the same one [default: generated once and kept in
    /// the data dir]
    #[arg(
        long,
        env = "SEV_TOKEN_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub token_key: Option<String>,

    /// Whether this instance takes part in the Twitch work (conduit shards, chat readers,
    /// subscription reconciler, token validation), which instances share by leases
    /// (docs/deploy.md) [default: true]
    #[arg(long, env = "SEV_TWITCH_WORKERS", value_name = "BOOL")]
    pub twitch_workers: Option<String>,

    /// Shards of sev's EventSub conduit: each is one WebSocket session, held by one instance.
    /// Set it to the number of instances so each carries one; 1 keeps a single instance's
    /// events in Twitch's delivery order [default: 1]
    #[arg(long, env = "SEV_CONDUIT_SHARDS", value_name = "N")]
    pub conduit_shards: Option<String>,

    /// How many past events the stream page shows when it opens (10 to 500) [default: 25]
    #[arg(long, env = "SEV_FEED_HISTORY", value_name = "N")]
    pub feed_history: Option<String>,

    /// How public events reach sev: `conduit` (outbound WebSocket shards, needs no public
    /// HTTPS) or `webhook` (needs an https public URL) [default: conduit]
    #[arg(long, env = "SEV_EVENTSUB_TRANSPORT", value_name = "TRANSPORT")]
    pub eventsub_transport: Option<String>,

    /// Secret for EventSub webhook signatures, 10 to 100 ASCII characters
    /// [default: generated once and kept in the data dir]
    #[arg(
        long,
        env = "SEV_EVENTSUB_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub eventsub_secret: Option<String>,

    /// Days of history kept per streamer; older events are deleted, and a viewer whose cursor
    /// is older is told about the gap. 0 keeps everything [default: 30]
    #[arg(long, env = "SEV_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<String>,
}

impl Settings {
    /// `self` over `lower`: a value set here wins.
    fn over(self, lower: Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),*) => { Settings { $($f: self.$f.or(lower.$f)),* } };
        }
        pick!(
            listen,
            public_url,
            data_dir,
            database_url,
            redis_url,
            log_format,
            twitch_client_id,
            twitch_client_secret,
            twitch_auth_url,
            twitch_helix_url,
            twitch_eventsub_subscriptions_url,
            twitch_eventsub_ws_url,
            twitch_player_url,
            twitch_chat_url,
            token_key,
            feed_history,
            twitch_workers,
            conduit_shards,
            eventsub_transport,
            eventsub_secret,
            retention_days
        )
    }
}

/// A setting that failed its check: printed as one line.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name} ({env}): {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub env: String,
    pub problem: String,
}

fn bad(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        env: format!("SEV_{}", name.to_ascii_uppercase()),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSubTransport {
    Conduit,
    Webhook,
}

/// The Twitch endpoints and credentials. Every URL is configurable, so the same binary talks
/// to Twitch, to `sev sim`, or to Twitch's CLI mock.
#[derive(Debug, Clone)]
pub struct TwitchConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub auth_url: Url,
    pub helix_url: Url,
    pub eventsub_subscriptions_url: Url,
    pub eventsub_ws_url: Url,
    pub player_url: Url,
    pub chat_url: Url,
}

/// The checked configuration of `sev serve` / `sev demo`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None`: derived from the bound port at start (`http://localhost:<port>`).
    pub public_url: Option<Url>,
    pub data_dir: PathBuf,
    pub database_url: SecretString,
    pub redis_url: Option<SecretString>,
    pub log_format: LogFormat,
    pub twitch: TwitchConfig,
    pub eventsub_transport: EventSubTransport,
    /// `None`: generated once and kept in the data dir (see [`Config::eventsub_secret`]).
    pub eventsub_secret: Option<SecretString>,
    /// `None`: keep every event.
    pub retention: Option<chrono::Duration>,
    /// `None`: generated once and kept in the data dir.
    pub token_key: Option<SecretString>,
    /// Events the stream page shows from history.
    pub feed_history: u32,
    /// This instance runs the Twitch connections.
    pub twitch_workers: bool,
    pub conduit_shards: u32,
}

/// Which command the configuration is for: the demo brings its own Twitch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Demo,
}

impl Config {
    /// Layers the file (if any) under the environment and flags, then checks everything.
    /// `cli` holds what clap read from flags and `SEV_*` variables (flags win over variables).
    pub fn load(
        cli: Settings,
        config_file: Option<&Path>,
        mode: Mode,
    ) -> Result<Self, ConfigError> {
        check_env_names()?;
        let file = match config_file {
            Some(path) => read_file(path)?,
            None => Settings::default(),
        };
        Self::from_settings(cli.over(file), mode)
    }

    pub fn from_settings(s: Settings, mode: Mode) -> Result<Self, ConfigError> {
        let listen = s
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse::<SocketAddr>()
            .map_err(|_| bad("listen", "expected an address like 127.0.0.1:8080"))?;

        let public_url = s
            .public_url
            .as_deref()
            .map(|u| {
                let url = parse_url("public_url", u, &["http", "https"])?;
                if url.host_str().is_none() {
                    return Err(bad("public_url", "needs a host name"));
                }
                if url.path() != "/" || url.query().is_some() {
                    return Err(bad(
                        "public_url",
                        "must not have a path or query: sev serves from the root",
                    ));
                }
                Ok(url)
            })
            .transpose()?;

        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from("sev-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "must not be empty"));
        }

        let database_url = match s.database_url {
            Some(u) => {
                let scheme = u.split_once(':').map(|(s, _)| s).unwrap_or_default();
                match scheme {
                    "sqlite" => {}
                    "postgres" | "postgresql" => {
                        Url::parse(&u)
                            .map_err(|e| bad("database_url", format!("not a valid URL: {e}")))?;
                    }
                    _ => return Err(bad("database_url", "expected sqlite:PATH or postgres://…")),
                }
                u
            }
            None => format!("sqlite://{}", data_dir.join("sev.db").display()),
        };

        let redis_url = s
            .redis_url
            .map(|u| {
                parse_url("redis_url", &u, &["redis", "rediss"]).map(|_| SecretString::from(u))
            })
            .transpose()?;

        let log_format = match s.log_format.as_deref().unwrap_or("pretty") {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "log_format",
                    format!("{other:?} is not pretty or json"),
                ));
            }
        };

        let helix_url = parse_url(
            "twitch_helix_url",
            s.twitch_helix_url
                .as_deref()
                .unwrap_or("https://api.twitch.tv/helix"),
            &["http", "https"],
        )?;
        let eventsub_subscriptions_url = match s.twitch_eventsub_subscriptions_url.as_deref() {
            Some(u) => parse_url("twitch_eventsub_subscriptions_url", u, &["http", "https"])?,
            None => join(&helix_url, "eventsub/subscriptions"),
        };
        let (client_id, client_secret) = match (mode, s.twitch_client_id, s.twitch_client_secret) {
            (_, Some(id), Some(secret)) => (id, SecretString::from(secret)),
            // The demo's simulator registers its own client; see `sev demo`.
            (Mode::Demo, None, None) => (String::new(), SecretString::from(String::new())),
            (_, None, _) => {
                return Err(bad(
                    "twitch_client_id",
                    "is required (register an application at dev.twitch.tv, or run `sev demo`)",
                ));
            }
            (_, Some(_), None) => {
                return Err(bad(
                    "twitch_client_secret",
                    "is required with twitch_client_id",
                ));
            }
        };
        let twitch = TwitchConfig {
            client_id,
            client_secret,
            auth_url: parse_url(
                "twitch_auth_url",
                s.twitch_auth_url
                    .as_deref()
                    .unwrap_or("https://id.twitch.tv/oauth2"),
                &["http", "https"],
            )?,
            helix_url,
            eventsub_subscriptions_url,
            eventsub_ws_url: parse_url(
                "twitch_eventsub_ws_url",
                s.twitch_eventsub_ws_url
                    .as_deref()
                    .unwrap_or("wss://eventsub.wss.twitch.tv/ws"),
                &["ws", "wss"],
            )?,
            player_url: parse_url(
                "twitch_player_url",
                s.twitch_player_url
                    .as_deref()
                    .unwrap_or("https://player.twitch.tv/"),
                &["http", "https"],
            )?,
            chat_url: parse_url(
                "twitch_chat_url",
                s.twitch_chat_url
                    .as_deref()
                    .unwrap_or("https://www.twitch.tv/embed"),
                &["http", "https"],
            )?,
        };

        let eventsub_transport = match s.eventsub_transport.as_deref().unwrap_or("conduit") {
            "conduit" => EventSubTransport::Conduit,
            "webhook" => EventSubTransport::Webhook,
            other => {
                return Err(bad(
                    "eventsub_transport",
                    format!("{other:?} is not conduit or webhook"),
                ));
            }
        };
        if eventsub_transport == EventSubTransport::Webhook
            && public_url.as_ref().is_none_or(|u| u.scheme() != "https")
        {
            return Err(bad(
                "eventsub_transport",
                "webhook needs an https public_url: Twitch delivers webhooks to HTTPS on port 443 only",
            ));
        }

        let eventsub_secret = s
            .eventsub_secret
            .map(|v| check_eventsub_secret(&v).map(|()| SecretString::from(v)))
            .transpose()?;

        let retention = match s.retention_days.as_deref().unwrap_or("30").parse::<u32>() {
            Ok(0) => None,
            Ok(days) => Some(chrono::Duration::days(i64::from(days))),
            Err(_) => {
                return Err(bad(
                    "retention_days",
                    "expected a whole number of days (0 keeps everything)",
                ));
            }
        };

        let token_key = s
            .token_key
            .map(|k| {
                if k.len() < 32 {
                    Err(bad("token_key", "must be at least 32 characters"))
                } else {
                    Ok(SecretString::from(k))
                }
            })
            .transpose()?;
        let feed_history = match s.feed_history.as_deref().unwrap_or("25").parse::<u32>() {
            Ok(n) if (10..=500).contains(&n) => n,
            _ => return Err(bad("feed_history", "expected a number from 10 to 500")),
        };

        let twitch_workers = match s.twitch_workers.as_deref().unwrap_or("true") {
            "true" => true,
            "false" => false,
            other => {
                return Err(bad(
                    "twitch_workers",
                    format!("{other:?} is not true or false"),
                ));
            }
        };

        let conduit_shards = match s.conduit_shards.as_deref().unwrap_or("1").parse::<u32>() {
            Ok(n) if (1..=20_000).contains(&n) => n,
            _ => return Err(bad("conduit_shards", "expected a number from 1 to 20000")),
        };

        Ok(Self {
            conduit_shards,
            twitch_workers,
            token_key,
            feed_history,
            retention,
            listen,
            public_url,
            data_dir,
            database_url: SecretString::from(database_url),
            redis_url,
            log_format,
            twitch,
            eventsub_transport,
            eventsub_secret,
        })
    }

    /// The database URL with any password masked, for logs.
    pub fn database_url_for_logs(&self) -> String {
        redact_url(self.database_url.expose_secret())
    }
}

fn check_eventsub_secret(v: &str) -> Result<(), ConfigError> {
    if !(10..=100).contains(&v.len()) || !v.is_ascii() {
        return Err(bad(
            "eventsub_secret",
            "must be 10 to 100 ASCII characters (Twitch's rule)",
        ));
    }
    Ok(())
}

fn parse_url(name: &'static str, value: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let url =
        Url::parse(value).map_err(|e| bad(name, format!("{value:?} is not a valid URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(
            name,
            format!("scheme must be one of {}", schemes.join(", ")),
        ));
    }
    Ok(url)
}

pub use sev_twitch::join;

/// Masks the password of a URL (for logs).
pub fn redact_url(u: &str) -> String {
    match Url::parse(u) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => u.to_owned(),
    }
}

fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines (with a caret); keep the first, it names the key.
        let msg = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned();
        bad("config", format!("{}: {msg}", path.display()))
    })
}

/// Rejects `SEV_*` variables that name no setting: a typo would otherwise be ignored silently.
fn check_env_names() -> Result<(), ConfigError> {
    let cmd = crate::cli::Cli::command();
    let mut known: Vec<String> = Vec::new();
    let mut visit = |c: &clap::Command| {
        for a in c.get_arguments() {
            if let Some(env) = a.get_env() {
                known.push(env.to_string_lossy().into_owned());
            }
        }
    };
    visit(&cmd);
    for sub in cmd.get_subcommands() {
        visit(sub);
        for subsub in sub.get_subcommands() {
            visit(subsub);
        }
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SEV_")
            && !key.starts_with("SEV_TEST_")
            && !known.iter().any(|k| k == &*key)
        {
            return Err(ConfigError {
                name: "environment",
                env: key.into_owned(),
                problem: "no such setting (see `sev --help`)".into(),
            });
        }
    }
    Ok(())
}

/// Reads the EventSub secret from the data dir, creating it on first use.
pub fn load_or_create_secret(data_dir: &Path, file: &str) -> std::io::Result<SecretString> {
    use rand::Rng;
    let path = data_dir.join(file);
    if path.exists() {
        let s = std::fs::read_to_string(&path)?;
        return match check_eventsub_secret(s.trim()) {
            Ok(()) => Ok(SecretString::from(s.trim().to_owned())),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a valid secret; delete it to generate a new one",
                    path.display()
                ),
            )),
        };
    }
    let bytes: [u8; 32] = rand::rng().random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret)?;
    Ok(SecretString::from(secret))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(s: Settings) -> Result<Config, ConfigError> {
        Config::from_settings(
            Settings {
                twitch_client_id: Some("id".into()),
                twitch_client_secret: Some("secret".into()),
                ..Settings::default()
            }
            .over(s),
            Mode::Serve,
        )
    }

    #[test]
    fn defaults_are_local_and_complete() {
        let c = serve(Settings::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url.expose_secret(), "sqlite://sev-data/sev.db");
        assert_eq!(
            c.twitch.eventsub_subscriptions_url.as_str(),
            "https://api.twitch.tv/helix/eventsub/subscriptions"
        );
        assert_eq!(c.eventsub_transport, EventSubTransport::Conduit);
        assert!(c.redis_url.is_none());
        assert_eq!(c.retention, Some(chrono::Duration::days(30)));
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    listen: Some("localhost".into()),
                    ..Default::default()
                },
                "listen",
            ),
            (
                Settings {
                    redis_url: Some("::not a url::".into()),
                    ..Default::default()
                },
                "redis_url",
            ),
            (
                Settings {
                    redis_url: Some("http://x".into()),
                    ..Default::default()
                },
                "redis_url",
            ),
            (
                Settings {
                    public_url: Some("ftp://x".into()),
                    ..Default::default()
                },
                "public_url",
            ),
            (
                Settings {
                    public_url: Some("https://x/app".into()),
                    ..Default::default()
                },
                "public_url",
            ),
            (
                Settings {
                    database_url: Some("mysql://x".into()),
                    ..Default::default()
                },
                "database_url",
            ),
            (
                Settings {
                    log_format: Some("xml".into()),
                    ..Default::default()
                },
                "log_format",
            ),
            (
                Settings {
                    twitch_helix_url: Some("nope".into()),
                    ..Default::default()
                },
                "twitch_helix_url",
            ),
            (
                Settings {
                    twitch_eventsub_ws_url: Some("https://x/ws".into()),
                    ..Default::default()
                },
                "twitch_eventsub_ws_url",
            ),
            (
                Settings {
                    eventsub_secret: Some("short".into()),
                    ..Default::default()
                },
                "eventsub_secret",
            ),
            (
                Settings {
                    eventsub_transport: Some("carrier-pigeon".into()),
                    ..Default::default()
                },
                "eventsub_transport",
            ),
            (
                Settings {
                    retention_days: Some("a week".into()),
                    ..Default::default()
                },
                "retention_days",
            ),
        ];
        for (s, name) in cases {
            let err = serve(s)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted a bad value"));
            assert_eq!(err.name, name);
            let line = err.to_string();
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(
                line.contains(&format!("SEV_{}", name.to_ascii_uppercase())),
                "{line}"
            );
        }
    }

    #[test]
    fn webhooks_need_an_https_public_url() {
        let webhook = |public_url: Option<&str>| Settings {
            eventsub_transport: Some("webhook".into()),
            public_url: public_url.map(Into::into),
            ..Default::default()
        };
        assert_eq!(
            serve(webhook(None)).err().map(|e| e.name),
            Some("eventsub_transport")
        );
        assert_eq!(
            serve(webhook(Some("http://sev.example")))
                .err()
                .map(|e| e.name),
            Some("eventsub_transport")
        );
        assert!(serve(webhook(Some("https://sev.example"))).is_ok());
    }

    #[test]
    fn serve_needs_twitch_credentials_and_demo_does_not() {
        let err = Config::from_settings(Settings::default(), Mode::Serve).err();
        assert_eq!(err.map(|e| e.name), Some("twitch_client_id"));
        assert!(Config::from_settings(Settings::default(), Mode::Demo).is_ok());
    }

    #[test]
    fn upper_layers_win() {
        let file = Settings {
            listen: Some("127.0.0.1:1".into()),
            log_format: Some("json".into()),
            ..Default::default()
        };
        let env_and_flags = Settings {
            listen: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let merged = env_and_flags.over(file);
        assert_eq!(merged.listen.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(merged.log_format.as_deref(), Some("json"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = serve(Settings {
            eventsub_secret: Some("super-secret-value".into()),
            redis_url: Some("redis://:hunter2@127.0.0.1:6379".into()),
            database_url: Some("postgres://sev:pg-password@db/sev".into()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{c:?}");
        for secret in ["super-secret-value", "hunter2", "pg-password"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert_eq!(c.database_url_for_logs(), "postgres://sev:redacted@db/sev");
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sev.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9\"\nlisten_port = 9\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let err = read_file(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("listen_port") && !err.contains('\n'), "{err}");
        std::fs::write(&path, "listen = \"127.0.0.1:9\"\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_file(&path).ok().and_then(|s| s.listen).as_deref(),
            Some("127.0.0.1:9")
        );
    }

    #[test]
    fn the_generated_secret_is_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = load_or_create_secret(dir.path(), "s").unwrap_or_else(|e| panic!("{e}"));
        let b = load_or_create_secret(dir.path(), "s").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 64);
    }
}
