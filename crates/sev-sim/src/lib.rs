//! An offline Twitch: the same paths as Twitch (`/oauth2/…`, `/helix/…`, the EventSub
//! WebSocket at `/ws`), so pointing a Twitch app at it is only a base-URL change. Used by
//! `sev demo`, `sev sim` and the tests.
//!
//! What it covers so far, and where it knowingly differs from Twitch, is in docs/simulator.md.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;
use tokio::net::TcpListener;

/// The application registered with the simulator, as Twitch's developer console would.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub client_id: String,
    pub client_secret: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        // Twitch client ids are 30 lowercase alphanumerics; these are fixed so a demo's
        // instructions stay the same from run to run.
        Self {
            client_id: "sevdemoclient00000000000000000".into(),
            client_secret: "sevdemosecret0000000000000000000".into(),
        }
    }
}

/// A bound simulator, ready to serve.
pub struct Sim {
    listener: TcpListener,
    config: SimConfig,
}

impl Sim {
    pub async fn bind(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            config,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http://127.0.0.1:<port>`: the base of every simulated Twitch URL.
    pub fn url(&self) -> std::io::Result<String> {
        Ok(format!("http://{}", self.local_addr()?))
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

fn router() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route("/oauth2/validate", get(validate))
        .route("/helix/{*path}", any(helix))
}

/// No token has been issued yet, so every token is invalid: Twitch's answer for that.
async fn validate(headers: HeaderMap) -> Response {
    let has_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("OAuth ") || v.starts_with("Bearer "));
    let message = if has_token {
        "invalid access token"
    } else {
        "missing authorization token"
    };
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "status": 401, "message": message })),
    )
        .into_response()
}

async fn helix(headers: HeaderMap) -> Response {
    let message = if headers.contains_key(header::AUTHORIZATION) {
        "Invalid OAuth token"
    } else {
        "OAuth token is missing"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "OAuth realm=\"TwitchTV\", error=\"invalid_token\"",
        )],
        axum::Json(json!({ "error": "Unauthorized", "status": 401, "message": message })),
    )
        .into_response()
}
