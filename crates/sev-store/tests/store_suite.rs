//! One storage suite, run unchanged against every backend: each test below is instantiated
//! once per backend (`sqlite::…` and `postgres::…` in the test output).
//!
//! PostgreSQL comes from `SEV_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); every test gets a database of its own,
//! dropped at the end. The README's test command starts PostgreSQL when it is not running.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::{TimeZone, Utc};
use serde_json::json;
use sev_store::{Appended, EventLog, EventLogConfig, NewEvent, Store, StoredEvent};
use sqlx::Connection;

struct TestDb {
    url: String,
    store: Arc<dyn Store>,
    drop: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("sev.db").display());
        let store = sev_store::connect(&url).await?;
        Ok(Self {
            url,
            store,
            drop: None,
            _dir: Some(dir),
        })
    }

    async fn postgres() -> Result<Self> {
        let admin = std::env::var("SEV_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("sev_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .with_context(|| format!("PostgreSQL at {admin} (set SEV_TEST_POSTGRES_URL)"))?;
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let mut url = url::Url::parse(&admin)?;
        url.set_path(&name);
        let url = url.to_string();
        let store = sev_store::connect(&url).await?;
        Ok(Self {
            url,
            store,
            drop: Some((admin, name)),
            _dir: None,
        })
    }

    async fn reopen(&mut self) -> Result<()> {
        self.store.close().await;
        self.store = sev_store::connect(&self.url).await?;
        Ok(())
    }

    async fn finish(self) -> Result<()> {
        self.store.close().await;
        if let Some((admin, name)) = self.drop {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

fn event(streamer: &str, kind: &str, key: Option<&str>, n: i64) -> NewEvent {
    NewEvent {
        id: uuid::Uuid::now_v7(),
        streamer_id: streamer.into(),
        kind: kind.into(),
        occurred_at: Utc
            .timestamp_opt(1_767_000_000 + n, 123_456_789)
            .single()
            .unwrap_or_default(),
        dedupe_keys: key.map(str::to_owned).into_iter().collect(),
        payload: json!({ "n": n, "text": "Héllo \"raid\" <b>" }),
    }
}

fn stored(outcomes: &[Appended]) -> Vec<&StoredEvent> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Appended::Stored(e) => Some(e),
            Appended::Duplicate { .. } => None,
        })
        .collect()
}

async fn appends_get_dense_cursors_per_streamer(db: &mut TestDb) -> Result<()> {
    let batch = vec![
        event("100", "stream.online", None, 1),
        event("200", "channel.raid", None, 2),
        event("100", "channel.update", None, 3),
        event("100", "stream.offline", None, 4),
    ];
    let out = db.store.append_batch(&batch).await?;
    let seqs: Vec<(String, i64)> = stored(&out)
        .iter()
        .map(|e| (e.streamer_id.clone(), e.seq))
        .collect();
    ensure!(
        seqs == [
            ("100".into(), 1),
            ("200".into(), 1),
            ("100".into(), 2),
            ("100".into(), 3)
        ],
        "outcomes in input order with per-streamer cursors: {seqs:?}"
    );
    let more = db.store.append_batch(&[event("100", "x", None, 5)]).await?;
    ensure!(
        stored(&more)[0].seq == 4,
        "the next append continues the cursor"
    );

    let page = db.store.events_after("100", 0, 100).await?;
    let kinds: Vec<&str> = page.events.iter().map(|e| e.kind.as_str()).collect();
    ensure!(
        kinds == ["stream.online", "channel.update", "stream.offline", "x"],
        "{kinds:?}"
    );
    ensure!(!page.gap && page.last_seq == 4);
    Ok(())
}

async fn stored_events_read_back_equal(db: &mut TestDb) -> Result<()> {
    let out = db
        .store
        .append_batch(&[event("7", "channel.cheer", Some("m-1"), 9)])
        .await?;
    let written = stored(&out)[0].clone();
    let read = db.store.events_after("7", 0, 10).await?.events;
    ensure!(
        read == [written.clone()],
        "read {read:?} != written {written:?}"
    );
    ensure!(written.payload["text"] == "Héllo \"raid\" <b>");
    ensure!(
        written.occurred_at.timestamp_subsec_micros() == 123_456,
        "microseconds kept, in UTC"
    );
    ensure!(
        (Utc::now() - written.received_at).num_seconds().abs() < 60,
        "received_at is UTC now"
    );
    Ok(())
}

