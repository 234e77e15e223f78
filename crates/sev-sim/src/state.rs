//! Everything the simulator remembers, behind one lock (never held across an `.await`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::SimConfig;
use crate::world::World;

#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub client_id: String,
    /// `None` for app tokens.
    pub user_id: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    /// The refresh token issued with it (user tokens).
    pub refresh_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshInfo {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
}

/// Faults injected through the control API.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The next N Helix calls answer with this status.
    pub helix_status: Option<(u16, u32)>,
}

pub struct SimState {
    pub config: SimConfig,
    pub world: World,
    pub codes: HashMap<String, Grant>,
    pub tokens: HashMap<String, TokenInfo>,
    pub refresh: HashMap<String, RefreshInfo>,
    pub buckets: HashMap<String, Bucket>,
    pub faults: Faults,
    pub eventsub: crate::eventsub::Registry,
    pub faults_delivery: crate::delivery::DeliveryFaults,
    /// One delivery worker per destination (see `delivery::enqueue`).
    pub queues: HashMap<
        String,
        tokio::sync::mpsc::UnboundedSender<(crate::delivery::Pending, std::time::Duration)>,
    >,
    /// Where the simulator listens (for `reconnect_url`s).
    pub base_url: String,
}

pub type Shared = Arc<Mutex<SimState>>;

pub fn lock(state: &Shared) -> MutexGuard<'_, SimState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Twitch-looking random tokens: 30 lowercase letters and digits.
pub fn random_token() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..30)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        Self {
            world: World::generate(config.seed),
            config,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            refresh: HashMap::new(),
            buckets: HashMap::new(),
            faults: Faults::default(),
            eventsub: crate::eventsub::Registry::default(),
            faults_delivery: crate::delivery::DeliveryFaults::default(),
            queues: HashMap::new(),
            base_url: String::new(),
        }
    }

    /// A valid (known, unexpired) token.
    pub fn token(&self, token: &str) -> Option<&TokenInfo> {
        self.tokens.get(token).filter(|t| t.expires_at > Utc::now())
    }

    pub fn issue_user_token(
        &mut self,
        client_id: &str,
        user_id: &str,
        scopes: Vec<String>,
    ) -> (String, String, i64) {
        let access = random_token();
        let refresh = random_token();
        let ttl = self.config.user_token_ttl;
        self.tokens.insert(
            access.clone(),
            TokenInfo {
                client_id: client_id.into(),
                user_id: Some(user_id.into()),
                scopes: scopes.clone(),
                expires_at: Utc::now() + ttl,
                refresh_token: Some(refresh.clone()),
            },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshInfo {
                client_id: client_id.into(),
                user_id: user_id.into(),
                scopes,
            },
        );
        (access, refresh, ttl.num_seconds())
    }

    pub fn issue_app_token(&mut self, client_id: &str) -> (String, i64) {
        let access = random_token();
        let ttl = self.config.app_token_ttl;
        self.tokens.insert(
            access.clone(),
            TokenInfo {
                client_id: client_id.into(),
                user_id: None,
                scopes: Vec::new(),
                expires_at: Utc::now() + ttl,
                refresh_token: None,
            },
        );
        (access, ttl.num_seconds())
    }

    /// Takes one point from the token's bucket; `Err` with the bucket when it is empty.
    pub fn take_rate_point(&mut self, key: &str) -> Result<Bucket, Bucket> {
        let now = Utc::now();
        let limit = i64::from(self.config.rate_limit_per_minute);
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            remaining: limit,
            reset_at: now + Duration::minutes(1),
        });
        if bucket.reset_at <= now {
            *bucket = Bucket {
                remaining: limit,
                reset_at: now + Duration::minutes(1),
            };
        }
        if bucket.remaining <= 0 {
            return Err(*bucket);
        }
        bucket.remaining -= 1;
        Ok(*bucket)
    }
}
