//! sev's storage: one [`Store`] interface with two backends picked by the URL scheme,
//! SQLite (`sqlite:`, the embedded default) and PostgreSQL (`postgres://`, for several
//! instances), plus the group-committed [`EventLog`] that every event write goes through.
//!
//! Both backends apply their own migrations (`migrations/{sqlite,postgres}`) at connect time,
//! keep equivalent schemas and store timestamps in UTC. The same test suite
//! (`tests/store_suite.rs`) runs unchanged against both.

mod event_log;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use event_log::{EventLog, EventLogConfig, EventLogError};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL's scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::InvalidUrl(format!(
                "unsupported scheme {scheme:?}: use sqlite: or postgres://"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// An event about to enter a streamer's log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: uuid::Uuid,
    /// The Twitch user id of the streamer whose log this belongs to.
    pub streamer_id: String,
    /// What happened, e.g. `stream.online`.
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// Keys that identify this event across redeliveries: its EventSub message id, and
    /// semantic keys for the same thing arriving by another path. When any of them is already
    /// stored, the event is a duplicate and nothing is written (its new keys then point at the
    /// stored event too).
    pub dedupe_keys: Vec<String>,
    pub payload: serde_json::Value,
}

/// An event as stored, with its place in the streamer's log.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StoredEvent {
    pub streamer_id: String,
    /// The streamer's cursor: 1 for the first event, then +1 for each one after.
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// A streamer sev has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Streamer {
    pub id: String,
    pub login: String,
    pub display_name: String,
}

/// A sign-in in progress: the OAuth `state` sent to Twitch and the browser it was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginState {
    pub state: String,
    /// A hash of the nonce cookie set in the browser that started the sign-in.
    pub browser: String,
    /// Where to go once signed in (a path on this site).
    pub return_to: String,
    /// The streamer id this sign-in turns broadcaster mode on for.
    pub consent_for: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A signed-in browser. The store sees only a hash of the cookie (`id`) and tokens the app
/// has already sealed (encrypted); it never holds either in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    /// The token state-changing forms must carry.
    pub csrf: String,
    pub access_token: String,
    pub refresh_token: String,
    pub token_expires_at: DateTime<Utc>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// When Twitch last confirmed the token (sign-in, or the hourly validation).
    pub validated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("scopes", &self.scopes)
            .field("validated_at", &self.validated_at)
            .finish_non_exhaustive()
    }
}

/// What became of one [`NewEvent`] in an append.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Stored now; it is durable when the append returns.
    Stored(StoredEvent),
    /// Its dedupe key was already stored: nothing was written.
    Duplicate { streamer_id: String, seq: i64 },
}

