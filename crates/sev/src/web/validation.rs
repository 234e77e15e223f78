//! Twitch asks apps to validate user tokens at start and hourly (PLATFORM.md §1). A token
//! Twitch no longer accepts, and cannot be refreshed, means the user revoked sev (or Twitch
//! did): every session of that user ends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sev_twitch::oauth::OAuthError;

use crate::state::AppState;

/// Tokens not validated for this long are validated again.
pub const VALIDATE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// How often the task looks for tokens that are due.
const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// Sessions handled per sweep; the rest wait for the next one.
const SWEEP_LIMIT: u32 = 1000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub valid: usize,
    pub refreshed: usize,
    /// Users signed out everywhere.
    pub signed_out: Vec<String>,
    /// Twitch could not be asked (left for the next sweep).
    pub unknown: usize,
}

/// Validates every session whose token was last validated more than an hour before `now`.
pub async fn validate_due(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Report, sev_store::StoreError> {
    let web = &state.web;
    let store = &state.store;
    let mut report = Report::default();
    for s in store
        .sessions_to_validate(now - VALIDATE_EVERY, SWEEP_LIMIT)
        .await?
    {
        if report.signed_out.contains(&s.user_id) {
            continue;
        }
        let revoked = match web.sealer.open(&s.access_token) {
            Err(e) => {
                // Sealed with another key: the session cannot act for its user any more.
                tracing::warn!(user_id = %s.user_id, error = %e, "ending a session whose token cannot be opened");
                store.delete_session(&s.id).await?;
                continue;
            }
            Ok(access) => match web.oauth.validate(&access).await {
                Ok(_) => {
                    store.mark_session_validated(&s.id, now).await?;
                    report.valid += 1;
                    false
                }
                Err(OAuthError::InvalidToken) => {
                    // Expired access tokens fail validation too: a refresh tells the two apart.
                    let refreshed = match web.sealer.open(&s.refresh_token) {
                        Ok(r) => web.oauth.refresh(&r).await,
                        Err(_) => Err(OAuthError::InvalidToken),
                    };
                    match refreshed {
                        Ok(t) => {
                            store
                                .update_session_tokens(
                                    &s.id,
                                    &web.sealer.seal(&t.access_token),
                                    &web.sealer.seal(&t.refresh_token),
                                    t.expires_at,
                                )
                                .await?;
                            store.mark_session_validated(&s.id, now).await?;
                            report.refreshed += 1;
                            false
                        }
                        Err(OAuthError::InvalidToken | OAuthError::Refused(_)) => true,
                        Err(e) => {
                            tracing::warn!(error = %e, "refreshing a token failed; trying again later");
                            report.unknown += 1;
                            false
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "validating a token failed; trying again later");
                    report.unknown += 1;
                    false
                }
            },
        };
        if revoked {
            let ended = store.delete_user_sessions(&s.user_id).await?;
            tracing::info!(user_id = %s.user_id, sessions = ended, "Twitch no longer accepts this user's token; signed out everywhere");
            report.signed_out.push(s.user_id.clone());
        }
    }
    Ok(report)
}

/// Validates due tokens every few minutes until shutdown; also drops unfinished sign-ins.
pub async fn run(state: AppState, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        match validate_due(&state, now).await {
            Ok(r) if r != Report::default() => tracing::info!(
                valid = r.valid,
                refreshed = r.refreshed,
                signed_out = r.signed_out.len(),
                unknown = r.unknown,
                "validated user tokens"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "token validation sweep failed"),
        }
        let stale = now - chrono::Duration::minutes(super::session::LOGIN_MINUTES);
        if let Err(e) = state.store.prune_login_states(stale).await {
            tracing::warn!(error = %e, "pruning unfinished sign-ins failed");
        }
    }
}
