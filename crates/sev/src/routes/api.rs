//! The feed API (docs/api.md): a streamer's event log as JSON, and live over a WebSocket.
//!
//! - `GET /api/v1/streamers/{login}/events?after=CURSOR&limit=N`
//! - `GET /api/v1/streamers/{login}/live?after=CURSOR` (WebSocket)

use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sev_pipeline::Visibility;
use sev_store::{StoredEvent, Streamer};

use crate::state::AppState;

/// Largest page of history.
pub const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/streamers/{login}/events", get(events))
        .route("/api/v1/streamers/{login}/live", get(live))
}

/// An API error: a status and a message for the client.
#[derive(Debug, Clone, Copy)]
pub struct ApiError(StatusCode, &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

/// One feed entry as clients see it: the log's place and times, and the feed payload.
#[derive(Debug, Clone, Serialize)]
pub struct FeedItem {
    pub seq: i64,
    pub id: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    pub feed: Value,
    /// A gift bomb's recipients, when they are in the same page.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Value>,
}

fn visibility(e: &StoredEvent) -> Visibility {
    serde_json::from_value(e.payload.get("visibility").cloned().unwrap_or(Value::Null))
        .unwrap_or(Visibility::Consent)
}

/// Whether the viewer may see an event. Consent-tier events are seen only by viewers with
/// broadcaster mode on for the channel (`consent`, see `web::consent`).
pub fn visible(e: &StoredEvent, consent: bool) -> bool {
    match visibility(e) {
        Visibility::Public => true,
        Visibility::Consent => consent,
    }
}

pub fn item(e: &StoredEvent) -> FeedItem {
    FeedItem {
        seq: e.seq,
        id: e.id.clone(),
        occurred_at: e.occurred_at,
        received_at: e.received_at,
        feed: e.payload.clone(),
        recipients: Vec::new(),
    }
}

/// Folds each gift bomb's recipients into the bomb when both are in `items`.
pub fn fold_gift_bombs(items: Vec<FeedItem>) -> Vec<FeedItem> {
    let group = |i: &FeedItem| {
        i.feed
            .get("group")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let kind = |i: &FeedItem| {
        i.feed
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let bombs: std::collections::HashSet<String> = items
        .iter()
        .filter(|i| kind(i) == "gift_bomb")
        .filter_map(group)
        .collect();
    let mut out: Vec<FeedItem> = Vec::with_capacity(items.len());
    for i in items {
        if kind(&i) == "gift_bomb.recipient"
            && let Some(g) = group(&i).filter(|g| bombs.contains(g))
            && let Some(bomb) = out
                .iter_mut()
                .rev()
                .find(|b| kind(b) == "gift_bomb" && group(b).as_deref() == Some(g.as_str()))
        {
            bomb.recipients
                .push(i.feed.get("target").cloned().unwrap_or(Value::Null));
            continue;
        }
        out.push(i);
    }
    out
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
}

async fn find_streamer(state: &AppState, login: &str) -> Result<Streamer, ApiError> {
    if !(1..=25).contains(&login.len())
        || !login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ApiError(StatusCode::BAD_REQUEST, "not a Twitch login"));
    }
    match state.store.streamer_by_login(login).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(ApiError(
            StatusCode::NOT_FOUND,
            "sev has no events for this streamer yet",
        )),
        Err(e) => {
            tracing::error!(error = %e, "looking up a streamer failed");
            Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable",
            ))
        }
    }
}

fn parse_after(after: Option<&str>) -> Result<Option<i64>, ApiError> {
    after
        .map(|a| {
            a.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(ApiError(
                StatusCode::BAD_REQUEST,
                "after must be a cursor (a number ≥ 0)",
            ))
        })
        .transpose()
}

async fn events(
    State(state): State<AppState>,
    Path(login): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let streamer = match find_streamer(&state, &login).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let consent = crate::web::consent::can_see_consent(&state, &headers, &streamer.id).await;
    let limit = match q.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return ApiError(StatusCode::BAD_REQUEST, "limit must be between 1 and 500")
                .into_response();
        }
    };
    let after = match parse_after(q.after.as_deref()) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let page = match after {
        Some(after) => state.store.events_after(&streamer.id, after, limit).await,
        // No cursor: the newest events, for a page that is just opening.
        // The newest of them is the log's newest, so one read answers it.
        None => state
            .store
            .recent_events(&streamer.id, limit)
            .await
            .map(|events| sev_store::EventPage {
                last_seq: events.last().map_or(0, |e| e.seq),
                gap: false,
                events,
            }),
    };
    let page = match page {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "reading the event log failed");
            return ApiError(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
                .into_response();
        }
    };
    let cursor = page
        .events
        .last()
        .map(|e| e.seq)
        .or(after)
        .unwrap_or(page.last_seq);
    let items: Vec<FeedItem> = page
        .events
        .iter()
        .filter(|e| visible(e, consent))
        .map(item)
        .collect();
    axum::Json(json!({
        "streamer": streamer,
        "events": fold_gift_bombs(items),
        "cursor": cursor,
        "last_seq": page.last_seq,
        "gap": page.gap,
        "more": cursor < page.last_seq,
    }))
    .into_response()
}

async fn live(
    State(state): State<AppState>,
    Path(login): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let streamer = match find_streamer(&state, &login).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let consent = crate::web::consent::ConsentViewer::of(&state, &headers, &streamer.id).await;
    let after = match parse_after(q.after.as_deref()) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    ws.max_message_size(4096)
        .on_upgrade(move |socket| crate::live::run(state, streamer, after, consent, socket))
}

/// A close frame for the viewer socket.
pub fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// How long a viewer may take to accept one message before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