/// A page of a streamer's log after a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    /// Events right after the cursor are gone (pruned by retention): the reader missed some.
    pub gap: bool,
    /// The newest cursor of the streamer (0 when the log is empty).
    pub last_seq: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("database unreachable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another writer stored one of the batch's keys at the same moment; retrying the batch
    /// sees it and reports a duplicate.
    #[error("a concurrent writer stored the same event; retry")]
    Conflict,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => Self::Unavailable(e),
            e => Self::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage interface. Every method is one use case; backends hide their SQL.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;

    /// Appends a batch in one transaction: all of it is durable, or none of it.
    /// Outcomes come back in input order. Callers normally go through [`EventLog`], which
    /// gathers concurrent appends into such batches (group commit).
    async fn append_batch(&self, batch: &[NewEvent]) -> Result<Vec<Appended>>;

    /// Up to `limit` events of a streamer with `seq > after`, oldest first.
    async fn events_after(&self, streamer_id: &str, after: i64, limit: u32) -> Result<EventPage>;

    /// The newest `limit` events of a streamer, oldest first.
    async fn recent_events(&self, streamer_id: &str, limit: u32) -> Result<Vec<StoredEvent>>;

    /// Deletes events (and their dedupe keys) received before `cutoff`; returns how many events.
    async fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;

    /// Records (or refreshes) a streamer's login and name.
    async fn upsert_streamer(&self, streamer: &Streamer) -> Result<()>;

    /// The streamer with this login (case-insensitive); the most recently seen one if a login
    /// moved between accounts.
    async fn streamer_by_login(&self, login: &str) -> Result<Option<Streamer>>;

    /// Records a signed-in user (or refreshes their login, name and last visit).
    async fn upsert_user(&self, user: &Streamer) -> Result<()>;

    /// A signed-in user by id.
    async fn user(&self, id: &str) -> Result<Option<Streamer>>;

    /// Adds a favorite streamer for a user (no-op when already there).
    async fn add_favorite(&self, user_id: &str, streamer_id: &str) -> Result<()>;

    async fn remove_favorite(&self, user_id: &str, streamer_id: &str) -> Result<()>;

    /// The user's favorite streamer ids, oldest first.
    async fn favorites(&self, user_id: &str) -> Result<Vec<String>>;

    /// Every streamer some user seen since `active_since` has as a favorite: what sev keeps
    /// subscriptions for.
    async fn wanted_streamers(&self, active_since: DateTime<Utc>) -> Result<Vec<String>>;

    /// The user's favorite streamers that sev knows by name, oldest favorite first.
    async fn favorite_streamers(&self, user_id: &str) -> Result<Vec<Streamer>>;

    /// Records a sign-in in progress.
    async fn put_login_state(&self, login: &LoginState) -> Result<()>;

    /// Removes and returns a sign-in in progress: each `state` can be used once.
    async fn take_login_state(&self, state: &str) -> Result<Option<LoginState>>;

    /// Deletes sign-ins started before `cutoff` and never finished; returns how many.
    async fn prune_login_states(&self, cutoff: DateTime<Utc>) -> Result<u64>;

    async fn create_session(&self, session: &Session) -> Result<()>;

    async fn session(&self, id: &str) -> Result<Option<Session>>;

    /// Ends one session; returns whether it existed.
    async fn delete_session(&self, id: &str) -> Result<bool>;

    /// Ends every session of a user (signed out everywhere); returns how many.
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;

    /// Stores refreshed (sealed) tokens for a session.
    async fn update_session_tokens(
        &self,
        id: &str,
        access_token: &str,
        refresh_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Up to `limit` sessions whose token was last validated before `before`, oldest first.
    async fn sessions_to_validate(&self, before: DateTime<Utc>, limit: u32)
    -> Result<Vec<Session>>;

    async fn mark_session_validated(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    /// Sessions of users who have this streamer as a favorite and granted `user:read:chat`:
    /// who can run the streamer's chat reader. Most recently validated first.
    async fn chat_reader_sessions(&self, streamer_id: &str) -> Result<Vec<Session>>;

    /// Records that a user turned on broadcaster mode for a channel with these scopes.
    async fn grant_consent(
        &self,
        user_id: &str,
        streamer_id: &str,
        scopes: &[String],
    ) -> Result<()>;

    /// Turns broadcaster mode off for a user and channel.
    async fn revoke_consent(&self, user_id: &str, streamer_id: &str) -> Result<()>;

    /// Every (user id, streamer id) with broadcaster mode on: what the consent tier subscribes.
    async fn consent_grants(&self) -> Result<Vec<(String, String)>>;

    /// Whether this user may see this channel's consent-tier events.
    async fn has_consent(&self, user_id: &str, streamer_id: &str) -> Result<bool>;

    /// Takes the lease `name` for `holder` for `ttl` if nobody else holds it (free, expired,
    /// or held by this same holder before a restart); returns its new fence, or `None` when
    /// someone else holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<i64>>;

    /// Extends a lease this holder still holds with this fence; `false`: it was lost.
    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        ttl: std::time::Duration,
    ) -> Result<bool>;

    /// Gives a lease up at once (a clean shutdown), so another instance takes it now.
    async fn release_lease(&self, name: &str, holder: &str, fence: i64) -> Result<()>;

    /// How many unexpired leases have names starting with `prefix` (live instances).
    async fn count_leases(&self, prefix: &str) -> Result<i64>;

    /// Records a shared fact (JSON) under `name`, replacing the previous one.
    async fn put_app_state(&self, name: &str, value: &serde_json::Value) -> Result<()>;

    /// The shared fact recorded under `name`, if any.
    async fn app_state(&self, name: &str) -> Result<Option<serde_json::Value>>;

    /// Closes the connections; later calls fail.
    async fn close(&self);
}

/// Both databases keep microseconds; events handed back from an append are truncated the same
/// way, so they equal what a later read returns.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Connects to the database the URL names and applies its migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    Ok(match Backend::from_url(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect(url).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect(url).await?),
    })
}

/// The work plan shared by both backends' `append_batch`, so that they agree on what a
/// duplicate is and take their locks in one order (dedupe keys sorted, then streamers sorted),
/// which keeps concurrent writers on PostgreSQL free of deadlocks.
pub(crate) mod plan {
    use super::NewEvent;