async fn a_dedupe_key_is_stored_once(db: &mut TestDb) -> Result<()> {
    let first = db
        .store
        .append_batch(&[event("1", "a", Some("msg-1"), 1)])
        .await?;
    let seq = stored(&first)[0].seq;
    // Again later, and twice within one batch.
    let again = db
        .store
        .append_batch(&[
            event("1", "a", Some("msg-1"), 1),
            event("1", "b", Some("msg-2"), 2),
            event("1", "b", Some("msg-2"), 2),
        ])
        .await?;
    ensure!(
        again[0]
            == Appended::Duplicate {
                streamer_id: "1".into(),
                seq
            },
        "{:?}",
        again[0]
    );
    let Appended::Stored(b) = &again[1] else {
        anyhow::bail!("msg-2 stored: {:?}", again[1])
    };
    ensure!(
        again[2]
            == Appended::Duplicate {
                streamer_id: "1".into(),
                seq: b.seq
            },
        "{:?}",
        again[2]
    );
    // And after a restart.
    db.reopen().await?;
    let after_restart = db
        .store
        .append_batch(&[event("1", "a", Some("msg-1"), 1)])
        .await?;
    ensure!(matches!(after_restart[0], Appended::Duplicate { seq: s, .. } if s == seq));
    let page = db.store.events_after("1", 0, 10).await?;
    ensure!(
        page.events.len() == 2 && page.last_seq == 2,
        "duplicates take no cursor: {page:?}"
    );
    Ok(())
}

async fn any_shared_key_makes_a_duplicate(db: &mut TestDb) -> Result<()> {
    let keyed = |keys: &[&str]| {
        let mut e = event("3", "raid.in", None, 1);
        e.dedupe_keys = keys.iter().map(|k| (*k).to_owned()).collect();
        e
    };
    // The same raid by two paths: different message ids, one semantic key.
    let first = db
        .store
        .append_batch(&[keyed(&["msg:a", "raid:x"])])
        .await?;
    let seq = stored(&first)[0].seq;
    let second = db
        .store
        .append_batch(&[keyed(&["msg:b", "raid:x"])])
        .await?;
    ensure!(
        second[0]
            == Appended::Duplicate {
                streamer_id: "3".into(),
                seq
            },
        "{second:?}"
    );
    // The second path's message id now points at the same event: its redelivery is a duplicate.
    let redelivered = db.store.append_batch(&[keyed(&["msg:b"])]).await?;
    ensure!(
        redelivered[0]
            == Appended::Duplicate {
                streamer_id: "3".into(),
                seq
            },
        "{redelivered:?}"
    );
    // Within one batch too.
    let batch = db
        .store
        .append_batch(&[keyed(&["msg:c", "raid:y"]), keyed(&["msg:d", "raid:y"])])
        .await?;
    let Appended::Stored(s) = &batch[0] else {
        anyhow::bail!("{batch:?}")
    };
    ensure!(
        batch[1]
            == Appended::Duplicate {
                streamer_id: "3".into(),
                seq: s.seq
            },
        "{batch:?}"
    );
    ensure!(db.store.events_after("3", 0, 10).await?.events.len() == 2);
    Ok(())
}

