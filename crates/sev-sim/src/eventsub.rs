//! EventSub subscriptions, conduits and shards on Helix, with every rule of PLATFORM.md §2.1:
//! token type against transport, required authorisation, 409 for a duplicate, at most 3 with
//! the same type and condition, cost and `max_total_cost` per transport, and the status values.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sev_twitch::eventsub::{Subscription, Tier, Transport, type_info};
use tokio::sync::mpsc;

use crate::helix::{Caller, Params, helix_error, one};
use crate::state::{Shared, SimState, lock};

/// A WebSocket session's outbox: frames for the socket task to send, or a close.
#[derive(Debug)]
pub enum Outbound {
    Frame(String),
    Close(u16, String),
    /// Send `session_reconnect` pointing at this URL.
    Reconnect(String),
    Keepalive(bool),
}

#[derive(Debug)]
pub struct SessionRec {
    pub id: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub tx: mpsc::UnboundedSender<Outbound>,
    pub connected: bool,
    /// Set once a subscription (or conduit shard) uses the session: no 4003 then.
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct ShardRec {
    pub id: String,
    pub status: String,
    pub transport: Transport,
    pub secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConduitRec {
    pub id: String,
    pub client_id: String,
    pub shards: Vec<ShardRec>,
    /// Round-robin position for delivery.
    pub next: usize,
}

#[derive(Debug, Clone)]
pub struct SubRec {
    pub sub: Subscription,
    pub client_id: String,
    /// The user whose token created it (WebSocket subscriptions).
    pub owner: Option<String>,
    pub secret: Option<String>,
    /// Consecutive failed webhook attempts.
    pub failures: u32,
}

#[derive(Debug, Default)]
pub struct Registry {
    pub subs: Vec<SubRec>,
    pub sessions: HashMap<String, SessionRec>,
    pub conduits: Vec<ConduitRec>,
}

impl Registry {
    pub fn find(&self, id: &str) -> Option<&SubRec> {
        self.subs.iter().find(|s| s.sub.id == id)
    }

    pub fn find_mut(&mut self, id: &str) -> Option<&mut SubRec> {
        self.subs.iter_mut().find(|s| s.sub.id == id)
    }

    /// Marks a session's subscriptions disconnected (WebSocket subscriptions die with their
    /// socket) and its conduit shards disabled.
    pub fn session_closed(&mut self, session_id: &str, status: &str) {
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.connected = false;
        }
        let now = Utc::now();
        for rec in &mut self.subs {
            if rec.sub.transport.session_id.as_deref() == Some(session_id)
                && rec.sub.status == "enabled"
            {
                rec.sub.status = status.into();
                rec.sub.transport.disconnected_at = Some(now);
            }
        }
        for c in &mut self.conduits {
            for shard in &mut c.shards {
                if shard.transport.session_id.as_deref() == Some(session_id)
                    && shard.status == "enabled"
                {
                    shard.status = status.into();
                    shard.transport.disconnected_at = Some(now);
                }
            }
        }
    }
}

pub fn helix_router() -> Router<Shared> {
    Router::new()
        .route(
            "/helix/eventsub/subscriptions",
            get(list).post(create).delete(delete),
        )
        .route(
            "/helix/eventsub/conduits",
            get(get_conduits)
                .post(create_conduit)
                .patch(update_conduit)
                .delete(delete_conduit),
        )
        .route(
            "/helix/eventsub/conduits/shards",
            get(get_shards).patch(update_shards),
        )
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
    condition: Option<Map<String, Value>>,
    transport: Option<Transport>,
}

fn bad(msg: &str) -> Response {
    helix_error(StatusCode::BAD_REQUEST, msg)
}

/// Whether `user` has granted this client any of `scopes` (a live token or refresh token).
fn granted(st: &SimState, client_id: &str, user: &str, scopes: &[&str]) -> bool {
    let has =
        |s: &Vec<String>| scopes.is_empty() || scopes.iter().any(|x| s.iter().any(|own| own == x));
    st.tokens.values().any(|t| {
        t.client_id == client_id
            && t.user_id.as_deref() == Some(user)
            && t.expires_at > Utc::now()
            && has(&t.scopes)
    }) || st
        .refresh
        .values()
        .any(|r| r.client_id == client_id && r.user_id == user && has(&r.scopes))
}

fn cond<'a>(c: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn sub_json(s: &Subscription) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// Cost totals the caller sees: webhook+conduit for the app, WebSocket per user.
fn totals(st: &SimState, caller: &Caller) -> (i64, i64) {
    let enabled = |r: &&SubRec| {
        r.sub.status == "enabled" || r.sub.status == "webhook_callback_verification_pending"
    };
    match &caller.user_id {
        None => (
            st.eventsub
                .subs
                .iter()
                .filter(|r| {
                    r.client_id == caller.client_id && r.sub.transport.method != "websocket"
                })
                .filter(enabled)
                .map(|r| r.sub.cost)
                .sum(),
            st.config.max_total_cost,
        ),
        Some(u) => (
            st.eventsub
                .subs
                .iter()
                .filter(|r| {
                    r.client_id == caller.client_id
                        && r.owner.as_deref() == Some(u)
                        && r.sub.transport.method == "websocket"
                })
                .filter(enabled)
                .map(|r| r.sub.cost)
                .sum(),
            10,
        ),
    }
}

async fn create(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Option<axum::Json<Value>>,
) -> Response {
    let Some(axum::Json(body)) = body else {
        return bad("The request body is not valid JSON");
    };
    let Ok(body) = serde_json::from_value::<CreateBody>(body) else {
        return bad("The request body is malformed");
    };
    let (Some(kind), Some(version), Some(condition), Some(mut transport)) =
        (body.kind, body.version, body.condition, body.transport)
    else {
        return bad("Missing required field: type, version, condition and transport are required");
    };
    let Some(info) = type_info(&kind) else {
        return bad("Invalid subscription type");
    };
    if info.version != version {
        return bad("Invalid subscription version");
    }
    let missing: Vec<&str> = info
        .condition
        .iter()
        .copied()
        .filter(|k| cond(&condition, k).is_none())
        .collect();
    if !missing.is_empty() {
        return bad(&format!("Missing condition field: {}", missing.join(", ")));
    }
    if kind == "channel.raid"
        && (cond(&condition, "from_broadcaster_user_id").is_some()
            == cond(&condition, "to_broadcaster_user_id").is_some())
    {
        return bad(
            "Exactly one of from_broadcaster_user_id and to_broadcaster_user_id is required",
        );
    }

    let mut st = lock(&state);
    for v in condition.values().filter_map(Value::as_str) {
        let user_key = condition
            .iter()
            .any(|(k, val)| k.ends_with("user_id") && val.as_str() == Some(v));
        if user_key && st.world.user(v).is_none() {
            return bad(&format!("The user {v} in the condition does not exist"));
        }
    }
    if info.tier == Tier::App && cond(&condition, "client_id") != Some(caller.client_id.as_str()) {
        return bad("The condition's client_id must be your client id");
    }

    // The token type fixes the transport.
    let websocket = match transport.method.as_str() {
        "websocket" => {
            if caller.user_id.is_none() {
                return helix_error(
                    StatusCode::UNAUTHORIZED,
                    "WebSocket subscriptions require a user access token",
                );
            }
            true
        }
        "webhook" | "conduit" => {
            if caller.user_id.is_some() {
                return helix_error(
                    StatusCode::UNAUTHORIZED,
                    "Webhook and conduit subscriptions require an app access token",
                );
            }
            false
        }
        _ => return bad("Invalid transport method: use webhook, websocket or conduit"),
    };
    let now = Utc::now();
    let mut secret = None;
    match transport.method.as_str() {
        "webhook" => {
            let Some(callback) = transport.callback.clone() else {
                return bad("Missing transport.callback");
            };
            let Ok(url) = url::Url::parse(&callback) else {
                return bad("Invalid transport.callback");
            };
            if st.config.require_https_callbacks
                && (url.scheme() != "https" || url.port_or_known_default() != Some(443))
            {
                return bad("The callback must use https on port 443");
            }
            if !matches!(url.scheme(), "http" | "https") {
                return bad("The callback must be an http(s) URL");
            }
            let Some(s) = transport.secret.take() else {
                return bad("Missing transport.secret");
            };
            if !(10..=100).contains(&s.len()) || !s.is_ascii() {
                return bad("The secret must be between 10 and 100 ASCII characters");
            }
            secret = Some(s);
        }
        "websocket" => {
            let Some(sid) = transport.session_id.clone() else {
                return bad("Missing transport.session_id");
            };
            match st.eventsub.sessions.get(&sid) {
                Some(s) if s.connected => {
                    if s.user_id
                        .as_deref()
                        .is_some_and(|u| Some(u) != caller.user_id.as_deref())
                    {
                        return bad("The session belongs to another user");
                    }
                }
                _ => return bad("The session_id is not connected"),
            }
            transport.connected_at = Some(now);
        }
        _ => {
            let Some(cid) = transport.conduit_id.clone() else {
                return bad("Missing transport.conduit_id");
            };
            if !st
                .eventsub
                .conduits
                .iter()
                .any(|c| c.id == cid && c.client_id == caller.client_id)
            {
                return bad("The conduit does not exist");
            }
        }
    }

    // Authorisation, per tier (PLATFORM.md §6).
    let token_user = caller.user_id.clone().unwrap_or_default();
    let authorised = match info.tier {
        Tier::Public | Tier::App => true,
        Tier::ChatReader => {
            let reader = cond(&condition, "user_id").unwrap_or_default();
            let broadcaster = cond(&condition, "broadcaster_user_id").unwrap_or_default();
            if websocket {
                reader == token_user && caller.has_scope(info.scopes)
            } else {
                granted(&st, &caller.client_id, reader, &["user:bot"])
                    && (granted(&st, &caller.client_id, broadcaster, &["channel:bot"])
                        || st.world.is_moderator_or_self(broadcaster, reader))
            }
        }
        Tier::Broadcaster => {
            let b = cond(&condition, "broadcaster_user_id").unwrap_or_default();
            if websocket {
                b == token_user && caller.has_scope(info.scopes)
            } else {
                granted(&st, &caller.client_id, b, info.scopes)
            }
        }
        Tier::Moderator => {
            let b = cond(&condition, "broadcaster_user_id").unwrap_or_default();
            let m = cond(&condition, "moderator_user_id").unwrap_or_default();
            st.world.is_moderator_or_self(b, m)
                && if websocket {
                    m == token_user && caller.has_scope(info.scopes)
                } else {
                    granted(&st, &caller.client_id, m, info.scopes)
                }
        }
    };
    if !authorised {
        return helix_error(
            StatusCode::FORBIDDEN,
            "subscription missing proper authorization",
        );
    }

    // Duplicates: the same destination is a conflict; more than 3 of one type+condition is too many.
    let same = |r: &&SubRec| {
        r.client_id == caller.client_id
            && r.sub.kind == kind
            && r.sub.version == version
            && r.sub.condition == condition
            && !r.sub.status.starts_with("websocket_")
            && r.sub.status != "webhook_callback_verification_failed"
    };
    let dest = |t: &Transport| {
        (
            t.method.clone(),
            t.callback.clone(),
            t.session_id.clone(),
            t.conduit_id.clone(),
        )
    };
    if st
        .eventsub
        .subs
        .iter()
        .filter(same)
        .any(|r| dest(&r.sub.transport) == dest(&transport))
    {
        return helix_error(StatusCode::CONFLICT, "subscription already exists");
    }
    if st.eventsub.subs.iter().filter(same).count() >= 3 {
        return helix_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many subscriptions with the same type and condition",
        );
    }

