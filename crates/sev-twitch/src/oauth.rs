//! Twitch OAuth (PLATFORM.md §1): the authorization-code flow, refresh, validate, revoke, and
//! the client-credentials app token; plus the [`TokenSource`]s Helix calls draw from.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::TwitchUrls;

/// The application's identity at Twitch.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The token is not (or no longer) valid: end the sessions that rely on it.
    #[error("invalid access token")]
    InvalidToken,
    /// Twitch refused the grant (bad code, bad or expired refresh token): sign in again.
    #[error("Twitch refused the request: {0}")]
    Refused(String),
    #[error("Twitch answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("cannot reach Twitch")]
    Transport(#[source] reqwest::Error),
    #[error("unexpected answer from Twitch: {0}")]
    Decode(String),
}

/// A user's tokens, as returned by the code exchange or a refresh.
#[derive(Clone)]
pub struct UserToken {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub expires_at: DateTime<Utc>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The app access token (client credentials). It cannot be refreshed: a new one is requested.
#[derive(Clone)]
pub struct AppToken {
    pub access_token: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// What `/oauth2/validate` says about a token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Validation {
    pub client_id: String,
    /// Absent for app tokens.
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    pub expires_in: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: i64,
    #[serde(default)]
    scope: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    urls: TwitchUrls,
    credentials: Credentials,
}

impl OAuthClient {
    pub fn new(http: reqwest::Client, urls: TwitchUrls, credentials: Credentials) -> Self {
        Self {
            http,
            urls,
            credentials,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    fn endpoint(&self, name: &str) -> Url {
        crate::join(&self.urls.auth, name)
    }

    /// Where to send the browser to sign in.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
        force_verify: bool,
    ) -> Url {
        let mut url = self.endpoint("authorize");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.credentials.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", state);
            if force_verify {
                q.append_pair("force_verify", "true");
            }
        }
        url
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let res = self
            .http
            .post(self.endpoint("token"))
            .form(form)
            .send()
            .await
            .map_err(OAuthError::Transport)?;
        let status = res.status();
        if status.is_success() {
            return res
                .json()
                .await
                .map_err(|e| OAuthError::Decode(e.to_string()));
        }
        let message = res
            .json::<ErrorBody>()
            .await
            .map(|b| b.message)
            .unwrap_or_default();
        Err(match status.as_u16() {
            400 | 401 | 403 => OAuthError::Refused(message),
            s => OAuthError::Http { status: s, message },
        })
    }

    fn user_token(r: TokenResponse) -> Result<UserToken, OAuthError> {
        Ok(UserToken {
            access_token: SecretString::from(r.access_token),
            refresh_token: SecretString::from(
                r.refresh_token
                    .ok_or_else(|| OAuthError::Decode("no refresh_token".into()))?,
            ),
            expires_at: Utc::now() + chrono::Duration::seconds(r.expires_in.max(0)),
            scopes: r.scope.unwrap_or_default(),
        })
    }

    /// Exchanges the authorization code from the redirect for the user's tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<UserToken, OAuthError> {
        let secret = self.credentials.client_secret.expose_secret();
        let r = self
            .token_request(&[
                ("client_id", &self.credentials.client_id),
                ("client_secret", secret),
                ("code", code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
            ])
            .await?;
        Self::user_token(r)
    }

    /// Refreshes a user's tokens; keep the returned refresh token, the old one may be spent.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<UserToken, OAuthError> {
        let secret = self.credentials.client_secret.expose_secret();
        let r = self
            .token_request(&[
                ("client_id", &self.credentials.client_id),
                ("client_secret", secret),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ])
            .await?;
        Self::user_token(r)
    }

    /// A new app access token (client credentials).
    pub async fn app_token(&self) -> Result<AppToken, OAuthError> {
        let secret = self.credentials.client_secret.expose_secret();
        let r = self
            .token_request(&[
                ("client_id", &self.credentials.client_id),
                ("client_secret", secret),
                ("grant_type", "client_credentials"),
            ])
            .await?;
        Ok(AppToken {
            access_token: SecretString::from(r.access_token),
            expires_at: Utc::now() + chrono::Duration::seconds(r.expires_in.max(0)),
        })
    }

    /// Validates a token (Twitch requires this at start and hourly for every kept token).
    /// [`OAuthError::InvalidToken`] means: end the sessions that use it.
    pub async fn validate(&self, token: &SecretString) -> Result<Validation, OAuthError> {
        let res = self
            .http
            .get(self.endpoint("validate"))
            .header("Authorization", format!("OAuth {}", token.expose_secret()))
            .send()
            .await
            .map_err(OAuthError::Transport)?;
        match res.status().as_u16() {
            200 => res
                .json()
                .await
                .map_err(|e| OAuthError::Decode(e.to_string())),
            401 => Err(OAuthError::InvalidToken),
            s => Err(OAuthError::Http {
                status: s,
                message: res
                    .json::<ErrorBody>()
                    .await
                    .map(|b| b.message)
                    .unwrap_or_default(),
            }),
        }
    }

