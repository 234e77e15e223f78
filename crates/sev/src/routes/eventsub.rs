//! `POST /eventsub`: EventSub webhooks, from Twitch or from Twitch's CLI
//! (`twitch event trigger … -F http://localhost:8080/eventsub -s SECRET`).
//!
//! Verify on the raw bytes, answer challenges, normalise, persist (deduplicated by message id
//! and semantic keys, durably, across restarts and instances), and only then answer 2xx, so
//! Twitch retries whatever sev could not keep. A verified notification for a subscription sev
//! did not create is stored all the same, under its broadcaster.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use secrecy::ExposeSecret;
use sev_twitch::webhook::{self, WebhookBody};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/eventsub", post(receive))
}

fn reject(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = state.eventsub_secret.expose_secret().as_bytes();
    let verified = match webhook::verify(secret, &headers, &body, Utc::now()) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %e, "refused an EventSub webhook");
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return reject(status, &e.to_string());
        }
    };
    let parsed = match webhook::parse_body(&verified.message_type, &body) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, message_id = %verified.message_id, "malformed EventSub body");
            return reject(StatusCode::BAD_REQUEST, "malformed body");
        }
    };
    match parsed {
        WebhookBody::Challenge {
            challenge,
            subscription,
        } => {
            tracing::info!(subscription_type = %subscription.kind, id = %subscription.id, "answering an EventSub verification challenge");
            ([(header::CONTENT_TYPE, "text/plain")], challenge).into_response()
        }
        WebhookBody::Notification(n) => {
            match crate::events::store_notification(&state, &verified.message_id, &n).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => {
                    tracing::error!(error = ?e, message_id = %verified.message_id, "could not store an EventSub notification; Twitch will retry");
                    reject(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily unable to store the event",
                    )
                }
            }
        }
        WebhookBody::Revocation { subscription } => {
            tracing::warn!(subscription_type = %subscription.kind, id = %subscription.id, status = %subscription.status, "Twitch revoked an EventSub subscription");
            StatusCode::NO_CONTENT.into_response()
        }
        WebhookBody::Other { message_type, .. } => {
            tracing::info!(%message_type, "acknowledged an EventSub message of an unknown type");
            StatusCode::NO_CONTENT.into_response()
        }
    }
}
