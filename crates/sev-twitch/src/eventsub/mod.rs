//! The EventSub model: subscriptions, notifications, and a typed event for every type sev
//! uses (PLATFORM.md §6), plus the chat notices.
//!
//! Parsing is tolerant by design. Unknown fields are ignored; missing optional fields take
//! their defaults; an unknown subscription type, or a known one whose payload does not fit,
//! is kept as raw JSON ([`Event::Unknown`], [`Event::Malformed`]) and never makes a message
//! fail. Twitch adds fields and types over time, and a viewer should still see *something*.

mod chat;
mod events;
mod types;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use chat::*;
pub use events::*;
pub use types::{SUBSCRIPTION_TYPES, Tier, TypeInfo, type_info};

/// An EventSub subscription as Twitch describes it in every message and Helix response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub condition: serde_json::Map<String, Value>,
    #[serde(default)]
    pub transport: Transport,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cost: i64,
}

impl Subscription {
    /// A condition field as a string (`broadcaster_user_id`, `user_id`, …).
    pub fn condition_str(&self, key: &str) -> Option<&str> {
        self.condition
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Where Twitch delivers a subscription's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transport {
    #[serde(default)]
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// Only sent when creating a webhook subscription; Twitch never echoes it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conduit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<DateTime<Utc>>,
}

/// A notification: which subscription, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub subscription: Subscription,
    pub event: Event,
    /// The event object exactly as received, for "show raw JSON" and for storage.
    pub raw_event: Value,
}

impl Notification {
    /// Parses `{"subscription": …, "event": …}` (a webhook body or a WebSocket payload).
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Wire {
            subscription: Subscription,
            event: Value,
        }
        let wire: Wire = serde_json::from_slice(body)?;
        Ok(Self::new(wire.subscription, wire.event))
    }

    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Wire {
            subscription: Subscription,
            event: Value,
        }
        let wire: Wire = serde_json::from_value(value)?;
        Ok(Self::new(wire.subscription, wire.event))
    }

    pub fn new(subscription: Subscription, raw_event: Value) -> Self {
        let event = Event::parse(&subscription.kind, &subscription.version, raw_event.clone());
        Self {
            subscription,
            event,
            raw_event,
        }
    }
}

/// The broadcaster fields most events carry ("B" in PLATFORM.md §6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Broadcaster {
    pub broadcaster_user_id: String,
    pub broadcaster_user_login: String,
    pub broadcaster_user_name: String,
}

/// The user fields ("U"); absent or null for anonymous actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub user_id: Option<String>,
    pub user_login: Option<String>,
    pub user_name: Option<String>,
}

impl User {
    /// The name to show, falling back to the login.
    pub fn display(&self) -> Option<&str> {
        self.user_name
            .as_deref()
            .or(self.user_login.as_deref())
            .filter(|s| !s.is_empty())
    }
}