    use std::collections::HashMap;

    /// Every key of the batch, once, sorted.
    pub fn distinct_keys(batch: &[NewEvent]) -> Vec<&str> {
        let mut keys: Vec<&str> = batch
            .iter()
            .flat_map(|e| e.dedupe_keys.iter().map(String::as_str))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Decides, in batch order, which events are duplicates: of a stored event (`known`: key →
    /// streamer and seq), or of an earlier event of this batch (seq still unknown).
    pub fn duplicates(
        batch: &[NewEvent],
        known: &HashMap<String, (String, i64)>,
    ) -> Vec<super::Dup> {
        let mut taken: HashMap<&str, &str> = HashMap::new();
        batch
            .iter()
            .map(|e| {
                let hit = e.dedupe_keys.iter().find_map(|k| match known.get(k) {
                    Some((streamer, seq)) => Some((streamer.clone(), Some(*seq), k.clone())),
                    None => taken
                        .get(k.as_str())
                        .map(|streamer| ((*streamer).to_owned(), None, k.clone())),
                });
                if hit.is_none() {
                    for k in &e.dedupe_keys {
                        taken.insert(k, &e.streamer_id);
                    }
                }
                hit
            })
            .collect()
    }

    /// The rows to add to `event_dedupe`: every key not stored before, pointing at the event
    /// it now stands for (the event itself, or the one it duplicates), sorted by key.
    pub fn key_rows(
        batch: &[NewEvent],
        known: &HashMap<String, (String, i64)>,
        outcomes: &[super::Appended],
    ) -> Vec<(String, String, i64)> {
        let mut rows: HashMap<&str, (String, i64)> = HashMap::new();
        for (e, o) in batch.iter().zip(outcomes) {
            let target = match o {
                super::Appended::Stored(s) => (s.streamer_id.clone(), s.seq),
                super::Appended::Duplicate { streamer_id, seq } => (streamer_id.clone(), *seq),
            };
            for k in &e.dedupe_keys {
                if !known.contains_key(k) {
                    rows.entry(k.as_str()).or_insert_with(|| target.clone());
                }
            }
        }
        let mut rows: Vec<(String, String, i64)> = rows
            .into_iter()
            .map(|(k, (s, q))| (k.to_owned(), s, q))
            .collect();
        rows.sort_unstable();
        rows
    }

    /// The streamers of the events to store with how many each, sorted by streamer id.
    pub fn streamer_counts(batch: &[NewEvent], store: &[bool]) -> Vec<(String, i64)> {
        let mut counts = std::collections::BTreeMap::<&str, i64>::new();
        for (e, _) in batch.iter().zip(store).filter(|(_, s)| **s) {
            *counts.entry(e.streamer_id.as_str()).or_default() += 1;
        }
        counts.into_iter().map(|(s, n)| (s.to_owned(), n)).collect()
    }
}

/// A duplicate found while claiming keys: the stored event's streamer and seq (unknown when
/// it is stored by this same batch), and the key that matched.
pub(crate) type Dup = Option<(String, Option<i64>, String)>;

/// Splits a batch's outcomes after the keys were claimed: `dup[i]` is `Some` for duplicates.
/// Duplicates of an event stored in the same batch are resolved to that event's seq.
pub(crate) fn finish_outcomes(
    batch: &[NewEvent],
    dup: Vec<Dup>,
    stored: Vec<Option<StoredEvent>>,
) -> Result<Vec<Appended>> {
    let mut seq_by_key = std::collections::HashMap::new();
    for (e, s) in batch.iter().zip(&stored) {
        if let Some(s) = s {
            for k in &e.dedupe_keys {
                seq_by_key.insert(k.as_str(), s.seq);
            }
        }
    }
    dup.into_iter()
        .zip(stored)
        .map(|(d, s)| match (d, s) {
            (_, Some(s)) => Ok(Appended::Stored(s)),
            (Some((streamer_id, Some(seq), _)), None) => {
                Ok(Appended::Duplicate { streamer_id, seq })
            }
            (Some((streamer_id, None, key)), None) => {
                let seq = seq_by_key
                    .get(key.as_str())
                    .copied()
                    .ok_or_else(|| StoreError::Corrupt("dedupe key without an event".into()))?;
                Ok(Appended::Duplicate { streamer_id, seq })
            }
            (None, None) => Err(StoreError::Corrupt(
                "event neither stored nor duplicate".into(),
            )),
        })
        .collect()
}