    // Cost: types that need no consent cost 1 unless the condition's user authorised us.
    let cost = if info.tier == Tier::Public {
        let user = [
            "broadcaster_user_id",
            "to_broadcaster_user_id",
            "from_broadcaster_user_id",
            "user_id",
        ]
        .iter()
        .find_map(|k| cond(&condition, k))
        .unwrap_or_default();
        if granted(&st, &caller.client_id, user, &[]) {
            0
        } else {
            1
        }
    } else {
        0
    };
    let (total_cost, max_total_cost) = totals(&st, &caller);
    if total_cost + cost > max_total_cost {
        return helix_error(
            StatusCode::TOO_MANY_REQUESTS,
            "the maximum total cost of subscriptions was exceeded",
        );
    }
    if websocket {
        let sid = transport.session_id.clone().unwrap_or_default();
        let on_session = st
            .eventsub
            .subs
            .iter()
            .filter(|r| {
                r.sub.transport.session_id.as_deref() == Some(&sid) && r.sub.status == "enabled"
            })
            .count();
        if on_session >= 300 {
            return helix_error(
                StatusCode::TOO_MANY_REQUESTS,
                "the WebSocket transport has too many subscriptions",
            );
        }
        let mut sessions: Vec<&str> = st
            .eventsub
            .subs
            .iter()
            .filter(|r| {
                r.owner.as_deref() == Some(token_user.as_str())
                    && r.client_id == caller.client_id
                    && r.sub.status == "enabled"
            })
            .filter_map(|r| r.sub.transport.session_id.as_deref())
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        if !sessions.contains(&sid.as_str()) && sessions.len() >= 3 {
            return helix_error(
                StatusCode::TOO_MANY_REQUESTS,
                "websocket transport session limit exceeded",
            );
        }
        if let Some(s) = st.eventsub.sessions.get_mut(&sid) {
            s.used = true;
            s.user_id = Some(token_user.clone());
            s.client_id = Some(caller.client_id.clone());
        }
    }

