//! Work that must have exactly one owner across all instances: each conduit shard's
//! WebSocket session, the chat readers, the subscription reconciler and the token
//! validation. Each is a lease in the shared store: taken only once expired, renewed every
//! few seconds, with a fence that grows at every taking. An instance that cannot renew a
//! lease stops that work at once, well before the lease expires and another instance may take
//! it; a dead instance's work moves when its leases expire (within [`TTL`] + [`TICK`]).
//!
//! Instances heartbeat as `instance:<id>` leases; each holds at most its fair share of the
//! work (rounded up) and gives the excess back, so work spreads as instances join.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How long a lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(15);
/// How often leases are renewed and free work is looked for.
pub const TICK: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Unit {
    Reconciler,
    Chat,
    Validation,
    Shard(u32),
}

impl Unit {
    fn name(&self) -> String {
        match self {
            Self::Reconciler => "reconciler".into(),
            Self::Chat => "chat".into(),
            Self::Validation => "validation".into(),
            Self::Shard(i) => format!("shard:{i}"),
        }
    }

    fn start(&self, state: &AppState, stop: CancellationToken) -> JoinHandle<()> {
        let state = state.clone();
        match *self {
            Self::Reconciler => tokio::spawn(crate::connector::run_reconciler(state, stop)),
            Self::Chat => tokio::spawn(crate::chat::run(state, stop)),
            Self::Validation => tokio::spawn(crate::web::validation::run(state, stop)),
            Self::Shard(i) => tokio::spawn(crate::connector::run_shard(state, i, stop)),
        }
    }
}

struct Held {
    fence: i64,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The work this deployment has.
fn units(state: &AppState) -> Vec<Unit> {
    let mut all = vec![Unit::Reconciler, Unit::Chat, Unit::Validation];
    if state.config.eventsub_transport == crate::config::EventSubTransport::Conduit {
        all.extend((0..state.config.conduit_shards).map(Unit::Shard));
    }
    all
}

/// Takes, runs, renews and gives back leased work until shutdown.
pub async fn run(state: AppState) {
    // The same id across restarts on the same data dir: a restarted instance takes its
    // work back at once instead of waiting for its old leases to expire.
    let me = match crate::config::load_or_create_secret(&state.config.data_dir, "instance-id") {
        Ok(id) => secrecy::ExposeSecret::expose_secret(&id).to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "no instance id in the data dir; using a new one");
            uuid::Uuid::new_v4().simple().to_string()
        }
    };
    let heartbeat = format!("instance:{me}");
    let all = units(&state);
    let mut beat: Option<i64> = None;
    let mut held: HashMap<Unit, Held> = HashMap::new();
    let store = state.store.clone();
    // Start the search for free work at a different unit on each instance.
    let offset = me.bytes().map(usize::from).sum::<usize>() % all.len().max(1);
    loop {
        // Heartbeat: counts this instance as live.
        beat = match beat {
            Some(f)
                if store
                    .renew_lease(&heartbeat, &me, f, TTL)
                    .await
                    .unwrap_or(false) =>
            {
                Some(f)
            }
            _ => store
                .acquire_lease(&heartbeat, &me, TTL)
                .await
                .ok()
                .flatten(),
        };

        // Renew what we hold; stop at once what we lost or what ended on its own.
        let mut lost = Vec::new();
        for (unit, h) in &held {
            let name = unit.name();
            let renewed = store.renew_lease(&name, &me, h.fence, TTL).await;
            if h.task.is_finished() || !matches!(renewed, Ok(true)) {
                if !h.task.is_finished() {
                    tracing::warn!(work = %name, result = ?renewed, "lost a lease; stopping that work");
                }
                lost.push(unit.clone());
            }
        }
        for unit in lost {
            if let Some(h) = held.remove(&unit) {
                h.stop.cancel();
                let _ = store.release_lease(&unit.name(), &me, h.fence).await;
            }
        }

        // A fair share: work spreads as instances join.
        let live = usize::try_from(store.count_leases("instance:").await.unwrap_or(1))
            .unwrap_or(1)
            .max(1);
        let share = all.len().div_ceil(live);
        if held.len() > share
            && let Some(unit) = held.keys().next().cloned()
            && let Some(h) = held.remove(&unit)
        {
            tracing::info!(work = %unit.name(), live, "giving work back to spread it");
            h.stop.cancel();
            let _ = tokio::time::timeout(Duration::from_millis(500), h.task).await;
            let _ = store.release_lease(&unit.name(), &me, h.fence).await;
        } else if held.len() < share {
            for i in 0..all.len() {
                let unit = &all[(offset + i) % all.len()];
                if held.contains_key(unit) {
                    continue;
                }
                if let Ok(Some(fence)) = store.acquire_lease(&unit.name(), &me, TTL).await {
                    tracing::info!(work = %unit.name(), fence, "took a lease");
                    let stop = state.shutdown.child_token();
                    let task = unit.start(&state, stop.clone());
                    held.insert(unit.clone(), Held { fence, stop, task });
                    if held.len() >= share {
                        break;
                    }
                }
            }
        }

        tokio::select! {
            () = state.shutdown.cancelled() => break,
            () = tokio::time::sleep(TICK) => {}
        }
    }
    // Clean shutdown: give everything back now, so others take it without waiting.
    for (unit, h) in held {
        h.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_millis(300), h.task).await;
        let _ = store.release_lease(&unit.name(), &me, h.fence).await;
    }
    if let Some(f) = beat {
        let _ = store.release_lease(&heartbeat, &me, f).await;
    }
}
