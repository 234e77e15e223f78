//! Retention: events older than the configured window are deleted every hour. Viewers whose
//! cursor predates what is left get an explicit gap (docs/api.md), never a silent skip.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::state::AppState;

const EVERY: Duration = Duration::from_secs(3600);

/// Deletes what was received before `cutoff`; returns how many events went.
pub async fn prune(state: &AppState, cutoff: DateTime<Utc>) -> Result<u64, sev_store::StoreError> {
    let n = state.store.prune_before(cutoff).await?;
    state.metrics.events_pruned.inc_by(n);
    if n > 0 {
        tracing::info!(events = n, %cutoff, "pruned events older than the retention window");
    }
    Ok(n)
}

/// Prunes now and every hour until shutdown; nothing when retention is off.
pub async fn run(state: AppState) {
    let Some(window) = state.config.retention else {
        return;
    };
    loop {
        if let Err(e) = prune(&state, Utc::now() - window).await {
            tracing::warn!(error = %e, "pruning old events failed; trying again in an hour");
        }
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