async fn a_failed_batch_leaves_nothing(db: &mut TestDb) -> Result<()> {
    db.store.append_batch(&[event("5", "ok", None, 1)]).await?;
    let good = event("5", "good", Some("k-good"), 2);
    let mut clash = event("6", "clash", None, 3);
    clash.id = good.id; // the same event id twice violates a unique constraint
    let res = db.store.append_batch(&[good.clone(), clash]).await;
    ensure!(res.is_err(), "a batch with a constraint violation fails");
    let page = db.store.events_after("5", 0, 10).await?;
    ensure!(
        page.events.len() == 1 && page.last_seq == 1,
        "no partial state: {page:?}"
    );
    ensure!(db.store.events_after("6", 0, 10).await?.last_seq == 0);
    // The key of the failed batch was not kept either: the event can be stored now.
    let retry = db.store.append_batch(&[good]).await?;
    ensure!(
        matches!(&retry[0], Appended::Stored(e) if e.seq == 2),
        "{retry:?}"
    );
    Ok(())
}

async fn pages_recent_events_and_gaps(db: &mut TestDb) -> Result<()> {
    let batch: Vec<NewEvent> = (1..=10).map(|n| event("9", "e", None, n)).collect();
    db.store.append_batch(&batch).await?;
    let page = db.store.events_after("9", 3, 4).await?;
    let seqs: Vec<i64> = page.events.iter().map(|e| e.seq).collect();
    ensure!(
        seqs == [4, 5, 6, 7] && !page.gap && page.last_seq == 10,
        "{seqs:?}"
    );
    let tail = db.store.events_after("9", 10, 4).await?;
    ensure!(
        tail.events.is_empty() && !tail.gap,
        "caught up is not a gap"
    );
    let recent: Vec<i64> = db
        .store
        .recent_events("9", 3)
        .await?
        .iter()
        .map(|e| e.seq)
        .collect();
    ensure!(
        recent == [8, 9, 10],
        "newest three, oldest first: {recent:?}"
    );
    ensure!(db.store.events_after("unknown", 0, 10).await?.last_seq == 0);

    // Retention drops everything received so far; a reader at cursor 2 missed events.
    let pruned = db
        .store
        .prune_before(Utc::now() + chrono::Duration::seconds(1))
        .await?;
    ensure!(pruned >= 10, "pruned {pruned}");
    db.store.append_batch(&[event("9", "e", None, 11)]).await?;
    let page = db.store.events_after("9", 2, 10).await?;
    ensure!(page.gap, "events 3..10 are gone: {page:?}");
    ensure!(
        page.events.iter().map(|e| e.seq).collect::<Vec<_>>() == [11],
        "cursors never restart"
    );
    ensure!(
        !db.store.events_after("9", 10, 10).await?.gap,
        "a reader at 10 missed nothing"
    );
    Ok(())
}

async fn group_commit_keeps_each_writers_order(db: &mut TestDb) -> Result<()> {
    let (log, writer) = EventLog::start(
        db.store.clone(),
        EventLogConfig {
            max_batch: 64,
            queue: 256,
        },
    );
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..50 {
                let mut e = event("42", "e", Some(&format!("w{w}-{n}")), n);
                e.payload = json!({ "writer": w, "n": n });
                match log.append(e).await? {
                    Appended::Stored(s) => seqs.push(s.seq),
                    other => anyhow::bail!("unexpected {other:?}"),
                }
            }
            Ok::<_, anyhow::Error>(seqs)
        }));
    }
    for t in tasks {
        let seqs = t.await??;
        ensure!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a writer's events keep their order"
        );
    }
    let all = log.events_after("42", 0, 1000).await?;
    let seqs: Vec<i64> = all.events.iter().map(|e| e.seq).collect();
    ensure!(
        seqs == (1..=400).collect::<Vec<_>>(),
        "400 events, dense cursors"
    );
    drop(log);
    tokio::time::timeout(Duration::from_secs(5), writer).await??;
    Ok(())
}

