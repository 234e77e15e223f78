//! Helix (PLATFORM.md §2): the endpoints sev uses, with Twitch's rate limit honoured, a 401
//! answered by one token renewal and one retry, and bounded retries for idempotent calls.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::TwitchUrls;
use crate::eventsub::{Subscription, Transport};
use crate::oauth::{OAuthError, TokenSource};

#[derive(Debug, thiserror::Error)]
pub enum HelixError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many requests: {message}")]
    TooManyRequests {
        message: String,
        reset: Option<DateTime<Utc>>,
    },
    #[error("Twitch error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unexpected status {status}: {message}")]
    Unexpected { status: u16, message: String },
    #[error("cannot reach Twitch")]
    Transport(#[source] reqwest::Error),
    #[error("unexpected answer from Twitch: {0}")]
    Decode(String),
    #[error("no usable token")]
    Token(#[from] OAuthError),
}

/// Retry and rate-limit behaviour.
#[derive(Debug, Clone)]
pub struct HelixConfig {
    /// Retries after a 429, a 5xx or a network error (the last two for idempotent calls only).
    pub max_retries: u32,
    /// Longest wait for a rate-limit reset; longer resets fail the call instead of hanging it.
    pub max_rate_limit_wait: Duration,
    /// First backoff after a 5xx or network error; doubles each retry.
    pub backoff: Duration,
}

impl Default for HelixConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_rate_limit_wait: Duration::from_secs(65),
            backoff: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Default)]
struct RateState {
    remaining: Option<i64>,
    reset: Option<DateTime<Utc>>,
}

pub struct HelixClient {
    http: reqwest::Client,
    urls: TwitchUrls,
    client_id: String,
    config: HelixConfig,
    /// The last Ratelimit-* headers seen, to wait *before* a call that would be refused.
    rate: Mutex<RateState>,
}

/// A page of results with Twitch's cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// `None` on the last page.
    pub cursor: Option<String>,
    pub total: Option<i64>,
}

