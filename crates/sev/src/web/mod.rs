//! The viewer-facing web app's machinery: the Twitch clients pages use, sign-in sessions
//! with CSRF tokens, sealed tokens, and the hourly token validation. The routes themselves
//! are in `routes::{auth, pages}`.

pub mod consent;
pub mod seal;
pub mod session;
pub mod validation;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use secrecy::SecretString;
use sev_store::Session;
use sev_twitch::helix::{HelixClient, HelixConfig};
use sev_twitch::oauth::{
    AppTokenSource, Credentials, OAuthClient, TokenSource, UserToken, UserTokenSource,
};

use crate::state::AppState;
use url::Url;

use crate::config::Config;
pub use seal::Sealer;

/// The scopes a viewer grants at sign-in: reading chat notifications (the chat-reader
/// tier) and listing the channels they follow (to pick a favorite).
pub const VIEWER_SCOPES: &[&str] = &["user:read:chat", "user:read:follows"];

/// What the pages need beyond the store: Twitch, the token sealer, and cookie settings.
pub struct Web {
    pub sealer: Sealer,
    pub oauth: OAuthClient,
    pub helix: Arc<HelixClient>,
    pub app_tokens: Arc<dyn TokenSource>,
    /// `<public URL>/auth/callback`, registered with the Twitch application.
    pub redirect_uri: String,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// The host Twitch's embeds must be told about (`parent`).
    pub embed_parent: String,
    /// The pages' Content-Security-Policy: our own scripts, styles and sockets only, and
    /// frames from the configured player and chat embeds.
    pub csp: axum::http::HeaderValue,
    /// Channel headers (live, title, category, viewers) by streamer id, with when they were
    /// fetched: every view of a popular channel must not cost two Helix calls against the
    /// app's rate limit (800 a minute).
    pub headers: std::sync::Mutex<
        std::collections::HashMap<String, (std::time::Instant, crate::routes::pages::Header)>,
    >,
}

impl Web {
    pub fn new(
        config: &Config,
        public_url: &Url,
        token_key: &SecretString,
    ) -> anyhow::Result<Self> {
        let http = sev_twitch::http_client()?;
        let t = &config.twitch;
        let urls = sev_twitch::TwitchUrls {
            auth: t.auth_url.clone(),
            helix: t.helix_url.clone(),
            eventsub_subscriptions: t.eventsub_subscriptions_url.clone(),
            eventsub_ws: t.eventsub_ws_url.clone(),
        };
        let oauth = OAuthClient::new(
            http.clone(),
            urls.clone(),
            Credentials {
                client_id: t.client_id.clone(),
                client_secret: t.client_secret.clone(),
            },
        );
        let helix = Arc::new(HelixClient::new(
            http,
            urls,
            t.client_id.clone(),
            HelixConfig::default(),
        ));
        Ok(Self {
            sealer: Sealer::new(token_key),
            app_tokens: Arc::new(AppTokenSource::new(oauth.clone())),
            oauth,
            helix,
            redirect_uri: crate::config::join(public_url, "auth/callback").to_string(),
            secure_cookies: public_url.scheme() == "https",
            embed_parent: public_url.host_str().unwrap_or("localhost").to_owned(),
            csp: content_security_policy(config),
            headers: std::sync::Mutex::default(),
        })
    }
}

/// The viewer's Twitch token as a Helix token source; refreshed tokens are stored sealed.
pub fn user_tokens(state: &AppState, session: &Session) -> Option<UserTokenSource> {
    let web = &state.web;
    let token = UserToken {
        access_token: web.sealer.open(&session.access_token).ok()?,
        refresh_token: web.sealer.open(&session.refresh_token).ok()?,
        expires_at: session.token_expires_at,
        scopes: session.scopes.clone(),
    };
    let (store, web2, id) = (state.store.clone(), state.web.clone(), session.id.clone());
    let on_refresh: sev_twitch::oauth::OnRefresh = Arc::new(move |t: &UserToken| {
        let (store, id) = (store.clone(), id.clone());
        let (access, refresh) = (
            web2.sealer.seal(&t.access_token),
            web2.sealer.seal(&t.refresh_token),
        );
        let expires = t.expires_at;
        tokio::spawn(async move {
            if let Err(e) = store
                .update_session_tokens(&id, &access, &refresh, expires)
                .await
            {
                tracing::warn!(error = %e, "storing refreshed tokens failed");
            }
        });
    });
    Some(UserTokenSource::new(
        web.oauth.clone(),
        token,
        Some(on_refresh),
    ))
}

fn content_security_policy(config: &Config) -> axum::http::HeaderValue {
    let origin = |u: &Url| u.origin().ascii_serialization();
    let frames = [
        origin(&config.twitch.player_url),
        origin(&config.twitch.chat_url),
    ]
    .join(" ");
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-src {frames}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    );
    // Origins of parsed URLs are plain ASCII: always a valid header value.
    axum::http::HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("default-src 'self'"))
}

/// A page-level failure, shown to people as a page that says what happened and what to do.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn storage(e: &sev_store::StoreError) -> Self {
        tracing::error!(error = %e, "storage failed while serving a page");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sev is having trouble",
            "Our storage is not answering right now. Please try again in a moment.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = crate::routes::pages::MessagePage {
            viewer: None,
            title: self.title,
            message: &self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

/// Renders a template; a template error (a bug) is a plain 500, never a panic.
pub fn render(t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}
