//! Broadcaster mode: who may see a channel's consent-tier events (follows, polls,
//! predictions, hype trains, redemptions…). PRODUCT.md: only the broadcaster and the
//! moderators who turned it on.
//!
//! A grant in the store is not enough for a moderator: anyone can *claim* to moderate a
//! channel. Twitch checks the claim when the subscription naming them as
//! `moderator_user_id` is created, so a moderator sees consent events only once that
//! subscription is enabled. The broadcaster is proven by the sign-in itself.

use axum::http::HeaderMap;

use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentState {
    Off,
    /// Granted, not (yet) confirmed by Twitch: why.
    Pending(String),
    On,
}

/// The type whose subscription proves a moderator's claim.
const PROOF_TYPE: &str = "channel.follow";

pub async fn consent_state(
    state: &AppState,
    user_id: &str,
    streamer_id: &str,
) -> Result<ConsentState, sev_store::StoreError> {
    if !state.store.has_consent(user_id, streamer_id).await? {
        return Ok(ConsentState::Off);
    }
    if user_id == streamer_id {
        return Ok(ConsentState::On);
    }
    let status = state.subscription_status().await;
    let names = |w: &sev_pipeline::manager::Want| {
        w.kind == PROOF_TYPE
            && w.streamer_id == streamer_id
            && w.moderator_id.as_deref() == Some(user_id)
    };
    let Some(status) = status else {
        return Ok(ConsentState::Pending(
            "Waiting for Twitch to confirm that you moderate this channel.".into(),
        ));
    };
    if status
        .subscribed
        .iter()
        .any(|s| names(&s.want) && s.status == "enabled")
    {
        return Ok(ConsentState::On);
    }
    Ok(ConsentState::Pending(
        match status.not_subscribed.iter().find(|s| names(&s.want)) {
            Some(s) => format!(
                "Twitch did not confirm that you moderate this channel ({}).",
                s.reason
            ),
            None => "Waiting for Twitch to confirm that you moderate this channel.".into(),
        },
    ))
}

/// Whether the viewer behind this request may see this channel's consent-tier events.
/// Anything uncertain (no session, storage trouble) means no.
pub async fn can_see_consent(state: &AppState, headers: &HeaderMap, streamer_id: &str) -> bool {
    ConsentViewer::of(state, headers, streamer_id)
        .await
        .is_some()
}

/// Who may see consent-tier events on a long-lived connection: checked again before each
/// such event is sent, so signing out or turning broadcaster mode off takes effect at once.
#[derive(Debug, Clone)]
pub struct ConsentViewer {
    session_id: String,
    user_id: String,
    streamer_id: String,
}

impl ConsentViewer {
    /// The viewer behind this request, if they may see this channel's consent-tier events now.
    pub async fn of(state: &AppState, headers: &HeaderMap, streamer_id: &str) -> Option<Self> {
        let viewer = super::session::current(headers, state).await.ok()??;
        matches!(
            consent_state(state, &viewer.user.id, streamer_id).await,
            Ok(ConsentState::On)
        )
        .then(|| Self {
            session_id: viewer.session.id,
            user_id: viewer.user.id,
            streamer_id: streamer_id.to_owned(),
        })
    }

    /// Whether they still may (still signed in, broadcaster mode still on and confirmed).
    pub async fn still(&self, state: &AppState) -> bool {
        matches!(state.store.session(&self.session_id).await, Ok(Some(_)))
            && matches!(
                consent_state(state, &self.user_id, &self.streamer_id).await,
                Ok(ConsentState::On)
            )
    }
}
