//! The scale-out backend: PostgreSQL, shared by every instance.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, QueryBuilder, Row};

use crate::{
    Appended, Backend, EventPage, LoginState, NewEvent, Result, Session, Store, StoreError,
    StoredEvent, Streamer, finish_outcomes, micros, plan,
};

/// Bind parameters per statement stay well under both databases' limits.
const CHUNK: usize = 2000;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and applies the migrations (sqlx takes an advisory lock, so instances
    /// starting together migrate once).
    pub async fn connect(url: &str) -> Result<Self> {
        let opts =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(StoreError::Migration)?;
        Ok(Self { pool })
    }
}

fn row_to_event(row: &sqlx::postgres::PgRow) -> Result<StoredEvent> {
    let payload: String = row.try_get("payload")?;
    Ok(StoredEvent {
        streamer_id: row.try_get("streamer_id")?,
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        occurred_at: row.try_get("occurred_at")?,
        received_at: row.try_get("received_at")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?,
    })
}

const EVENT_COLUMNS: &str = "streamer_id, seq, id, kind, occurred_at, received_at, payload";

fn row_to_session(r: &sqlx::postgres::PgRow) -> Result<Session> {
    let scopes: String = r.try_get("scopes")?;
    Ok(Session {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        csrf: r.try_get("csrf")?,
        access_token: r.try_get("access_token")?,
        refresh_token: r.try_get("refresh_token")?,
        token_expires_at: r.try_get("token_expires_at")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: r.try_get("created_at")?,
        validated_at: r.try_get("validated_at")?,
    })
}

