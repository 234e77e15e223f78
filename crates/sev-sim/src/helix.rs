//! `/helix/*`: authentication, the rate-limit bucket and its headers, injected faults, and
//! the read endpoints (users, search, streams, channels, followed channels).

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::oauth::auth_token;
use crate::state::{Shared, SimState, lock};
use crate::world::{Channel, SimUser};

/// The caller of a Helix request, checked by the middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub user_id: Option<String>,
    pub scopes: Vec<String>,
}

impl Caller {
    pub fn has_scope(&self, any_of: &[&str]) -> bool {
        any_of.is_empty()
            || any_of
                .iter()
                .any(|s| self.scopes.iter().any(|own| own == s))
    }
}

/// Helix's error shape.
pub fn helix_error(status: StatusCode, message: &str) -> Response {
    let error = status.canonical_reason().unwrap_or("Error");
    (
        status,
        axum::Json(json!({ "error": error, "status": status.as_u16(), "message": message })),
    )
        .into_response()
}

pub fn router(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/helix/users", get(users))
        .route("/helix/search/channels", get(search_channels))
        .route("/helix/streams", get(streams))
        .route("/helix/channels", get(channels))
        .route("/helix/channels/followed", get(followed))
        .merge(crate::eventsub::helix_router())
        .route("/helix/{*path}", axum::routing::any(not_found))
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// Every Helix call: a valid token whose client matches `Client-Id`, a point from the
/// rate-limit bucket (headers on every answer), and any injected fault.
async fn authenticate(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let (caller, bucket) = {
        let mut st = lock(&state);
        let Some(token) = auth_token(&headers).filter(|_| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer "))
        }) else {
            return helix_error(StatusCode::UNAUTHORIZED, "OAuth token is missing");
        };
        let Some(info) = st.token(token).cloned() else {
            return helix_error(StatusCode::UNAUTHORIZED, "Invalid OAuth token");
        };
        let client_id = headers
            .get("client-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if client_id != info.client_id {
            return helix_error(
                StatusCode::UNAUTHORIZED,
                "Client ID and OAuth token do not match",
            );
        }
        let key = format!(
            "{}:{}",
            info.client_id,
            info.user_id.as_deref().unwrap_or("app")
        );
        let bucket = match st.take_rate_point(&key) {
            Ok(b) => b,
            Err(b) => {
                return with_rate_headers(helix_error(StatusCode::TOO_MANY_REQUESTS, ""), &st, b);
            }
        };
        if let Some((status, left)) = st.faults.helix_status {
            st.faults.helix_status = (left > 1).then_some((status, left - 1));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return with_rate_headers(helix_error(status, "injected fault"), &st, bucket);
        }
        (
            Caller {
                client_id: info.client_id,
                user_id: info.user_id,
                scopes: info.scopes,
            },
            bucket,
        )
    };
    req.extensions_mut().insert(caller);
    let res = next.run(req).await;
    let st = lock(&state);
    with_rate_headers(res, &st, bucket)
}

fn with_rate_headers(mut res: Response, st: &SimState, bucket: crate::state::Bucket) -> Response {
    let h = res.headers_mut();
    let mut put = |k: &'static str, v: i64| {
        if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
            h.insert(k, v);
        }
    };
    put(
        "ratelimit-limit",
        i64::from(st.config.rate_limit_per_minute),
    );
    put("ratelimit-remaining", bucket.remaining);
    put("ratelimit-reset", bucket.reset_at.timestamp());
    res
}

/// Query parameters that may repeat (`?id=1&id=2`).
pub type Params = Query<Vec<(String, String)>>;

pub fn all<'a>(params: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub fn one<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn first(params: &[(String, String)], default: usize) -> Result<usize, &'static str> {
    match one(params, "first") {
        None => Ok(default),
        Some(f) => match f.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(
                "The parameter \"first\" was malformed: the value must be greater than or equal to 1 and less than or equal to 100",
            ),
        },
    }
}