#[derive(Deserialize)]
struct Wire<T> {
    data: Vec<T>,
    #[serde(default)]
    pagination: Option<Pagination>,
    #[serde(default)]
    total: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
struct Pagination {
    #[serde(default)]
    cursor: Option<String>,
}

impl<T> From<Wire<T>> for Page<T> {
    fn from(w: Wire<T>) -> Self {
        Self {
            data: w.data,
            cursor: w
                .pagination
                .and_then(|p| p.cursor)
                .filter(|c| !c.is_empty()),
            total: w.total,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HelixUser {
    pub id: String,
    pub login: String,
    pub display_name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub broadcaster_type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub profile_image_url: String,
    #[serde(default)]
    pub offline_image_url: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SearchedChannel {
    pub id: String,
    pub broadcaster_login: String,
    pub display_name: String,
    #[serde(default)]
    pub broadcaster_language: String,
    #[serde(default)]
    pub game_id: String,
    #[serde(default)]
    pub game_name: String,
    #[serde(default)]
    pub is_live: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub thumbnail_url: String,
    #[serde(default)]
    pub title: String,
    /// Empty when offline.
    #[serde(default)]
    pub started_at: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Stream {
    pub id: String,
    pub user_id: String,
    pub user_login: String,
    pub user_name: String,
    #[serde(default)]
    pub game_id: String,
    #[serde(default)]
    pub game_name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub viewer_count: i64,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub thumbnail_url: String,
    #[serde(default)]
    pub is_mature: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChannelInfo {
    pub broadcaster_id: String,
    pub broadcaster_login: String,
    pub broadcaster_name: String,
    #[serde(default)]
    pub broadcaster_language: String,
    #[serde(default)]
    pub game_id: String,
    #[serde(default)]
    pub game_name: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FollowedChannel {
    pub broadcaster_id: String,
    pub broadcaster_login: String,
    pub broadcaster_name: String,
    #[serde(default)]
    pub followed_at: Option<DateTime<Utc>>,
}

/// The body of Create EventSub Subscription.
#[derive(Debug, Clone, Serialize)]
pub struct CreateSubscription {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    pub condition: Value,
    pub transport: Transport,
}

/// A subscriptions response: the subscriptions with the client's cost totals.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Subscriptions {
    pub data: Vec<Subscription>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub total_cost: i64,
    #[serde(default)]
    pub max_total_cost: i64,
    #[serde(default)]
    pagination: Option<Pagination>,
}

impl Subscriptions {
    pub fn cursor(&self) -> Option<&str> {
        self.pagination
            .as_ref()
            .and_then(|p| p.cursor.as_deref())
            .filter(|c| !c.is_empty())
    }
}

/// Get EventSub Subscriptions takes at most one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionFilter {
    None,
    Status(String),
    Type(String),
    UserId(String),
    SubscriptionId(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Conduit {
    pub id: String,
    pub shard_count: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Shard {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShardError {
    pub id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShardUpdate {
    pub data: Vec<Shard>,
    #[serde(default)]
    pub errors: Vec<ShardError>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

fn header_i64(res: &reqwest::Response, name: &str) -> Option<i64> {
    res.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

fn jitter() -> Duration {
    Duration::from_millis(rand::rng().random_range(50..500))
}

impl HelixClient {
    pub fn new(
        http: reqwest::Client,
        urls: TwitchUrls,
        client_id: impl Into<String>,
        config: HelixConfig,
    ) -> Self {
        Self {
            http,
            urls,
            client_id: client_id.into(),
            config,
            rate: Mutex::new(RateState::default()),
        }
    }

    fn url(&self, path: &str) -> Url {
        crate::join(&self.urls.helix, path)
    }

    /// Waits for the bucket to refill if the last answer said it is empty.
    async fn wait_for_budget(&self) {
        let wait = {
            let rate = self.rate.lock().await;
            match (rate.remaining, rate.reset) {
                (Some(r), Some(reset)) if r <= 0 => (reset - Utc::now()).to_std().ok(),
                _ => None,
            }
        };
        if let Some(w) = wait {
            let w = w.min(self.config.max_rate_limit_wait) + jitter();
            tracing::debug!(wait = ?w, "Helix rate limit exhausted; waiting for the reset");
            tokio::time::sleep(w).await;
        }
    }

    async fn note_rate(&self, res: &reqwest::Response) {
        let mut rate = self.rate.lock().await;
        rate.remaining = header_i64(res, "ratelimit-remaining");
        rate.reset =
            header_i64(res, "ratelimit-reset").and_then(|s| DateTime::from_timestamp(s, 0));
    }

    /// Sends one Helix call. GET and DELETE are idempotent and retried after a 5xx or a
    /// network error; every call is retried after a 429 (Twitch did not process it).
    async fn call<T: DeserializeOwned>(
        &self,
        tokens: &dyn TokenSource,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Option<T>, HelixError> {
        let idempotent = method == Method::GET || method == Method::DELETE;
        let mut token: SecretString = tokens.access_token().await?;
        let mut renewed = false;
        let mut retries = 0u32;
        let mut backoff = self.config.backoff;
        loop {
            self.wait_for_budget().await;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header("Client-Id", &self.client_id)
                .bearer_auth(token.expose_secret());
            if let Some(b) = body {
                req = req.json(b);
            }
            let res = match req.send().await {
                Ok(res) => res,
                Err(e) if idempotent && retries < self.config.max_retries => {
                    tracing::debug!(error = %e, %url, "Helix call failed; retrying");
                    retries += 1;
                    tokio::time::sleep(backoff + jitter()).await;
                    backoff *= 2;
                    continue;
                }
                Err(e) => return Err(HelixError::Transport(e)),
            };
            self.note_rate(&res).await;
            let status = res.status().as_u16();
            if (200..300).contains(&status) {
                if status == 204 {
                    return Ok(None);
                }
                let bytes = res.bytes().await.map_err(HelixError::Transport)?;
                return serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| HelixError::Decode(e.to_string()));
            }
            let reset =
                header_i64(&res, "ratelimit-reset").and_then(|s| DateTime::from_timestamp(s, 0));
            let message = res
                .json::<ErrorBody>()
                .await
                .map(|b| b.message)
                .unwrap_or_default();
            match status {
                401 if !renewed => {
                    token = tokens.renew(&token).await?;
                    renewed = true;
                }
                429 if retries < self.config.max_retries => {
                    retries += 1;
                    let until = reset
                        .and_then(|r| (r - Utc::now()).to_std().ok())
                        .unwrap_or(Duration::from_secs(1));
                    if until > self.config.max_rate_limit_wait {
                        return Err(HelixError::TooManyRequests { message, reset });
                    }
                    tracing::debug!(wait = ?until, "Helix answered 429; waiting for the reset");
                    tokio::time::sleep(until + jitter()).await;
                }
                500..=599 if idempotent && retries < self.config.max_retries => {
                    retries += 1;
                    tokio::time::sleep(backoff + jitter()).await;
                    backoff *= 2;
                }
                400 => return Err(HelixError::BadRequest(message)),
                401 => return Err(HelixError::Unauthorized(message)),
                403 => return Err(HelixError::Forbidden(message)),
                404 => return Err(HelixError::NotFound(message)),
                409 => return Err(HelixError::Conflict(message)),
                429 => return Err(HelixError::TooManyRequests { message, reset }),
                500..=599 => return Err(HelixError::Server { status, message }),
                _ => return Err(HelixError::Unexpected { status, message }),
            }
        }
    }

    async fn get_page<T: DeserializeOwned>(
        &self,
        tokens: &dyn TokenSource,
        url: Url,
    ) -> Result<Page<T>, HelixError> {
        let wire: Wire<T> = self
            .call(tokens, Method::GET, url, None)
            .await?
            .ok_or_else(|| HelixError::Decode("empty response".into()))?;
        Ok(wire.into())
    }

    /// Get Users by ids and logins, in batches of 100.
    pub async fn get_users(
        &self,
        tokens: &dyn TokenSource,
        ids: &[&str],
        logins: &[&str],
    ) -> Result<Vec<HelixUser>, HelixError> {
        let params: Vec<(&str, &str)> = ids
            .iter()
            .map(|i| ("id", *i))
            .chain(logins.iter().map(|l| ("login", *l)))
            .collect();
        let mut out = Vec::new();
        if params.is_empty() {
            // No filter with a user token means "myself".
            return Ok(self.get_page(tokens, self.url("users")).await?.data);
        }
        for chunk in params.chunks(100) {
            let mut url = self.url("users");
            url.query_pairs_mut().extend_pairs(chunk);
            out.extend(self.get_page::<HelixUser>(tokens, url).await?.data);
        }
        Ok(out)
    }

    /// Search Channels: a prefix match over channels active in the last six months.
    pub async fn search_channels(
        &self,
        tokens: &dyn TokenSource,
        query: &str,
        live_only: bool,
        first: u32,
        after: Option<&str>,
    ) -> Result<Page<SearchedChannel>, HelixError> {
        let mut url = self.url("search/channels");
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("live_only", if live_only { "true" } else { "false" })
            .append_pair("first", &first.clamp(1, 100).to_string());
        if let Some(a) = after {
            url.query_pairs_mut().append_pair("after", a);
        }
        self.get_page(tokens, url).await
    }

    /// Get Streams for up to 100 users; a user missing from the answer is offline.
    pub async fn get_streams(
        &self,
        tokens: &dyn TokenSource,
        user_ids: &[&str],
        user_logins: &[&str],
    ) -> Result<Vec<Stream>, HelixError> {
        let mut url = self.url("streams");
        url.query_pairs_mut()
            .extend_pairs(user_ids.iter().take(100).map(|i| ("user_id", *i)))
            .extend_pairs(user_logins.iter().take(100).map(|l| ("user_login", *l)));
        Ok(self.get_page(tokens, url).await?.data)
    }

    /// Get Channel Information for up to 100 broadcasters.
    pub async fn get_channels(
        &self,
        tokens: &dyn TokenSource,
        ids: &[&str],
    ) -> Result<Vec<ChannelInfo>, HelixError> {
        let mut url = self.url("channels");
        url.query_pairs_mut()
            .extend_pairs(ids.iter().take(100).map(|i| ("broadcaster_id", *i)));
        Ok(self.get_page(tokens, url).await?.data)
    }

    /// Get Followed Channels (user token with `user:read:follows`; `user_id` is that user).
    pub async fn get_followed_channels(
        &self,
        tokens: &dyn TokenSource,
        user_id: &str,
        first: u32,
        after: Option<&str>,
    ) -> Result<Page<FollowedChannel>, HelixError> {
        let mut url = self.url("channels/followed");
        url.query_pairs_mut()
            .append_pair("user_id", user_id)
            .append_pair("first", &first.clamp(1, 100).to_string());
        if let Some(a) = after {
            url.query_pairs_mut().append_pair("after", a);
        }
        self.get_page(tokens, url).await
    }

    /// Create EventSub Subscription (202). Webhook and conduit transports need the app
    /// token; WebSocket transports the user's token.
    pub async fn create_subscription(
        &self,
        tokens: &dyn TokenSource,
        req: &CreateSubscription,
    ) -> Result<Subscriptions, HelixError> {
        let body = serde_json::to_value(req).map_err(|e| HelixError::Decode(e.to_string()))?;
        self.call(
            tokens,
            Method::POST,
            self.urls.eventsub_subscriptions.clone(),
            Some(&body),
        )
        .await?
        .ok_or_else(|| HelixError::Decode("empty response".into()))
    }

    /// One page of Get EventSub Subscriptions.
    pub async fn list_subscriptions(
        &self,
        tokens: &dyn TokenSource,
        filter: &SubscriptionFilter,
        after: Option<&str>,
    ) -> Result<Subscriptions, HelixError> {
        let mut url = self.urls.eventsub_subscriptions.clone();
        {
            let mut q = url.query_pairs_mut();
            match filter {
                SubscriptionFilter::None => {}
                SubscriptionFilter::Status(s) => {
                    q.append_pair("status", s);
                }
                SubscriptionFilter::Type(t) => {
                    q.append_pair("type", t);
                }
                SubscriptionFilter::UserId(u) => {
                    q.append_pair("user_id", u);
                }
                SubscriptionFilter::SubscriptionId(i) => {
                    q.append_pair("subscription_id", i);
                }
            }
            if let Some(a) = after {
                q.append_pair("after", a);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.call(tokens, Method::GET, url, None)
            .await?
            .ok_or_else(|| HelixError::Decode("empty response".into()))
    }

    /// Every page of Get EventSub Subscriptions.
    pub async fn list_all_subscriptions(
        &self,
        tokens: &dyn TokenSource,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<Subscription>, HelixError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .list_subscriptions(tokens, filter, after.as_deref())
                .await?;
            let next = page.cursor().map(str::to_owned);
            out.extend(page.data);
            match next {
                Some(c) if after.as_deref() != Some(c.as_str()) => after = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// Delete EventSub Subscription (204; 404 when unknown).
    pub async fn delete_subscription(
        &self,
        tokens: &dyn TokenSource,
        id: &str,
    ) -> Result<(), HelixError> {
        let mut url = self.urls.eventsub_subscriptions.clone();
        url.query_pairs_mut().append_pair("id", id);
        self.call::<Value>(tokens, Method::DELETE, url, None)
            .await
            .map(|_| ())
    }

    pub async fn get_conduits(&self, tokens: &dyn TokenSource) -> Result<Vec<Conduit>, HelixError> {
        Ok(self
            .get_page(tokens, self.url("eventsub/conduits"))
            .await?
            .data)
    }

    pub async fn create_conduit(
        &self,
        tokens: &dyn TokenSource,
        shard_count: u32,
    ) -> Result<Conduit, HelixError> {
        let body = serde_json::json!({ "shard_count": shard_count });
        self.conduit_call(tokens, Method::POST, &body).await
    }

    pub async fn update_conduit(
        &self,
        tokens: &dyn TokenSource,
        id: &str,
        shard_count: u32,
    ) -> Result<Conduit, HelixError> {
        let body = serde_json::json!({ "id": id, "shard_count": shard_count });
        self.conduit_call(tokens, Method::PATCH, &body).await
    }

    /// Create or update a conduit: both answer `{"data": [conduit]}`.
    async fn conduit_call(
        &self,
        tokens: &dyn TokenSource,
        method: Method,
        body: &Value,
    ) -> Result<Conduit, HelixError> {
        let wire: Wire<Conduit> = self
            .call(tokens, method, self.url("eventsub/conduits"), Some(body))
            .await?
            .ok_or_else(|| HelixError::Decode("empty response".into()))?;
        wire.data
            .into_iter()
            .next()
            .ok_or_else(|| HelixError::Decode("no conduit in response".into()))
    }

    pub async fn delete_conduit(
        &self,
        tokens: &dyn TokenSource,
        id: &str,
    ) -> Result<(), HelixError> {
        let mut url = self.url("eventsub/conduits");
        url.query_pairs_mut().append_pair("id", id);
        self.call::<Value>(tokens, Method::DELETE, url, None)
            .await
            .map(|_| ())
    }

    pub async fn get_shards(
        &self,
        tokens: &dyn TokenSource,
        conduit_id: &str,
        after: Option<&str>,
    ) -> Result<Page<Shard>, HelixError> {
        let mut url = self.url("eventsub/conduits/shards");
        url.query_pairs_mut().append_pair("conduit_id", conduit_id);
        if let Some(a) = after {
            url.query_pairs_mut().append_pair("after", a);
        }
        self.get_page(tokens, url).await
    }

    /// Attaches transports to shards; per-shard failures come back in `errors`.
    pub async fn update_shards(
        &self,
        tokens: &dyn TokenSource,
        conduit_id: &str,
        shards: &[(String, Transport)],
    ) -> Result<ShardUpdate, HelixError> {
        let shards: Vec<Value> = shards
            .iter()
            .map(|(id, t)| serde_json::json!({ "id": id, "transport": t }))
            .collect();
        let body = serde_json::json!({ "conduit_id": conduit_id, "shards": shards });
        self.call(
            tokens,
            Method::PATCH,
            self.url("eventsub/conduits/shards"),
            Some(&body),
        )
        .await?
        .ok_or_else(|| HelixError::Decode("empty response".into()))
    }
}