async fn streamers_are_found_by_login(db: &mut TestDb) -> Result<()> {
    use sev_store::Streamer;
    let s = |id: &str, login: &str| Streamer {
        id: id.into(),
        login: login.into(),
        display_name: login.to_uppercase(),
    };
    db.store.upsert_streamer(&s("4242", "FavStreamer")).await?;
    let stored = Streamer {
        id: "4242".into(),
        login: "favstreamer".into(),
        display_name: "FAVSTREAMER".into(),
    };
    ensure!(
        db.store.streamer_by_login("favstreamer").await? == Some(stored),
        "logins are kept lowercase"
    );
    ensure!(
        db.store
            .streamer_by_login("FAVSTREAMER")
            .await?
            .map(|x| x.id)
            == Some("4242".into()),
        "case-insensitive"
    );
    // A rename: the login now belongs to the account that has it.
    db.store.upsert_streamer(&s("4242", "renamed")).await?;
    ensure!(db.store.streamer_by_login("favstreamer").await?.is_none());
    ensure!(db.store.streamer_by_login("renamed").await?.map(|x| x.id) == Some("4242".into()));
    ensure!(db.store.streamer_by_login("nobody").await?.is_none());
    Ok(())
}

async fn favorites_make_the_wanted_set(db: &mut TestDb) -> Result<()> {
    use sev_store::Streamer;
    let user = |id: &str| Streamer {
        id: id.into(),
        login: format!("user{id}"),
        display_name: format!("User{id}"),
    };
    db.store.upsert_user(&user("1")).await?;
    db.store.upsert_user(&user("2")).await?;
    db.store.add_favorite("1", "4242").await?;
    db.store.add_favorite("1", "4243").await?;
    db.store.add_favorite("1", "4243").await?; // twice is once
    db.store.add_favorite("2", "4242").await?;
    ensure!(db.store.favorites("1").await? == ["4242", "4243"]);
    let since = Utc::now() - chrono::Duration::hours(1);
    ensure!(
        db.store.wanted_streamers(since).await? == ["4242", "4243"],
        "one entry per streamer, however many fans"
    );
    db.store.remove_favorite("1", "4243").await?;
    ensure!(db.store.wanted_streamers(since).await? == ["4242"]);
    ensure!(
        db.store
            .wanted_streamers(Utc::now() + chrono::Duration::hours(1))
            .await?
            .is_empty(),
        "inactive users want nothing"
    );
    ensure!(
        db.store.add_favorite("nobody", "4242").await.is_err(),
        "favorites belong to known users"
    );
    Ok(())
}

async fn two_writers_racing_on_the_same_events_store_each_once(db: &mut TestDb) -> Result<()> {
    // Two instances receiving the same deliveries at the same moment.
    let other = sev_store::connect(&db.url).await?;
    let (a, wa) = EventLog::start(
        db.store.clone(),
        EventLogConfig {
            max_batch: 16,
            queue: 64,
        },
    );
    let (b, wb) = EventLog::start(
        other.clone(),
        EventLogConfig {
            max_batch: 16,
            queue: 64,
        },
    );
    let run = |log: EventLog| {
        tokio::spawn(async move {
            let mut out = Vec::new();
            for n in 0..200 {
                let e = event("77", "e", Some(&format!("race-{n}")), n);
                out.push(match log.append(e).await? {
                    Appended::Stored(s) => s.seq,
                    Appended::Duplicate { seq, .. } => seq,
                });
            }
            Ok::<_, anyhow::Error>(out)
        })
    };
    let (ra, rb) = (run(a.clone()), run(b.clone()));
    let (sa, sb) = (ra.await??, rb.await??);
    ensure!(sa == sb, "both writers agree on every event's cursor");
    let page = db.store.events_after("77", 0, 1000).await?;
    ensure!(
        page.events.len() == 200 && page.last_seq == 200,
        "each stored once: {}",
        page.events.len()
    );
    drop((a, b));
    wa.await?;
    wb.await?;
    other.close().await;
    Ok(())
}

