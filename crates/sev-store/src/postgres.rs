//! The scale-out backend: PostgreSQL, shared by every instance.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use crate::{
    Appended, Backend, EventPage, NewEvent, Result, Store, StoreError, StoredEvent, Streamer,
    finish_outcomes, micros, plan,
};

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
        let now = micros(Utc::now());
        let mut tx = self.pool.begin().await?;

        let mut dup: Vec<crate::Dup> = vec![None; batch.len()];
        let mut claimed: Vec<(usize, String)> = Vec::new();
        for (i, key) in plan::keys_in_lock_order(batch) {
            let got = sqlx::query(
                "insert into event_dedupe (key, streamer_id, seq, created_at) values ($1, $2, null, $3)
                 on conflict (key) do nothing",
            )
            .bind(key)
            .bind(&batch[i].streamer_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if got {
                claimed.push((i, key.to_owned()));
            } else if dup[i].is_none() {
                let row = sqlx::query("select streamer_id, seq from event_dedupe where key = $1")
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                dup[i] = Some((
                    row.try_get("streamer_id")?,
                    row.try_get("seq")?,
                    key.to_owned(),
                ));
            }
        }

        let to_store: Vec<bool> = dup.iter().map(Option::is_none).collect();
        let mut next_seq = std::collections::HashMap::new();
        for (streamer, n) in plan::streamer_counts(batch, &to_store) {
            // The row lock on the streamer's cursor orders writers from every instance.
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

        let mut stored = Vec::with_capacity(batch.len());
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
            sqlx::query(
                "insert into events (streamer_id, seq, id, kind, occurred_at, received_at, dedupe_key, payload)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&e.streamer_id)
            .bind(seq)
            .bind(e.id.to_string())
            .bind(&e.kind)
            .bind(micros(e.occurred_at))
            .bind(now)
            .bind(e.dedupe_keys.first())
            .bind(e.payload.to_string())
            .execute(&mut *tx)
            .await?;
            stored.push(Some(StoredEvent {
                streamer_id: e.streamer_id.clone(),
                seq,
                id: e.id.to_string(),
                kind: e.kind.clone(),
                occurred_at: micros(e.occurred_at),
                received_at: now,
                payload: e.payload.clone(),
            }));
        }
        let outcomes = finish_outcomes(batch, dup, stored)?;
        // Every key claimed now points at its event: a stored one, or the one it duplicates.
        for (key, streamer, seq) in crate::claimed_targets(&claimed, &outcomes) {
            sqlx::query("update event_dedupe set streamer_id = $1, seq = $2 where key = $3")
                .bind(streamer)
                .bind(seq)
                .bind(key)
                .execute(&mut *tx)
                .await?;
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
        row.map(|r| {
            Ok(Streamer {
                id: r.try_get("id")?,
                login: r.try_get("login")?,
                display_name: r.try_get("display_name")?,
            })
        })
        .transpose()
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

    async fn close(&self) {
        self.pool.close().await;
    }
}
