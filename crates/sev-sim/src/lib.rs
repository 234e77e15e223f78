//! An offline Twitch: the same paths as Twitch (`/oauth2/…`, `/helix/…`, the EventSub
//! WebSocket at `/ws`), so pointing a Twitch app at it is only a base-URL change. Used by
//! `sev demo`, `sev sim` and the tests; a control API under `/_sim` injects events and faults.
//!
//! What it covers, and where it knowingly differs from Twitch: docs/simulator.md.

mod control;
mod delivery;
mod embed;
mod events;
mod eventsub;
pub mod generator;
mod helix;
mod oauth;
mod state;
pub mod world;
mod ws;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

pub use control::inject;
pub use events::Trigger;
pub use events::build as build_event;
use state::{Shared, SimState};

/// How the simulator behaves. The defaults are Twitch's numbers where Twitch has them.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The registered application.
    pub client_id: String,
    pub client_secret: String,
    /// Registered redirect URIs. Empty: any `http://localhost…` or `http://127.0.0.1…` URI
    /// (what a developer registers for local work), so the demo needs no set-up.
    pub redirect_uris: Vec<String>,
    /// The world's seed: the same seed gives the same world.
    pub seed: u64,
    pub user_token_ttl: chrono::Duration,
    pub app_token_ttl: chrono::Duration,
    /// Helix points per minute per token bucket.
    pub rate_limit_per_minute: u32,
    /// Webhook and conduit cost budget per client.
    pub max_total_cost: i64,
    /// Get EventSub Subscriptions page size.
    pub subscriptions_page_size: usize,
    /// Twitch only delivers to https on port 443; off by default so local receivers work.
    pub require_https_callbacks: bool,
    /// A WebSocket with no subscription after this long is closed with 4003.
    pub subscribe_deadline: Duration,
    /// After `session_reconnect`, how long the old socket may stay open (then 4004).
    pub reconnect_grace: Duration,
    /// Attempts per webhook message (the first plus retries, same message id).
    pub webhook_attempts: u32,
    pub webhook_retry_delay: Duration,
    pub webhook_timeout: Duration,
    /// Consecutive failed webhook messages before `notification_failures_exceeded`.
    pub revoke_after_failures: u32,
    /// The world's own activity (see [`generator`]); 0 turns it off.
    pub events_per_minute: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        // Twitch client ids are 30 lowercase alphanumerics; these are fixed so a demo's
        // instructions stay the same from run to run.
        Self {
            client_id: "sevdemoclient00000000000000000".into(),
            client_secret: "sevdemosecret0000000000000000000".into(),
            redirect_uris: Vec::new(),
            seed: 42,
            user_token_ttl: chrono::Duration::seconds(14_124),
            app_token_ttl: chrono::Duration::days(58),
            rate_limit_per_minute: 800,
            max_total_cost: 10_000,
            subscriptions_page_size: 100,
            require_https_callbacks: false,
            subscribe_deadline: Duration::from_secs(10),
            reconnect_grace: Duration::from_secs(30),
            webhook_attempts: 3,
            webhook_retry_delay: Duration::from_millis(500),
            webhook_timeout: Duration::from_secs(5),
            revoke_after_failures: 3,
            events_per_minute: 0,
        }
    }
}

impl SimConfig {
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        if !self.redirect_uris.is_empty() {
            return self.redirect_uris.iter().any(|r| r == uri);
        }
        url::Url::parse(uri).is_ok_and(|u| {
            u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1"))
        })
    }
}

/// A bound simulator, ready to serve.
pub struct Sim {
    listener: TcpListener,
    state: Shared,
}

impl Sim {
    pub async fn bind(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let mut state = SimState::new(config);
        state.base_url = format!("http://{}", listener.local_addr()?);
        Ok(Self {
            listener,
            state: Arc::new(Mutex::new(state)),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http://127.0.0.1:<port>`: the base of every simulated Twitch URL.
    pub fn url(&self) -> std::io::Result<String> {
        Ok(format!("http://{}", self.local_addr()?))
    }

    pub fn config(&self) -> SimConfig {
        state::lock(&self.state).config.clone()
    }

    /// A handle for injecting events from the same process (tests, the demo generator).
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            state: self.state.clone(),
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router(self.state.clone());
        let (seed, per_minute) = {
            let st = state::lock(&self.state);
            (st.config.seed, st.config.events_per_minute)
        };
        let stop = tokio_util::sync::CancellationToken::new();
        generator::spawn(self.handle(), seed, per_minute, stop.clone());
        let _stop_generator = stop.drop_guard();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// In-process access to a running simulator.
#[derive(Clone)]
pub struct SimHandle {
    state: Shared,
}

impl SimHandle {
    /// Injects an event (see [`Trigger`]); returns the event and the message ids sent.
    pub fn trigger(&self, t: &Trigger) -> Result<(serde_json::Value, Vec<String>), String> {
        inject(&self.state, t).map(|(e, r)| (e, r.message_ids))
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .merge(oauth::router())
        .merge(helix::router(state.clone()))
        .merge(ws::router())
        .merge(control::router())
        .merge(embed::router())
        .with_state(state)
}
