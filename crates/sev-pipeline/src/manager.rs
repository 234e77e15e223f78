//! The subscription manager: drives the app's actual Twitch subscriptions toward the desired
//! set. The desired set is every public-tier type for every streamer some active user has as
//! a favorite: one subscription per (type, condition), shared by all of that streamer's
//! viewers, so cost grows with streamers, not viewers.
//!
//! Each [`Manager::reconcile`] lists what Twitch has, adopts what matches (ours, on our
//! transport), repairs what Twitch disabled or revoked (with backoff), creates what is missing
//! while the cost budget allows, and deletes what nobody has wanted for the grace period.
//! What is subscribed, what is not, and why, is in [`Status`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sev_twitch::eventsub::{SUBSCRIPTION_TYPES, Subscription, Tier, Transport, TypeInfo};
use sev_twitch::helix::{CreateSubscription, HelixClient, HelixError, SubscriptionFilter};
use sev_twitch::oauth::TokenSource;
use tokio::time::Instant;

/// The public tier: what sev subscribes to for every wanted streamer (PLATFORM.md §6).
pub const PUBLIC_TYPES: &[(&str, &str, &str)] = &[
    ("stream.online", "1", "broadcaster_user_id"),
    ("stream.offline", "1", "broadcaster_user_id"),
    ("channel.update", "2", "broadcaster_user_id"),
    ("channel.raid", "1", "to_broadcaster_user_id"),
    ("channel.raid", "1", "from_broadcaster_user_id"),
];

/// One desired subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Want {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    pub condition_key: String,
    pub streamer_id: String,
    /// `moderator_user_id` for types that name the granting moderator (consent tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderator_id: Option<String>,
}

impl Want {
    fn condition(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            self.condition_key.clone(),
            Value::String(self.streamer_id.clone()),
        );
        if let Some(m_id) = &self.moderator_id {
            m.insert("moderator_user_id".into(), Value::String(m_id.clone()));
        }
        m
    }

    fn matches(&self, s: &Subscription) -> bool {
        s.kind == self.kind && s.version == self.version && s.condition == self.condition()
    }
}

/// Broadcaster mode: someone who granted the consent tier's scopes for a channel, the
/// broadcaster themself or one of their moderators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub streamer_id: String,
    pub user_id: String,
}

/// The consent-tier types a grant can cover: a broadcaster's covers every broadcaster and
/// moderator type; a moderator's only the moderator types (Twitch accepts nothing else from
/// them). Types with other condition fields (a reward id…) are left out.
pub fn consent_types(broadcaster: bool) -> Vec<&'static TypeInfo> {
    SUBSCRIPTION_TYPES
        .iter()
        .filter(|t| match t.tier {
            Tier::Broadcaster => broadcaster && t.condition == ["broadcaster_user_id"],
            Tier::Moderator => t.condition == ["broadcaster_user_id", "moderator_user_id"],
            _ => false,
        })
        .collect()
}

/// The scopes broadcaster mode asks for: one that authorises each of [`consent_types`].
pub fn consent_scopes(broadcaster: bool) -> Vec<&'static str> {
    let mut scopes: Vec<&str> = consent_types(broadcaster)
        .iter()
        .filter_map(|t| t.scopes.first().copied())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// The desired set for these streamers and broadcaster-mode grants.
pub fn wants(streamers: &[String], consents: &[Consent]) -> Vec<Want> {
    let public = streamers.iter().flat_map(|id| {
        PUBLIC_TYPES.iter().map(move |(k, v, c)| Want {
            kind: (*k).into(),
            version: (*v).into(),
            condition_key: (*c).into(),
            streamer_id: id.clone(),
            moderator_id: None,
        })
    });
    let consent = consents.iter().flat_map(|c| {
        consent_types(c.user_id == c.streamer_id)
            .into_iter()
            .map(move |t| Want {
                kind: t.name.into(),
                version: t.version.into(),
                condition_key: "broadcaster_user_id".into(),
                streamer_id: c.streamer_id.clone(),
                moderator_id: (t.tier == Tier::Moderator).then(|| c.user_id.clone()),
            })
    });
    let mut all: Vec<Want> = public.chain(consent).collect();
    all.sort();
    all.dedup();
    all
}

