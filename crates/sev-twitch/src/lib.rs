//! The part of sev that speaks Twitch, as a library with no web-app concerns: OAuth, Helix,
//! the EventSub model, webhook signatures and the EventSub WebSocket session.
//!
//! Every base URL is per-client configuration ([`TwitchUrls`]); there is no process-wide
//! state, so many clients against many simulators can live in one process.
//! Why this is not built on the `twitch_api`/`twitch_oauth2` crates:
//! docs/decisions/0004-twitch-client.md.

pub mod conduit;
pub mod eventsub;
pub mod helix;
pub mod oauth;
pub mod webhook;
pub mod ws;

use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Where Twitch is. [`TwitchUrls::twitch`] for the real one; anything else for a simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwitchUrls {
    /// OAuth base: `authorize`, `token`, `validate` and `revoke` live under it.
    pub auth: Url,
    pub helix: Url,
    pub eventsub_subscriptions: Url,
    pub eventsub_ws: Url,
}

impl TwitchUrls {
    /// Twitch itself.
    pub fn twitch() -> Self {
        Self::parse(
            "https://id.twitch.tv/oauth2",
            "https://api.twitch.tv/helix",
            "https://api.twitch.tv/helix/eventsub/subscriptions",
            "wss://eventsub.wss.twitch.tv/ws",
        )
        .unwrap_or_else(|_| unreachable!("constant URLs parse"))
    }

    /// A simulator at `base` with Twitch's paths (`sev sim`).
    pub fn simulator(base: &Url) -> Result<Self, url::ParseError> {
        let mut ws = base.clone();
        let scheme = if base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        ws.set_scheme(scheme)
            .map_err(|()| url::ParseError::InvalidDomainCharacter)?;
        Ok(Self {
            auth: join(base, "oauth2"),
            helix: join(base, "helix"),
            eventsub_subscriptions: join(base, "helix/eventsub/subscriptions"),
            eventsub_ws: join(&ws, "ws"),
        })
    }

    pub fn parse(
        auth: &str,
        helix: &str,
        subscriptions: &str,
        ws: &str,
    ) -> Result<Self, url::ParseError> {
        Ok(Self {
            auth: Url::parse(auth)?,
            helix: Url::parse(helix)?,
            eventsub_subscriptions: Url::parse(subscriptions)?,
            eventsub_ws: Url::parse(ws)?,
        })
    }
}

/// `base` + `/path`, whether or not `base` ends with a slash.
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// An HTTP client with the timeouts every Twitch call should have.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        // Twitch never redirects API calls; following one could leak a token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sev/", env!("CARGO_PKG_VERSION")))
        .build()
}