    let status = match transport.method.as_str() {
        "webhook" => "webhook_callback_verification_pending",
        _ => "enabled",
    };
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        status: status.into(),
        kind,
        version,
        condition,
        transport,
        created_at: Some(now),
        cost,
    };
    st.eventsub.subs.push(SubRec {
        sub: sub.clone(),
        client_id: caller.client_id.clone(),
        owner: caller.user_id.clone(),
        secret: secret.clone(),
        failures: 0,
    });
    let (total_cost, max_total_cost) = totals(&st, &caller);
    let total = st
        .eventsub
        .subs
        .iter()
        .filter(|r| {
            r.client_id == caller.client_id
                && (r.owner == caller.user_id
                    || caller.user_id.is_none() && r.sub.transport.method != "websocket")
        })
        .count();
    drop(st);

    if sub.transport.method == "webhook" {
        crate::delivery::spawn_verification(state.clone(), sub.clone(), secret.unwrap_or_default());
    }
    let mut shown = sub.clone();
    shown.transport.secret = None;
    (StatusCode::ACCEPTED, axum::Json(json!({"data": [sub_json(&shown)], "total": total, "total_cost": total_cost, "max_total_cost": max_total_cost}))).into_response()
}

/// What the caller may see: the app its webhook and conduit subscriptions, a user its own
/// WebSocket subscriptions.
fn visible(caller: &Caller, r: &SubRec) -> bool {
    r.client_id == caller.client_id
        && match &caller.user_id {
            None => r.sub.transport.method != "websocket",
            Some(u) => r.sub.transport.method == "websocket" && r.owner.as_deref() == Some(u),
        }
}