    /// Revokes a token (at logout). An already invalid token counts as revoked.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), OAuthError> {
        let res = self
            .http
            .post(self.endpoint("revoke"))
            .form(&[
                ("client_id", self.credentials.client_id.as_str()),
                ("token", token.expose_secret()),
            ])
            .send()
            .await
            .map_err(OAuthError::Transport)?;
        match res.status().as_u16() {
            200 => Ok(()),
            400 => Ok(()), // "Invalid token": nothing left to revoke
            s => Err(OAuthError::Http {
                status: s,
                message: res
                    .json::<ErrorBody>()
                    .await
                    .map(|b| b.message)
                    .unwrap_or_default(),
            }),
        }
    }
}

/// Where a Helix call gets its token, and a fresh one after a 401.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn access_token(&self) -> Result<SecretString, OAuthError>;
    /// The token `refused` got a 401: return a renewed one (unless another caller already did).
    async fn renew(&self, refused: &SecretString) -> Result<SecretString, OAuthError>;
    /// True for user tokens (WebSocket subscriptions), false for the app token.
    fn is_user(&self) -> bool;
}

/// Renews a token this long before it expires.
const RENEW_AHEAD: Duration = Duration::from_secs(300);

fn expiring(at: DateTime<Utc>) -> bool {
    at - Utc::now() < chrono::Duration::from_std(RENEW_AHEAD).unwrap_or_default()
}

/// The app token: fetched on first use, renewed ahead of expiry and after a 401.
pub struct AppTokenSource {
    oauth: OAuthClient,
    current: Mutex<Option<AppToken>>,
}

impl AppTokenSource {
    pub fn new(oauth: OAuthClient) -> Self {
        Self {
            oauth,
            current: Mutex::new(None),
        }
    }
}

#[async_trait]
impl TokenSource for AppTokenSource {
    async fn access_token(&self) -> Result<SecretString, OAuthError> {
        let mut current = self.current.lock().await;
        match &*current {
            Some(t) if !expiring(t.expires_at) => Ok(t.access_token.clone()),
            _ => {
                let t = self.oauth.app_token().await?;
                let token = t.access_token.clone();
                *current = Some(t);
                Ok(token)
            }
        }
    }

    async fn renew(&self, refused: &SecretString) -> Result<SecretString, OAuthError> {
        let mut current = self.current.lock().await;
        if let Some(t) = &*current
            && t.access_token.expose_secret() != refused.expose_secret()
        {
            return Ok(t.access_token.clone());
        }
        let t = self.oauth.app_token().await?;
        let token = t.access_token.clone();
        *current = Some(t);
        Ok(token)
    }

    fn is_user(&self) -> bool {
        false
    }
}

/// Called with the new tokens after every refresh, so they can be stored.
pub type OnRefresh = Arc<dyn Fn(&UserToken) + Send + Sync>;

/// A user's token: refreshed ahead of expiry and after a 401.
pub struct UserTokenSource {
    oauth: OAuthClient,
    current: Mutex<UserToken>,
    on_refresh: Option<OnRefresh>,
}

impl UserTokenSource {
    pub fn new(oauth: OAuthClient, token: UserToken, on_refresh: Option<OnRefresh>) -> Self {
        Self {
            oauth,
            current: Mutex::new(token),
            on_refresh,
        }
    }

    async fn refresh_locked(&self, current: &mut UserToken) -> Result<SecretString, OAuthError> {
        let fresh = self.oauth.refresh(&current.refresh_token).await?;
        if let Some(f) = &self.on_refresh {
            f(&fresh);
        }
        *current = fresh;
        Ok(current.access_token.clone())
    }
}

#[async_trait]
impl TokenSource for UserTokenSource {
    async fn access_token(&self) -> Result<SecretString, OAuthError> {
        let mut current = self.current.lock().await;
        if expiring(current.expires_at) {
            return self.refresh_locked(&mut current).await;
        }
        Ok(current.access_token.clone())
    }

    async fn renew(&self, refused: &SecretString) -> Result<SecretString, OAuthError> {
        let mut current = self.current.lock().await;
        if current.access_token.expose_secret() != refused.expose_secret() {
            return Ok(current.access_token.clone());
        }
        self.refresh_locked(&mut current).await
    }

    fn is_user(&self) -> bool {
        true
    }
}