/// Offsets as opaque cursors.
fn page<T: serde::Serialize>(
    items: Vec<T>,
    params: &[(String, String)],
    default_first: usize,
) -> Result<Value, &'static str> {
    let n = first(params, default_first)?;
    let start = one(params, "after")
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0);
    let total = items.len();
    let data: Vec<T> = items.into_iter().skip(start).take(n).collect();
    let next = start + data.len();
    let pagination = if next < total {
        json!({ "cursor": next.to_string() })
    } else {
        json!({})
    };
    Ok(json!({ "data": data, "pagination": pagination, "total": total }))
}

pub fn user_json(u: &SimUser) -> Value {
    json!({
        "id": u.id, "login": u.login, "display_name": u.display_name, "type": "",
        "broadcaster_type": u.broadcaster_type, "description": u.description,
        "profile_image_url": format!("https://static-cdn.jtvnw.net/user-default-pictures-uv/{}-profile_image-300x300.png", u.id),
        "offline_image_url": "", "view_count": 0, "created_at": u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

async fn users(
    State(state): State<Shared>,
    caller: axum::Extension<Caller>,
    Query(params): Params,
) -> Response {
    let ids = all(&params, "id");
    let logins = all(&params, "login");
    if ids.len() + logins.len() > 100 {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "The sum of the \"id\" and \"login\" parameters must be at most 100",
        );
    }
    let st = lock(&state);
    let users: Vec<Value> = if ids.is_empty() && logins.is_empty() {
        match caller.user_id.as_deref().and_then(|id| st.world.user(id)) {
            Some(u) => vec![user_json(u)],
            None => {
                return helix_error(
                    StatusCode::BAD_REQUEST,
                    "Must provide an ID, Login or OAuth Token",
                );
            }
        }
    } else {
        st.world
            .users
            .iter()
            .filter(|u| {
                ids.contains(&u.id.as_str())
                    || logins.iter().any(|l| l.eq_ignore_ascii_case(&u.login))
            })
            .map(user_json)
            .collect()
    };
    axum::Json(json!({ "data": users })).into_response()
}

fn game(c: &Channel) -> (&str, &str) {
    (&c.category_id, &c.category_name)
}

async fn search_channels(State(state): State<Shared>, Query(params): Params) -> Response {
    let Some(query) = one(&params, "query")
        .map(str::to_ascii_lowercase)
        .filter(|q| !q.is_empty())
    else {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter \"query\"",
        );
    };
    let live_only = one(&params, "live_only") == Some("true");
    let st = lock(&state);
    let found: Vec<Value> = st
        .world
        .users
        .iter()
        .filter(|u| u.login.starts_with(&query) || u.display_name.to_ascii_lowercase().starts_with(&query))
        .filter_map(|u| st.world.channels.get(&u.id).map(|c| (u, c)))
        .filter(|(_, c)| !live_only || c.live.is_some())
        .map(|(u, c)| {
            let (game_id, game_name) = game(c);
            json!({
                "id": u.id, "broadcaster_login": u.login, "display_name": u.display_name,
                "broadcaster_language": c.language, "game_id": game_id, "game_name": game_name,
                "is_live": c.live.is_some(), "tags": c.tags, "thumbnail_url": "", "title": c.title,
                "started_at": c.live.as_ref().map(|l| l.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
            })
        })
        .collect();
    match page(found, &params, 20) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("total");
            }
            axum::Json(v).into_response()
        }
        Err(msg) => helix_error(StatusCode::BAD_REQUEST, msg),
    }
}