async fn list(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Response {
    let filters = ["status", "type", "user_id", "subscription_id"]
        .iter()
        .filter(|k| one(&params, k).is_some())
        .count();
    if filters > 1 {
        return bad("Only one of status, type, user_id and subscription_id may be given");
    }
    let st = lock(&state);
    let matches = |r: &SubRec| {
        one(&params, "status").is_none_or(|s| r.sub.status == s)
            && one(&params, "type").is_none_or(|t| r.sub.kind == t)
            && one(&params, "subscription_id").is_none_or(|i| r.sub.id == i)
            && one(&params, "user_id")
                .is_none_or(|u| r.sub.condition.values().any(|v| v.as_str() == Some(u)))
    };
    let all: Vec<Value> = st
        .eventsub
        .subs
        .iter()
        .filter(|r| visible(&caller, r) && matches(r))
        .map(|r| sub_json(&r.sub))
        .collect();
    let start = one(&params, "after")
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0);
    let page_size = st.config.subscriptions_page_size.max(1);
    let total = all.len();
    let data: Vec<Value> = all.into_iter().skip(start).take(page_size).collect();
    let next = start + data.len();
    let pagination = if next < total {
        json!({"cursor": next.to_string()})
    } else {
        json!({})
    };
    let (total_cost, max_total_cost) = totals(&st, &caller);
    axum::Json(json!({"data": data, "total": total, "total_cost": total_cost, "max_total_cost": max_total_cost, "pagination": pagination})).into_response()
}