async fn a_login_state_is_taken_once(db: &mut TestDb) -> Result<()> {
    use sev_store::LoginState;
    let now = micros_now();
    let state = |s: &str, at| LoginState {
        state: s.into(),
        browser: "browser-hash".into(),
        return_to: "/s/favstreamer".into(),
        consent_for: Some("4242".into()),
        created_at: at,
    };
    db.store.put_login_state(&state("fresh", now)).await?;
    db.store
        .put_login_state(&state("stale", now - chrono::Duration::minutes(30)))
        .await?;
    ensure!(
        db.store
            .put_login_state(&state("fresh", now))
            .await
            .is_err(),
        "a state is issued once"
    );
    ensure!(db.store.take_login_state("fresh").await? == Some(state("fresh", now)));
    ensure!(
        db.store.take_login_state("fresh").await?.is_none(),
        "a replayed state finds nothing"
    );
    ensure!(db.store.take_login_state("never-issued").await?.is_none());
    ensure!(
        db.store
            .prune_login_states(now - chrono::Duration::minutes(10))
            .await?
            == 1
    );
    ensure!(db.store.take_login_state("stale").await?.is_none());
    Ok(())
}

async fn sessions_end_one_by_one_or_all_at_once(db: &mut TestDb) -> Result<()> {
    use sev_store::{Session, Streamer};
    let now = micros_now();
    for id in ["1", "2"] {
        db.store
            .upsert_user(&Streamer {
                id: id.into(),
                login: format!("user{id}"),
                display_name: format!("User{id}"),
            })
            .await?;
    }
    let session = |id: &str, user: &str, validated| Session {
        id: id.into(),
        user_id: user.into(),
        csrf: format!("csrf-{id}"),
        access_token: "sealed-access".into(),
        refresh_token: "sealed-refresh".into(),
        token_expires_at: now + chrono::Duration::hours(4),
        scopes: vec!["user:read:chat".into(), "user:read:follows".into()],
        created_at: now,
        validated_at: validated,
    };
    let hour_ago = now - chrono::Duration::minutes(61);
    db.store
        .create_session(&session("a", "1", hour_ago))
        .await?;
    db.store.create_session(&session("b", "1", now)).await?;
    db.store
        .create_session(&session("c", "2", hour_ago))
        .await?;
    ensure!(db.store.session("a").await? == Some(session("a", "1", hour_ago)));
    ensure!(
        db.store
            .create_session(&session("x", "nobody", now))
            .await
            .is_err(),
        "sessions belong to known users"
    );

    let due = db
        .store
        .sessions_to_validate(now - chrono::Duration::hours(1), 10)
        .await?;
    let mut due: Vec<_> = due.into_iter().map(|s| s.id).collect();
    due.sort();
    ensure!(
        due == ["a", "c"],
        "only tokens not validated within the hour: {due:?}"
    );
    db.store.mark_session_validated("a", now).await?;
    db.store
        .update_session_tokens(
            "a",
            "new-access",
            "new-refresh",
            now + chrono::Duration::hours(5),
        )
        .await?;
    let a = db.store.session("a").await?.context("still there")?;
    ensure!(a.validated_at == now && a.access_token == "new-access");
    ensure!(a.refresh_token == "new-refresh" && a.csrf == "csrf-a");

    db.store.add_favorite("1", "4242").await?;
    db.store.add_favorite("2", "4242").await?;
    let mut readers: Vec<String> = db
        .store
        .chat_reader_sessions("4242")
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    readers.sort();
    ensure!(
        readers == ["a", "b", "c"],
        "every fan's session can read chat: {readers:?}"
    );
    ensure!(
        db.store.chat_reader_sessions("4243").await?.is_empty(),
        "nobody's favorite"
    );
    ensure!(db.store.delete_session("c").await?);
    ensure!(
        !db.store.delete_session("c").await?,
        "deleting twice finds nothing"
    );
    ensure!(
        db.store.delete_user_sessions("1").await? == 2,
        "signed out everywhere"
    );
    ensure!(db.store.session("a").await?.is_none() && db.store.session("b").await?.is_none());
    Ok(())
}

async fn favorite_streamers_have_names(db: &mut TestDb) -> Result<()> {
    use sev_store::Streamer;
    let s = |id: &str, login: &str| Streamer {
        id: id.into(),
        login: login.into(),
        display_name: login.to_uppercase(),
    };
    db.store.upsert_user(&s("1", "viewer1")).await?;
    db.store.upsert_streamer(&s("4243", "second")).await?;
    db.store.upsert_streamer(&s("4242", "first")).await?;
    db.store.add_favorite("1", "4243").await?;
    db.store.add_favorite("1", "4242").await?;
    let names: Vec<String> = db
        .store
        .favorite_streamers("1")
        .await?
        .into_iter()
        .map(|s| s.login)
        .collect();
    ensure!(
        names == ["second", "first"],
        "in the order they were added: {names:?}"
    );
    Ok(())
}