async fn streams(State(state): State<Shared>, Query(params): Params) -> Response {
    let ids = all(&params, "user_id");
    let logins = all(&params, "user_login");
    if ids.len() > 100 || logins.len() > 100 {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "At most 100 user_id and 100 user_login values",
        );
    }
    let st = lock(&state);
    let live: Vec<Value> = st
        .world
        .users
        .iter()
        .filter(|u| (ids.is_empty() && logins.is_empty()) || ids.contains(&u.id.as_str()) || logins.iter().any(|l| l.eq_ignore_ascii_case(&u.login)))
        .filter_map(|u| st.world.channels.get(&u.id).and_then(|c| c.live.as_ref().map(|l| (u, c, l))))
        .map(|(u, c, l)| {
            json!({
                "id": l.id, "user_id": u.id, "user_login": u.login, "user_name": u.display_name,
                "game_id": c.category_id, "game_name": c.category_name, "type": "live", "title": c.title,
                "tags": c.tags, "viewer_count": l.viewer_count,
                "started_at": l.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "language": c.language, "thumbnail_url": format!("https://static-cdn.jtvnw.net/previews-ttv/live_user_{}-{{width}}x{{height}}.jpg", u.login),
                "tag_ids": [], "is_mature": false,
            })
        })
        .collect();
    match page(live, &params, 20) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("total");
            }
            axum::Json(v).into_response()
        }
        Err(msg) => helix_error(StatusCode::BAD_REQUEST, msg),
    }
}

async fn channels(State(state): State<Shared>, Query(params): Params) -> Response {
    let ids = all(&params, "broadcaster_id");
    if ids.is_empty() {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter \"broadcaster_id\"",
        );
    }
    if ids.len() > 100 {
        return helix_error(StatusCode::BAD_REQUEST, "At most 100 broadcaster_id values");
    }
    let st = lock(&state);
    let data: Vec<Value> = ids
        .iter()
        .filter_map(|id| Some((st.world.user(id)?, st.world.channels.get(*id)?)))
        .map(|(u, c)| {
            json!({
                "broadcaster_id": u.id, "broadcaster_login": u.login, "broadcaster_name": u.display_name,
                "broadcaster_language": c.language, "game_id": c.category_id, "game_name": c.category_name,
                "title": c.title, "delay": 0, "tags": c.tags, "content_classification_labels": [], "is_branded_content": false,
            })
        })
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

async fn followed(
    State(state): State<Shared>,
    caller: axum::Extension<Caller>,
    Query(params): Params,
) -> Response {
    let Some(user_id) = one(&params, "user_id") else {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter \"user_id\"",
        );
    };
    if caller.user_id.as_deref() != Some(user_id) {
        return helix_error(
            StatusCode::UNAUTHORIZED,
            "The ID in user_id must match the user ID found in the request's OAuth token.",
        );
    }
    if !caller.has_scope(&["user:read:follows"]) {
        return helix_error(StatusCode::UNAUTHORIZED, "Missing scope: user:read:follows");
    }
    let only = one(&params, "broadcaster_id");
    let st = lock(&state);
    let mut follows: Vec<(chrono::DateTime<chrono::Utc>, Value)> = st
        .world
        .channels
        .values()
        .filter(|c| only.is_none_or(|b| b == c.broadcaster_id))
        .filter_map(|c| c.followers.get(user_id).map(|at| (c, *at)))
        .filter_map(|(c, at)| {
            let b = st.world.user(&c.broadcaster_id)?;
            Some((at, json!({"broadcaster_id": b.id, "broadcaster_login": b.login, "broadcaster_name": b.display_name, "followed_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})))
        })
        .collect();
    follows.sort_by_key(|f| std::cmp::Reverse(f.0)); // newest first, as Twitch lists them
    let items: Vec<Value> = follows.into_iter().map(|(_, v)| v).collect();
    match page(items, &params, 20) {
        Ok(v) => axum::Json(v).into_response(),
        Err(msg) => helix_error(StatusCode::BAD_REQUEST, msg),
    }
}

/// Helix answers for HEAD/unknown helix paths.
pub async fn not_found(_: HeaderMap) -> Response {
    helix_error(StatusCode::NOT_FOUND, "Not Found")
}