async fn delete(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Response {
    let Some(id) = one(&params, "id") else {
        return bad("Missing required parameter \"id\"");
    };
    let mut st = lock(&state);
    let Some(pos) = st
        .eventsub
        .subs
        .iter()
        .position(|r| r.sub.id == id && visible(&caller, r))
    else {
        return helix_error(StatusCode::NOT_FOUND, "subscription not found");
    };
    st.eventsub.subs.remove(pos);
    StatusCode::NO_CONTENT.into_response()
}

fn app_only(caller: &Caller) -> Option<Response> {
    caller.user_id.is_some().then(|| {
        helix_error(
            StatusCode::UNAUTHORIZED,
            "Conduits require an app access token",
        )
    })
}

fn conduit_json(c: &ConduitRec) -> Value {
    json!({"id": c.id, "shard_count": c.shards.len()})
}

async fn get_conduits(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Some(r) = app_only(&caller) {
        return r;
    }
    let st = lock(&state);
    let data: Vec<Value> = st
        .eventsub
        .conduits
        .iter()
        .filter(|c| c.client_id == caller.client_id)
        .map(conduit_json)
        .collect();
    axum::Json(json!({"data": data})).into_response()
}

fn shard_count(body: &Option<axum::Json<Value>>) -> Option<usize> {
    body.as_ref()
        .and_then(|b| b.0.get("shard_count"))
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=20_000).contains(n))
}

fn new_shard(id: usize) -> ShardRec {
    ShardRec {
        id: id.to_string(),
        status: "websocket_disconnected".into(),
        transport: Transport {
            method: "websocket".into(),
            ..Transport::default()
        },
        secret: None,
    }
}

async fn create_conduit(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Option<axum::Json<Value>>,
) -> Response {
    if let Some(r) = app_only(&caller) {
        return r;
    }
    let Some(n) = shard_count(&body) else {
        return bad("shard_count must be between 1 and 20000");
    };
    let mut st = lock(&state);
    if st
        .eventsub
        .conduits
        .iter()
        .filter(|c| c.client_id == caller.client_id)
        .count()
        >= 5
    {
        return helix_error(StatusCode::TOO_MANY_REQUESTS, "conduit limit reached");
    }
    let c = ConduitRec {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: caller.client_id.clone(),
        shards: (0..n).map(new_shard).collect(),
        next: 0,
    };
    let out = conduit_json(&c);
    st.eventsub.conduits.push(c);
    axum::Json(json!({"data": [out]})).into_response()
}