async fn a_lease_has_one_holder_until_it_expires(db: &mut TestDb) -> Result<()> {
    let ttl = Duration::from_millis(400);
    let a = db.store.acquire_lease("shard:0", "a", ttl).await?;
    ensure!(a == Some(1), "free: taken, fence 1");
    ensure!(
        db.store.acquire_lease("shard:0", "b", ttl).await?.is_none(),
        "held: nobody else takes it"
    );
    ensure!(db.store.renew_lease("shard:0", "a", 1, ttl).await?);
    ensure!(
        !db.store.renew_lease("shard:0", "b", 1, ttl).await?,
        "only the holder renews"
    );
    ensure!(db.store.count_leases("shard:").await? == 1);
    // The same holder (an instance restarted on the same data dir) takes it back at once.
    ensure!(db.store.acquire_lease("shard:0", "a", ttl).await? == Some(2));
    ensure!(
        !db.store.renew_lease("shard:0", "a", 1, ttl).await?,
        "the old fence is void"
    );
    db.store.release_lease("shard:0", "a", 2).await?;
    ensure!(db.store.acquire_lease("shard:0", "a", ttl).await? == Some(3));
    // Expired: another holder takes it with a higher fence, and the old one cannot renew.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let b = loop {
        if let Some(f) = db.store.acquire_lease("shard:0", "b", ttl).await? {
            break f;
        }
        ensure!(std::time::Instant::now() < deadline, "the lease expires");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ensure!(b == 4, "fenced: {b}");
    ensure!(
        !db.store.renew_lease("shard:0", "a", 3, ttl).await?,
        "the old holder lost it"
    );
    // Released: free at once.
    db.store.release_lease("shard:0", "b", 4).await?;
    ensure!(db.store.acquire_lease("shard:0", "c", ttl).await? == Some(5));
    ensure!(db.store.count_leases("instance:").await? == 0);
    ensure!(db.store.app_state("subscriptions").await?.is_none());
    db.store
        .put_app_state("subscriptions", &serde_json::json!({"streamers": 1}))
        .await?;
    db.store
        .put_app_state("subscriptions", &serde_json::json!({"streamers": 2}))
        .await?;
    ensure!(
        db.store.app_state("subscriptions").await? == Some(serde_json::json!({"streamers": 2}))
    );
    Ok(())
}

async fn ping_and_close(db: &mut TestDb) -> Result<()> {
    db.store.ping().await?;
    db.store.close().await;
    ensure!(
        db.store.ping().await.is_err(),
        "a closed store is not ready"
    );
    db.reopen().await?;
    db.store.ping().await?;
    Ok(())
}

macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() -> anyhow::Result<()> {
                    let mut db = super::TestDb::$backend().await?;
                    let result = super::$test(&mut db).await;
                    db.finish().await?;
                    result
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($test:ident),* $(,)?) => {
        suite!(sqlite: $($test),*);
        suite!(postgres: $($test),*);
    };
}

all_backends!(
    appends_get_dense_cursors_per_streamer,
    stored_events_read_back_equal,
    a_dedupe_key_is_stored_once,
    a_failed_batch_leaves_nothing,
    any_shared_key_makes_a_duplicate,
    pages_recent_events_and_gaps,
    group_commit_keeps_each_writers_order,
    streamers_are_found_by_login,
    favorites_make_the_wanted_set,
    two_writers_racing_on_the_same_events_store_each_once,
    a_login_state_is_taken_once,
    sessions_end_one_by_one_or_all_at_once,
    favorite_streamers_have_names,
    a_lease_has_one_holder_until_it_expires,
    ping_and_close,
);

/// Now, at the precision both databases keep.
fn micros_now() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now)
}
