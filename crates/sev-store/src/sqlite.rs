//! The embedded backend: one SQLite file in WAL mode.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};

use crate::{
    Appended, Backend, EventPage, LoginState, NewEvent, Result, Session, Store, StoreError,
    StoredEvent, Streamer, finish_outcomes, plan,
};

/// Timestamps are stored as fixed-width UTC text, so that text order is time order.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

fn ts(t: DateTime<Utc>) -> String {
    t.format(TS_FORMAT).to_string()
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, TS_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

/// Bind parameters per statement stay well under both databases' limits.
const CHUNK: usize = 2000;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it when missing) the database file and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk when it returns, which is what "acknowledged means
            // stored" needs. Group commit pays the fsync once per batch, not per event.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migration)?;
        Ok(Self { pool })
    }
}

fn row_to_event(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent> {
    let payload: String = row.try_get("payload")?;
    Ok(StoredEvent {
        streamer_id: row.try_get("streamer_id")?,
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        occurred_at: parse_ts(row.try_get("occurred_at")?)?,
        received_at: parse_ts(row.try_get("received_at")?)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?,
    })
}

const EVENT_COLUMNS: &str = "streamer_id, seq, id, kind, occurred_at, received_at, payload";

fn row_to_session(r: &sqlx::sqlite::SqliteRow) -> Result<Session> {
    let scopes: String = r.try_get("scopes")?;
    Ok(Session {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        csrf: r.try_get("csrf")?,
        access_token: r.try_get("access_token")?,
        refresh_token: r.try_get("refresh_token")?,
        token_expires_at: parse_ts(r.try_get("token_expires_at")?)?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: parse_ts(r.try_get("created_at")?)?,
        validated_at: parse_ts(r.try_get("validated_at")?)?,
    })
}

fn row_to_streamer(r: &sqlx::sqlite::SqliteRow) -> Result<Streamer> {
    Ok(Streamer {
        id: r.try_get("id")?,
        login: r.try_get("login")?,
        display_name: r.try_get("display_name")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn append_batch(&self, batch: &[NewEvent]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads first
        // could fail with SQLITE_BUSY on upgrade instead of waiting.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;

        // 1. Which of the batch's keys are stored already. A handful of statements per batch,
        // not per event: that is what makes group commit pay off.
        let mut known = HashMap::new();
        for chunk in plan::distinct_keys(batch).chunks(CHUNK) {
            let mut q = QueryBuilder::<sqlx::Sqlite>::new(
                "select key, streamer_id, seq from event_dedupe where key in (",
            );
            let mut list = q.separated(", ");
            for k in chunk {
                list.push_bind(*k);
            }
            list.push_unseparated(")");
            for row in q.build().fetch_all(&mut *tx).await? {
                let seq: Option<i64> = row.try_get("seq")?;
                if let Some(seq) = seq {
                    known.insert(
                        row.try_get::<String, _>("key")?,
                        (row.try_get::<String, _>("streamer_id")?, seq),
                    );
                }
            }
        }
        let dup = plan::duplicates(batch, &known);

        // 2. Cursors, one statement per streamer in the batch, in a fixed order.
        let to_store: Vec<bool> = dup.iter().map(Option::is_none).collect();
        let mut next_seq = HashMap::new();
        for (streamer, n) in plan::streamer_counts(batch, &to_store) {
            let last: i64 = sqlx::query_scalar(
                "insert into streamer_cursors (streamer_id, last_seq) values (?, ?)
                 on conflict (streamer_id) do update set last_seq = last_seq + excluded.last_seq
                 returning last_seq",
            )
            .bind(&streamer)
            .bind(n)
            .fetch_one(&mut *tx)
            .await?;
            next_seq.insert(streamer, last - n + 1);
        }

        // 3. The events.
        let mut stored = Vec::with_capacity(batch.len());
        let mut rows = Vec::new();
        for (e, keep) in batch.iter().zip(&to_store) {
            if !keep {
                stored.push(None);
                continue;
            }
            let slot = next_seq
                .get_mut(&e.streamer_id)
                .ok_or_else(|| StoreError::Corrupt("no cursor for streamer".into()))?;
            let seq = *slot;
            *slot += 1;
            rows.push((e, seq));
            stored.push(Some(StoredEvent {
                streamer_id: e.streamer_id.clone(),
                seq,
                id: e.id.to_string(),
                kind: e.kind.clone(),
                occurred_at: crate::micros(e.occurred_at),
                received_at: crate::micros(now),
                payload: e.payload.clone(),
            }));
        }
        for chunk in rows.chunks(CHUNK / 8) {
            let mut q = QueryBuilder::<sqlx::Sqlite>::new(
                "insert into events (streamer_id, seq, id, kind, occurred_at, received_at, dedupe_key, payload) ",
            );
            q.push_values(chunk, |mut b, (e, seq)| {
                b.push_bind(&e.streamer_id)
                    .push_bind(*seq)
                    .push_bind(e.id.to_string())
                    .push_bind(&e.kind)
                    .push_bind(ts(e.occurred_at))
                    .push_bind(ts(now))
                    .push_bind(e.dedupe_keys.first())
                    .push_bind(e.payload.to_string());
            });
            q.build().execute(&mut *tx).await?;
        }
        let outcomes = finish_outcomes(batch, dup, stored)?;

        // 4. The new keys, each pointing at the event it stands for. A key another writer
        // stored since step 1 makes the batch fail whole, and the writer retries it.
        let keys = plan::key_rows(batch, &known, &outcomes);
        for chunk in keys.chunks(CHUNK / 4) {
            let mut q = QueryBuilder::<sqlx::Sqlite>::new(
                "insert into event_dedupe (key, streamer_id, seq, created_at) ",
            );
            q.push_values(chunk, |mut b, (key, streamer, seq)| {
                b.push_bind(key)
                    .push_bind(streamer)
                    .push_bind(*seq)
                    .push_bind(ts(now));
            });
            q.push(" on conflict (key) do nothing");
            let inserted = q.build().execute(&mut *tx).await?.rows_affected();
            if inserted != chunk.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn events_after(&self, streamer_id: &str, after: i64, limit: u32) -> Result<EventPage> {
        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS} from events where streamer_id = ? and seq > ? order by seq limit ?"
        ))
        .bind(streamer_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let events = rows.iter().map(row_to_event).collect::<Result<Vec<_>>>()?;
        let last_seq: i64 =
            sqlx::query_scalar("select last_seq from streamer_cursors where streamer_id = ?")
                .bind(streamer_id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0);
        Ok(crate::event_log::page(events, after, last_seq))
    }

    async fn recent_events(&self, streamer_id: &str, limit: u32) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS} from events where streamer_id = ? order by seq desc limit ?"
        ))
        .bind(streamer_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows.iter().map(row_to_event).collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    async fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query("delete from events where received_at < ?")
            .bind(ts(cutoff))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("delete from event_dedupe where created_at < ?")
            .bind(ts(cutoff))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn upsert_streamer(&self, s: &Streamer) -> Result<()> {
        sqlx::query(
            "insert into streamers (id, login, display_name, updated_at) values (?, ?, ?, ?)
             on conflict (id) do update set login = excluded.login, display_name = excluded.display_name, updated_at = excluded.updated_at",
        )
        .bind(&s.id)
        .bind(s.login.to_ascii_lowercase())
        .bind(&s.display_name)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn streamer_by_login(&self, login: &str) -> Result<Option<Streamer>> {
        let row = sqlx::query("select id, login, display_name from streamers where login = ? order by updated_at desc limit 1")
            .bind(login.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_streamer).transpose()
    }

    async fn upsert_user(&self, u: &Streamer) -> Result<()> {
        sqlx::query(
            "insert into users (id, login, display_name, created_at, last_seen_at) values (?, ?, ?, ?, ?)
             on conflict (id) do update set login = excluded.login, display_name = excluded.display_name, last_seen_at = excluded.last_seen_at",
        )
        .bind(&u.id)
        .bind(u.login.to_ascii_lowercase())
        .bind(&u.display_name)
        .bind(ts(Utc::now()))
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<Streamer>> {
        let row = sqlx::query("select id, login, display_name from users where id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_streamer).transpose()
    }

    async fn add_favorite(&self, user_id: &str, streamer_id: &str) -> Result<()> {
        sqlx::query(
            "insert into favorites (user_id, streamer_id, created_at) values (?, ?, ?)
             on conflict (user_id, streamer_id) do nothing",
        )
        .bind(user_id)
        .bind(streamer_id)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_favorite(&self, user_id: &str, streamer_id: &str) -> Result<()> {
        sqlx::query("delete from favorites where user_id = ? and streamer_id = ?")
            .bind(user_id)
            .bind(streamer_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn favorites(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "select streamer_id from favorites where user_id = ? order by created_at, streamer_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn wanted_streamers(&self, active_since: DateTime<Utc>) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "select distinct f.streamer_id from favorites f join users u on u.id = f.user_id
             where u.last_seen_at >= ? order by f.streamer_id",
        )
        .bind(ts(active_since))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn favorite_streamers(&self, user_id: &str) -> Result<Vec<Streamer>> {
        let rows = sqlx::query(
            "select s.id, s.login, s.display_name from favorites f join streamers s on s.id = f.streamer_id where f.user_id = ? order by f.created_at, f.streamer_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_streamer).collect()
    }

    async fn put_login_state(&self, l: &LoginState) -> Result<()> {
        sqlx::query(
            "insert into login_states (state, browser, return_to, created_at, consent_for) values (?, ?, ?, ?, ?)",
        )
        .bind(&l.state)
        .bind(&l.browser)
        .bind(&l.return_to)
        .bind(ts(l.created_at))
        .bind(&l.consent_for)
            .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_login_state(&self, state: &str) -> Result<Option<LoginState>> {
        let row = sqlx::query(
            "delete from login_states where state = ? returning state, browser, return_to, created_at, consent_for",
        )
        .bind(state)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LoginState {
                state: r.try_get("state")?,
                browser: r.try_get("browser")?,
                return_to: r.try_get("return_to")?,
                consent_for: r.try_get("consent_for")?,
                created_at: parse_ts(r.try_get("created_at")?)?,
            })
        })
        .transpose()
    }

    async fn prune_login_states(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("delete from login_states where created_at < ?")
            .bind(ts(cutoff))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query(
            "insert into sessions (id, user_id, csrf, access_token, refresh_token, token_expires_at, scopes, created_at, validated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.csrf)
        .bind(&s.access_token)
        .bind(&s.refresh_token)
        .bind(ts(s.token_expires_at))
        .bind(s.scopes.join(" "))
        .bind(ts(s.created_at))
        .bind(ts(s.validated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        let row = sqlx::query("select * from sessions where id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_session).transpose()
    }

    async fn delete_session(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("delete from sessions where id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        let done = sqlx::query("delete from sessions where user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn update_session_tokens(
        &self,
        id: &str,
        access_token: &str,
        refresh_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "update sessions set access_token = ?, refresh_token = ?, token_expires_at = ? where id = ?",
        )
        .bind(access_token)
        .bind(refresh_token)
        .bind(ts(expires_at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sessions_to_validate(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Session>> {
        let rows = sqlx::query(
            "select * from sessions where validated_at < ? order by validated_at limit ?",
        )
        .bind(ts(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_session).collect()
    }

    async fn mark_session_validated(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("update sessions set validated_at = ? where id = ?")
            .bind(ts(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn chat_reader_sessions(&self, streamer_id: &str) -> Result<Vec<Session>> {
        let rows = sqlx::query(
            "select s.* from sessions s join favorites f on f.user_id = s.user_id
             where f.streamer_id = ? and s.scopes like '%user:read:chat%'
             order by s.validated_at desc, s.id",
        )
        .bind(streamer_id)
        .fetch_all(&self.pool)
        .await?;
        let sessions: Result<Vec<Session>> = rows.iter().map(row_to_session).collect();
        // LIKE is a prefilter; the scope list decides.
        Ok(sessions?
            .into_iter()
            .filter(|s| s.scopes.iter().any(|x| x == "user:read:chat"))
            .collect())
    }

    async fn grant_consent(
        &self,
        user_id: &str,
        streamer_id: &str,
        scopes: &[String],
    ) -> Result<()> {
        sqlx::query(
            "insert into consent_grants (user_id, streamer_id, scopes, created_at) values (?, ?, ?, ?)
             on conflict (user_id, streamer_id) do update set scopes = excluded.scopes",
        )
        .bind(user_id)
        .bind(streamer_id)
        .bind(scopes.join(" "))
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_consent(&self, user_id: &str, streamer_id: &str) -> Result<()> {
        sqlx::query("delete from consent_grants where user_id = ? and streamer_id = ?")
            .bind(user_id)
            .bind(streamer_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn consent_grants(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "select user_id, streamer_id from consent_grants order by streamer_id, user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get("streamer_id")?)))
            .collect()
    }

    async fn has_consent(&self, user_id: &str, streamer_id: &str) -> Result<bool> {
        let row = sqlx::query(
            "select 1 as one from consent_grants where user_id = ? and streamer_id = ?",
        )
        .bind(user_id)
        .bind(streamer_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<i64>> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(ttl).unwrap_or_default();
        let row = sqlx::query(
            "insert into leases (name, holder, fence, expires_at) values (?, ?, 1, ?)
             on conflict (name) do update set holder = excluded.holder, fence = leases.fence + 1,
                 expires_at = excluded.expires_at
             where leases.expires_at < ? or leases.holder = excluded.holder
             returning fence",
        )
        .bind(name)
        .bind(holder)
        .bind(ts(until))
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get::<i64, _>("fence").map_err(StoreError::from))
            .transpose()
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(ttl).unwrap_or_default();
        let done = sqlx::query(
            "update leases set expires_at = ? where name = ? and holder = ? and fence = ? and expires_at >= ?",
        )
        .bind(ts(until))
        .bind(name)
        .bind(holder)
        .bind(fence)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str, fence: i64) -> Result<()> {
        sqlx::query("update leases set expires_at = ? where name = ? and holder = ? and fence = ?")
            .bind(ts(DateTime::<Utc>::UNIX_EPOCH))
            .bind(name)
            .bind(holder)
            .bind(fence)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn count_leases(&self, prefix: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select count(*) from leases where substr(name, 1, length(?)) = ? and expires_at >= ?",
        )
        .bind(prefix)
        .bind(prefix)
        .bind(ts(Utc::now()))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn put_app_state(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "insert into app_state (name, value, updated_at) values (?, ?, ?)
             on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn app_state(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let value: Option<String> =
            sqlx::query_scalar("select value from app_state where name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        value
            .map(|v| {
                serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(format!("app state: {e}")))
            })
            .transpose()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