fn row_to_streamer(r: &sqlx::postgres::PgRow) -> Result<Streamer> {
    Ok(Streamer {
        id: r.try_get("id")?,
        login: r.try_get("login")?,
        display_name: r.try_get("display_name")?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn append_batch(&self, batch: &[NewEvent]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = micros(Utc::now());
        let mut tx = self.pool.begin().await?;

        // 1. Which of the batch's keys are stored already. A handful of statements per batch,
        // not per event: that is what makes group commit pay off.
        let mut known = HashMap::new();
        for chunk in plan::distinct_keys(batch).chunks(CHUNK) {
            let mut q = QueryBuilder::<sqlx::Postgres>::new(
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
                "insert into streamer_cursors (streamer_id, last_seq) values ($1, $2)
                 on conflict (streamer_id) do update set last_seq = streamer_cursors.last_seq + excluded.last_seq
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
                received_at: now,
                payload: e.payload.clone(),
            }));
        }
        for chunk in rows.chunks(CHUNK / 8) {
            let mut q = QueryBuilder::<sqlx::Postgres>::new(
                "insert into events (streamer_id, seq, id, kind, occurred_at, received_at, dedupe_key, payload) ",
            );
            q.push_values(chunk, |mut b, (e, seq)| {
                b.push_bind(&e.streamer_id)
                    .push_bind(*seq)
                    .push_bind(e.id.to_string())
                    .push_bind(&e.kind)
                    .push_bind(micros(e.occurred_at))
                    .push_bind(now)
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
            let mut q = QueryBuilder::<sqlx::Postgres>::new(
                "insert into event_dedupe (key, streamer_id, seq, created_at) ",
            );
            q.push_values(chunk, |mut b, (key, streamer, seq)| {
                b.push_bind(key)
                    .push_bind(streamer)
                    .push_bind(*seq)
                    .push_bind(now);
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
            "select {EVENT_COLUMNS} from events where streamer_id = $1 and seq > $2 order by seq limit $3"
        ))
        .bind(streamer_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let events = rows.iter().map(row_to_event).collect::<Result<Vec<_>>>()?;
        let last_seq: i64 =
            sqlx::query_scalar("select last_seq from streamer_cursors where streamer_id = $1")
                .bind(streamer_id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0);
        Ok(crate::event_log::page(events, after, last_seq))
    }

    async fn recent_events(&self, streamer_id: &str, limit: u32) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS} from events where streamer_id = $1 order by seq desc limit $2"
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
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("delete from events where received_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("delete from event_dedupe where created_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn upsert_streamer(&self, s: &Streamer) -> Result<()> {
        sqlx::query(
            "insert into streamers (id, login, display_name, updated_at) values ($1, $2, $3, $4)
             on conflict (id) do update set login = excluded.login, display_name = excluded.display_name, updated_at = excluded.updated_at",
        )
        .bind(&s.id)
        .bind(s.login.to_ascii_lowercase())
        .bind(&s.display_name)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn streamer_by_login(&self, login: &str) -> Result<Option<Streamer>> {
        let row = sqlx::query("select id, login, display_name from streamers where login = $1 order by updated_at desc limit 1")
            .bind(login.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_streamer).transpose()
    }

    async fn upsert_user(&self, u: &Streamer) -> Result<()> {
        sqlx::query(
            "insert into users (id, login, display_name, created_at, last_seen_at) values ($1, $2, $3, $4, $5)
             on conflict (id) do update set login = excluded.login, display_name = excluded.display_name, last_seen_at = excluded.last_seen_at",
        )
        .bind(&u.id)
        .bind(u.login.to_ascii_lowercase())
        .bind(&u.display_name)
        .bind(Utc::now())
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<Streamer>> {
        let row = sqlx::query("select id, login, display_name from users where id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_streamer).transpose()
    }

    async fn add_favorite(&self, user_id: &str, streamer_id: &str) -> Result<()> {
        sqlx::query(
            "insert into favorites (user_id, streamer_id, created_at) values ($1, $2, $3)
             on conflict (user_id, streamer_id) do nothing",
        )
        .bind(user_id)
        .bind(streamer_id)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_favorite(&self, user_id: &str, streamer_id: &str) -> Result<()> {
        sqlx::query("delete from favorites where user_id = $1 and streamer_id = $2")
            .bind(user_id)
            .bind(streamer_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn favorites(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "select streamer_id from favorites where user_id = $1 order by created_at, streamer_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn wanted_streamers(&self, active_since: DateTime<Utc>) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "select distinct f.streamer_id from favorites f join users u on u.id = f.user_id
             where u.last_seen_at >= $1 order by f.streamer_id",
        )
        .bind(active_since)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn favorite_streamers(&self, user_id: &str) -> Result<Vec<Streamer>> {
        let rows = sqlx::query(
            "select s.id, s.login, s.display_name from favorites f join streamers s on s.id = f.streamer_id where f.user_id = $1 order by f.created_at, f.streamer_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_streamer).collect()
    }

    async fn put_login_state(&self, l: &LoginState) -> Result<()> {
        sqlx::query("insert into login_states (state, browser, return_to, created_at, consent_for) values ($1, $2, $3, $4, $5)")
            .bind(&l.state)
            .bind(&l.browser)
            .bind(&l.return_to)
            .bind(l.created_at)
            .bind(&l.consent_for)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_login_state(&self, state: &str) -> Result<Option<LoginState>> {
        let row = sqlx::query(
            "delete from login_states where state = $1 returning state, browser, return_to, created_at, consent_for",
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
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn prune_login_states(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("delete from login_states where created_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query(
            "insert into sessions (id, user_id, csrf, access_token, refresh_token, token_expires_at, scopes, created_at, validated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.csrf)
        .bind(&s.access_token)
        .bind(&s.refresh_token)
        .bind(s.token_expires_at)
        .bind(s.scopes.join(" "))
        .bind(s.created_at)
        .bind(s.validated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        let row = sqlx::query("select * from sessions where id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_session).transpose()
    }

    async fn delete_session(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("delete from sessions where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        let done = sqlx::query("delete from sessions where user_id = $1")
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
            "update sessions set access_token = $1, refresh_token = $2, token_expires_at = $3 where id = $4",
        )
        .bind(access_token)
        .bind(refresh_token)
        .bind(expires_at)
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
            "select * from sessions where validated_at < $1 order by validated_at limit $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_session).collect()
    }

    async fn mark_session_validated(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("update sessions set validated_at = $1 where id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn chat_reader_sessions(&self, streamer_id: &str) -> Result<Vec<Session>> {
        let rows = sqlx::query(
            "select s.* from sessions s join favorites f on f.user_id = s.user_id
             where f.streamer_id = $1 and s.scopes like '%user:read:chat%'
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
            "insert into consent_grants (user_id, streamer_id, scopes, created_at) values ($1, $2, $3, $4)
             on conflict (user_id, streamer_id) do update set scopes = excluded.scopes",
        )
        .bind(user_id)
        .bind(streamer_id)
        .bind(scopes.join(" "))
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_consent(&self, user_id: &str, streamer_id: &str) -> Result<()> {
        sqlx::query("delete from consent_grants where user_id = $1 and streamer_id = $2")
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
            "select 1 as one from consent_grants where user_id = $1 and streamer_id = $2",
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
        // The database's clock decides, so instances with skewed clocks agree.
        let row = sqlx::query(
            "insert into leases (name, holder, fence, expires_at)
             values ($1, $2, 1, now() + make_interval(secs => $3))
             on conflict (name) do update set holder = excluded.holder, fence = leases.fence + 1,
                 expires_at = excluded.expires_at
             where leases.expires_at < now() or leases.holder = excluded.holder
             returning fence",
        )
        .bind(name)
        .bind(holder)
        .bind(ttl.as_secs_f64())
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
        let done = sqlx::query(
            "update leases set expires_at = now() + make_interval(secs => $1)
             where name = $2 and holder = $3 and fence = $4 and expires_at >= now()",
        )
        .bind(ttl.as_secs_f64())
        .bind(name)
        .bind(holder)
        .bind(fence)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str, fence: i64) -> Result<()> {
        sqlx::query(
            "update leases set expires_at = 'epoch' where name = $1 and holder = $2 and fence = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(fence)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn count_leases(&self, prefix: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select count(*) from leases where starts_with(name, $1) and expires_at >= now()",
        )
        .bind(prefix)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn put_app_state(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "insert into app_state (name, value, updated_at) values ($1, $2, $3)
             on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn app_state(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let value: Option<String> =
            sqlx::query_scalar("select value from app_state where name = $1")
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