async fn update_conduit(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Option<axum::Json<Value>>,
) -> Response {
    if let Some(r) = app_only(&caller) {
        return r;
    }
    let Some(n) = shard_count(&body) else {
        return bad("shard_count must be between 1 and 20000");
    };
    let id = body
        .as_ref()
        .and_then(|b| b.0.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut st = lock(&state);
    let Some(c) = st
        .eventsub
        .conduits
        .iter_mut()
        .find(|c| c.id == id && c.client_id == caller.client_id)
    else {
        return helix_error(StatusCode::NOT_FOUND, "conduit not found");
    };
    // Shrinking drops the shards at and past the new count.
    c.shards.truncate(n);
    while c.shards.len() < n {
        let next = c.shards.len();
        c.shards.push(new_shard(next));
    }
    axum::Json(json!({"data": [conduit_json(c)]})).into_response()
}

async fn delete_conduit(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Response {
    if let Some(r) = app_only(&caller) {
        return r;
    }
    let Some(id) = one(&params, "id").map(str::to_owned) else {
        return bad("Missing required parameter \"id\"");
    };
    let mut st = lock(&state);
    let Some(pos) = st
        .eventsub
        .conduits
        .iter()
        .position(|c| c.id == id && c.client_id == caller.client_id)
    else {
        return helix_error(StatusCode::NOT_FOUND, "conduit not found");
    };
    st.eventsub.conduits.remove(pos);
    for r in &mut st.eventsub.subs {
        if r.sub.transport.conduit_id.as_deref() == Some(id.as_str()) {
            r.sub.status = "conduit_deleted".into();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

fn shard_json(s: &ShardRec) -> Value {
    let mut t = s.transport.clone();
    t.secret = None;
    json!({"id": s.id, "status": s.status, "transport": t})
}

async fn get_shards(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(params): Params,
) -> Response {
    if let Some(r) = app_only(&caller) {
        return r;
    }
    let Some(id) = one(&params, "conduit_id") else {
        return bad("Missing required parameter \"conduit_id\"");
    };
    let st = lock(&state);
    let Some(c) = st
        .eventsub
        .conduits
        .iter()
        .find(|c| c.id == id && c.client_id == caller.client_id)
    else {
        return helix_error(StatusCode::NOT_FOUND, "conduit not found");
    };
    let data: Vec<Value> = c
        .shards
        .iter()
        .filter(|s| one(&params, "status").is_none_or(|st| s.status == st))
        .map(shard_json)
        .collect();
    axum::Json(json!({"data": data, "pagination": {}})).into_response()
}

async fn update_shards(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Option<axum::Json<Value>>,
) -> Response {
    if let Some(r) = app_only(&caller) {
        return r;
    }
    let Some(axum::Json(body)) = body else {
        return bad("The request body is not valid JSON");
    };
    let conduit_id = body
        .get("conduit_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(shards) = body.get("shards").and_then(Value::as_array).cloned() else {
        return bad("Missing shards");
    };
    let mut st = lock(&state);
    if !st
        .eventsub
        .conduits
        .iter()
        .any(|c| c.id == conduit_id && c.client_id == caller.client_id)
    {
        return helix_error(StatusCode::NOT_FOUND, "conduit not found");
    }
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for s in shards {
        let id = s
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let transport: Transport = s
            .get("transport")
            .cloned()
            .and_then(|t| serde_json::from_value(t).ok())
            .unwrap_or_default();
        let result: Result<ShardRec, (&str, &str)> = match transport.method.as_str() {
            "websocket" => match transport
                .session_id
                .as_deref()
                .and_then(|sid| st.eventsub.sessions.get(sid))
            {
                Some(sess) if sess.connected => Ok(ShardRec {
                    id: id.clone(),
                    status: "enabled".into(),
                    transport: Transport {
                        connected_at: Some(Utc::now()),
                        ..transport.clone()
                    },
                    secret: None,
                }),
                _ => Err((
                    "websocket_session_not_connected",
                    "The websocket session is not connected",
                )),
            },
            "webhook" => match (&transport.callback, &transport.secret) {
                (Some(cb), Some(secret))
                    if url::Url::parse(cb).is_ok() && (10..=100).contains(&secret.len()) =>
                {
                    Ok(ShardRec {
                        id: id.clone(),
                        status: "enabled".into(),
                        transport: Transport {
                            secret: None,
                            ..transport.clone()
                        },
                        secret: Some(secret.clone()),
                    })
                }
                _ => Err(("invalid_parameter", "The callback or secret is invalid")),
            },
            _ => Err(("invalid_parameter", "Invalid transport method")),
        };
        let Some(conduit) = st.eventsub.conduits.iter_mut().find(|c| c.id == conduit_id) else {
            break;
        };
        let Some(slot) = conduit.shards.iter_mut().find(|x| x.id == id) else {
            errors.push(json!({"id": id, "message": "The shard id is outside the conduit's range", "code": "invalid_parameter"}));
            continue;
        };
        match result {
            Ok(rec) => {
                *slot = rec;
                ok.push(shard_json(slot));
            }
            Err((code, message)) => {
                errors.push(json!({"id": id, "message": message, "code": code}))
            }
        }
        if let Some(sid) = transport.session_id.as_deref()
            && let Some(sess) = st.eventsub.sessions.get_mut(sid)
        {
            sess.used = true;
        }
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"data": ok, "errors": errors})),
    )
        .into_response()
}

/// Conditions match when every key both sides name has the same value; keys only the
/// subscription names (the reading user, the moderator) do not restrict delivery.
pub fn condition_matches(sub: &Map<String, Value>, event: &Map<String, Value>) -> bool {
    let shared: Vec<&String> = sub.keys().filter(|k| event.contains_key(*k)).collect();
    !shared.is_empty() && shared.iter().all(|k| sub.get(*k) == event.get(*k))
}