/// Where sev's public-tier subscriptions are delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    Conduit(String),
    Webhook { callback: String, secret: String },
}

impl Destination {
    fn transport(&self) -> Transport {
        match self {
            Self::Conduit(id) => Transport {
                method: "conduit".into(),
                conduit_id: Some(id.clone()),
                ..Transport::default()
            },
            Self::Webhook { callback, secret } => Transport {
                method: "webhook".into(),
                callback: Some(callback.clone()),
                secret: Some(secret.clone()),
                ..Transport::default()
            },
        }
    }

    fn owns(&self, t: &Transport) -> bool {
        match self {
            Self::Conduit(id) => t.method == "conduit" && t.conduit_id.as_deref() == Some(id),
            Self::Webhook { callback, .. } => {
                t.method == "webhook" && t.callback.as_deref() == Some(callback)
            }
        }
    }
}

/// Statuses in which a subscription delivers, or will once verified.
fn healthy(status: &str) -> bool {
    matches!(status, "enabled" | "webhook_callback_verification_pending")
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Subscribed {
    #[serde(flatten)]
    pub want: Want,
    pub id: String,
    pub status: String,
    pub cost: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct NotSubscribed {
    #[serde(flatten)]
    pub want: Want,
    pub reason: String,
    /// When the next attempt is due.
    pub retry_at: Option<DateTime<Utc>>,
}

/// What is subscribed, what is not and why: for operators (JSON) and metrics.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Status {
    pub streamers: usize,
    pub subscribed: Vec<Subscribed>,
    pub not_subscribed: Vec<NotSubscribed>,
    /// Ours, no longer wanted, kept until their grace period ends.
    pub unwanted: Vec<String>,
    pub total_cost: i64,
    pub max_total_cost: i64,
    pub last_reconcile: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    at: Instant,
    wait: Duration,
}

pub struct Manager {
    helix: Arc<HelixClient>,
    app: Arc<dyn TokenSource>,
    destination: Destination,
    /// How long a subscription nobody wants is kept (a viewer may come back).
    grace: Duration,
    unwanted_since: HashMap<String, Instant>,
    retries: HashMap<Want, Retry>,
    reasons: HashMap<Want, String>,
    app_client_id: Option<String>,
}

const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(600);

impl Manager {
    pub fn new(
        helix: Arc<HelixClient>,
        app: Arc<dyn TokenSource>,
        destination: Destination,
        grace: Duration,
    ) -> Self {
        Self {
            helix,
            app,
            destination,
            grace,
            unwanted_since: HashMap::new(),
            retries: HashMap::new(),
            reasons: HashMap::new(),
            app_client_id: None,
        }
    }

    /// Also keeps the app's own `user.authorization.revoke` subscription (condition: this
    /// client id), so a user who disconnects sev on Twitch can be signed out at once.
    pub fn watch_authorization_revokes(mut self, client_id: &str) -> Self {
        self.app_client_id = Some(client_id.to_owned());
        self
    }

    fn backoff(&mut self, want: &Want, reason: String) {
        let wait = self
            .retries
            .get(want)
            .map_or(FIRST_RETRY, |r| (r.wait * 2).min(MAX_RETRY));
        self.retries.insert(
            want.clone(),
            Retry {
                at: Instant::now() + wait,
                wait,
            },
        );
        self.reasons.insert(want.clone(), reason);
    }

    /// One pass toward the desired set for `streamers`.
    pub async fn reconcile(&mut self, streamers: &[String]) -> Result<Status, HelixError> {
        self.reconcile_with(streamers, &[]).await
    }

    /// [`Manager::reconcile`], plus the consent tier for these broadcaster-mode grants.
    pub async fn reconcile_with(
        &mut self,
        streamers: &[String],
        consents: &[Consent],
    ) -> Result<Status, HelixError> {
        let (app_source, helix) = (self.app.clone(), self.helix.clone());
        let app = app_source.as_ref();
        let actual = helix
            .list_all_subscriptions(app, &SubscriptionFilter::None)
            .await?;
        let ours: Vec<&Subscription> = actual
            .iter()
            .filter(|s| self.destination.owns(&s.transport))
            .collect();
        let mut desired = wants(streamers, consents);
        if let Some(client_id) = &self.app_client_id {
            desired.push(Want {
                kind: "user.authorization.revoke".into(),
                version: "1".into(),
                condition_key: "client_id".into(),
                streamer_id: client_id.clone(),
                moderator_id: None,
            });
        }
        let mut status = Status {
            streamers: streamers.len(),
            ..Status::default()
        };
        let mut max_total_cost = 10_000;
        let mut total_cost: i64 = ours
            .iter()
            .filter(|s| healthy(&s.status))
            .map(|s| s.cost)
            .sum();

        // Ours that nobody wants: deleted once the grace period is over.
        let now = Instant::now();
        for s in &ours {
            if desired.iter().any(|w| w.matches(s)) {
                self.unwanted_since.remove(&s.id);
                continue;
            }
            let since = *self.unwanted_since.entry(s.id.clone()).or_insert(now);
            if now.duration_since(since) >= self.grace || !healthy(&s.status) {
                match helix.delete_subscription(app, &s.id).await {
                    Ok(()) | Err(HelixError::NotFound(_)) => {
                        self.unwanted_since.remove(&s.id);
                        if healthy(&s.status) {
                            total_cost -= s.cost;
                        }
                    }
                    Err(e) => status.last_error = Some(format!("deleting {}: {e}", s.id)),
                }
            } else {
                status.unwanted.push(s.id.clone());
            }
        }
        self.unwanted_since
            .retain(|id, _| ours.iter().any(|s| &s.id == id));

        for want in desired {
            if let Some(s) = ours.iter().find(|s| want.matches(s) && healthy(&s.status)) {
                self.retries.remove(&want);
                self.reasons.remove(&want);
                status.subscribed.push(Subscribed {
                    want,
                    id: s.id.clone(),
                    status: s.status.clone(),
                    cost: s.cost,
                });
                continue;
            }
            if let Some(r) = self.retries.get(&want).copied()
                && r.at > Instant::now()
            {
                let reason = self.reasons.get(&want).cloned().unwrap_or_default();
                let retry_at = Utc::now()
                    + chrono::Duration::from_std(r.at - Instant::now()).unwrap_or_default();
                status.not_subscribed.push(NotSubscribed {
                    want,
                    reason,
                    retry_at: Some(retry_at),
                });
                continue;
            }
            // Disabled or revoked by Twitch: replace it.
            for dead in ours
                .iter()
                .filter(|s| want.matches(s) && !healthy(&s.status))
            {
                let _ = helix.delete_subscription(app, &dead.id).await;
            }
            if total_cost + 1 > max_total_cost {
                let reason = format!("cost budget exhausted ({total_cost} of {max_total_cost})");
                self.backoff(&want, reason.clone());
                status.not_subscribed.push(NotSubscribed {
                    want,
                    reason,
                    retry_at: None,
                });
                continue;
            }
            let req = CreateSubscription {
                kind: want.kind.clone(),
                version: want.version.clone(),
                condition: Value::Object(want.condition()),
                transport: self.destination.transport(),
            };
            match helix.create_subscription(app, &req).await {
                Ok(created) => {
                    max_total_cost = created.max_total_cost.max(1);
                    total_cost = created.total_cost;
                    if let Some(s) = created.data.into_iter().next() {
                        self.retries.remove(&want);
                        self.reasons.remove(&want);
                        status.subscribed.push(Subscribed {
                            want,
                            id: s.id,
                            status: s.status,
                            cost: s.cost,
                        });
                    }
                }
                // Someone (another instance) created it meanwhile: adopt it next pass.
                Err(HelixError::Conflict(_)) => {}
                Err(e) => {
                    let reason = e.to_string();
                    tracing::warn!(error = %reason, kind = %want.kind, streamer = %want.streamer_id, "could not subscribe");
                    self.backoff(&want, reason.clone());
                    status.not_subscribed.push(NotSubscribed {
                        want,
                        reason,
                        retry_at: None,
                    });
                }
            }
        }
        status.total_cost = total_cost;
        status.max_total_cost = max_total_cost;
        status.last_reconcile = Some(Utc::now());
        Ok(status)
    }

    /// Counts by status, for metrics.
    pub fn summary(status: &Status) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("subscribed", status.subscribed.len()),
            ("not_subscribed", status.not_subscribed.len()),
            ("unwanted", status.unwanted.len()),
        ])
    }
}
