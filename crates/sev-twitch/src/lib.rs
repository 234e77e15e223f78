//! The part of sev that speaks Twitch, as a library with no web-app concerns: OAuth, Helix,
//! the EventSub model, webhook signatures and the EventSub WebSocket session.
//!
//! Every base URL is per-client configuration ([`TwitchUrls`]); there is no process-wide
//! state, so many clients against many simulators can live in one process.
//! Why this is not built on the `twitch_api`/`twitch_oauth2` crates:
//! docs/decisions/0004-twitch-client.md.

pub mod eventsub;
pub mod webhook;

pub use secrecy::{ExposeSecret, SecretString};
