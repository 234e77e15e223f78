//! Operator endpoints: `/healthz` (the process answers), `/readyz` (it can do its job: the
//! store and the bus answer) and `/metrics` (Prometheus text).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/admin/subscriptions", get(subscriptions))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let store = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    };
    let bus = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.events.bus().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    };
    let (store, bus) = tokio::join!(store, bus);
    let shutting_down = state.shutdown.is_cancelled();
    let ready = store.is_ok() && bus.is_ok() && !shutting_down;
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "store": { "backend": state.store.backend().as_str(), "status": show(&store) },
        "bus": { "backend": state.events.bus().kind(), "status": show(&bus) },
        "shutting_down": shutting_down,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// What the subscription manager keeps, what it could not and why.
async fn subscriptions(State(state): State<AppState>) -> Response {
    match state.subscription_status().await {
        Some(s) => axum::Json(s).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "the subscription manager has not reported yet"})),
        )
            .into_response(),
    }
}
