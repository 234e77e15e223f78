//! `/oauth2/*`: the authorize page, token, validate and revoke, as id.twitch.tv answers.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::state::{Grant, Shared, lock, random_token};
use crate::world::valid_login;

pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/oauth2/authorize",
            get(authorize_page).post(authorize_decide),
        )
        .route("/oauth2/token", axum::routing::post(token))
        .route("/oauth2/validate", get(validate))
        .route("/oauth2/revoke", axum::routing::post(revoke))
}

/// id.twitch.tv's error shape: `{"status": 400, "message": "…"}`.
pub fn id_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "status": status.as_u16(), "message": message })),
    )
        .into_response()
}

/// The scopes the simulator knows (Twitch answers an unknown scope with an error).
fn known_scope(scope: &str) -> bool {
    const OTHER: &[&str] = &[
        "user:read:follows",
        "user:read:email",
        "user:bot",
        "channel:bot",
        "user:write:chat",
    ];
    OTHER.contains(&scope)
        || sev_twitch::eventsub::SUBSCRIPTION_TYPES
            .iter()
            .any(|t| t.scopes.contains(&scope))
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    force_verify: Option<String>,
}

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage<'a> {
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
    scopes: Vec<&'a str>,
    state: &'a str,
    users: Vec<(String, String)>,
}

/// Checks a request against the registered client; the error page text on failure.
fn check_request(
    state: &Shared,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
    scope: &str,
) -> Result<(), (StatusCode, String)> {
    let st = lock(state);
    let cid = client_id.unwrap_or_default();
    if cid != st.config.client_id {
        return Err((StatusCode::BAD_REQUEST, "invalid client".into()));
    }
    let uri = redirect_uri.unwrap_or_default();
    if !st.config.redirect_allowed(uri) {
        return Err((
            StatusCode::BAD_REQUEST,
            "Parameter redirect_uri does not match registered URI".into(),
        ));
    }
    if let Some(bad) = scope.split_whitespace().find(|s| !known_scope(s)) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("invalid scope requested: '{bad}'"),
        ));
    }
    Ok(())
}

async fn authorize_page(State(state): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    let scope = q.scope.clone().unwrap_or_default();
    if q.response_type.as_deref() != Some("code") {
        return id_error(StatusCode::BAD_REQUEST, "unsupported response_type");
    }
    if let Err((status, message)) = check_request(
        &state,
        q.client_id.as_deref(),
        q.redirect_uri.as_deref(),
        &scope,
    ) {
        return id_error(status, &message);
    }
    // force_verify makes Twitch show consent again; this page is always shown, so it is moot.
    let _ = q.force_verify;
    let users: Vec<(String, String)> = {
        let st = lock(&state);
        st.world
            .users
            .iter()
            .map(|u| (u.login.clone(), u.display_name.clone()))
            .collect()
    };
    let page = AuthorizePage {
        client_id: q.client_id.as_deref().unwrap_or_default(),
        redirect_uri: q.redirect_uri.as_deref().unwrap_or_default(),
        scope: &scope,
        scopes: scope.split_whitespace().collect(),
        state: q.state.as_deref().unwrap_or_default(),
        users,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct Decision {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    /// A listed user's login…
    login: Option<String>,
    /// …or one typed in, which wins when given.
    typed_login: Option<String>,
    /// `approve` or `deny`.
    decision: Option<String>,
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(uri)?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(url.to_string())
}

async fn authorize_decide(State(state): State<Shared>, Form(d): Form<Decision>) -> Response {
    let scope = d.scope.clone().unwrap_or_default();
    if let Err((status, message)) = check_request(
        &state,
        d.client_id.as_deref(),
        d.redirect_uri.as_deref(),
        &scope,
    ) {
        return id_error(status, &message);
    }
    let redirect_uri = d.redirect_uri.unwrap_or_default();
    let st_param = d.state.unwrap_or_default();
    if d.decision.as_deref() != Some("approve") {
        return match with_query(
            &redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied you access"),
                ("state", &st_param),
            ],
        ) {
            Ok(to) => Redirect::to(&to).into_response(),
            Err(_) => id_error(StatusCode::BAD_REQUEST, "invalid redirect_uri"),
        };
    }
    let login = d
        .typed_login
        .filter(|l| !l.trim().is_empty())
        .or(d.login)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !valid_login(&login) {
        return id_error(
            StatusCode::BAD_REQUEST,
            "pick a user or type a login (letters, digits, underscores)",
        );
    }
    let code = random_token();
    {
        let mut st = lock(&state);
        let user_id = match st.world.user_by_login(&login) {
            Some(u) => u.id.clone(),
            None => st.world.add_user(&login).id,
        };
        let grant = Grant {
            client_id: st.config.client_id.clone(),
            user_id,
            scopes: scope.split_whitespace().map(str::to_owned).collect(),
            redirect_uri: redirect_uri.clone(),
            expires_at: Utc::now() + Duration::minutes(10),
        };
        st.codes.insert(code.clone(), grant);
    }
    match with_query(
        &redirect_uri,
        &[("code", &code), ("scope", &scope), ("state", &st_param)],
    ) {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(_) => id_error(StatusCode::BAD_REQUEST, "invalid redirect_uri"),
    }
}

async fn token(State(state): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let mut st = lock(&state);
    if get("client_id") != st.config.client_id {
        return id_error(StatusCode::BAD_REQUEST, "invalid client");
    }
    if get("client_secret") != st.config.client_secret {
        return id_error(StatusCode::FORBIDDEN, "invalid client secret");
    }
    let client_id = st.config.client_id.clone();
    match get("grant_type") {
        "authorization_code" => {
            // A code is good once: taking it out makes a replay fail.
            let Some(grant) = st.codes.remove(get("code")) else {
                return id_error(StatusCode::BAD_REQUEST, "Invalid authorization code");
            };
            if grant.expires_at < Utc::now() || grant.redirect_uri != get("redirect_uri") {
                return id_error(StatusCode::BAD_REQUEST, "Invalid authorization code");
            }
            let (access, refresh, expires_in) =
                st.issue_user_token(&client_id, &grant.user_id, grant.scopes.clone());
            axum::Json(json!({"access_token": access, "expires_in": expires_in, "refresh_token": refresh, "scope": grant.scopes, "token_type": "bearer"})).into_response()
        }
        "refresh_token" => {
            // Refresh tokens rotate: the one used is spent.
            let Some(info) = st.refresh.remove(get("refresh_token")) else {
                return id_error(StatusCode::BAD_REQUEST, "Invalid refresh token");
            };
            let (access, refresh, expires_in) =
                st.issue_user_token(&client_id, &info.user_id, info.scopes.clone());
            axum::Json(json!({"access_token": access, "expires_in": expires_in, "refresh_token": refresh, "scope": info.scopes, "token_type": "bearer"})).into_response()
        }
        "client_credentials" => {
            let (access, expires_in) = st.issue_app_token(&client_id);
            axum::Json(
                json!({"access_token": access, "expires_in": expires_in, "token_type": "bearer"}),
            )
            .into_response()
        }
        _ => id_error(StatusCode::BAD_REQUEST, "unsupported grant type"),
    }
}

/// The token of an `Authorization: OAuth …` (or `Bearer …`) header.
pub fn auth_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("OAuth ")
        .or_else(|| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

async fn validate(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(token) = auth_token(&headers) else {
        return id_error(StatusCode::UNAUTHORIZED, "missing authorization token");
    };
    let st = lock(&state);
    let Some(info) = st.token(token) else {
        return id_error(StatusCode::UNAUTHORIZED, "invalid access token");
    };
    let expires_in = (info.expires_at - Utc::now()).num_seconds().max(0);
    match &info.user_id {
        Some(uid) => {
            let login = st
                .world
                .user(uid)
                .map(|u| u.login.clone())
                .unwrap_or_default();
            axum::Json(json!({"client_id": info.client_id, "login": login, "scopes": info.scopes, "user_id": uid, "expires_in": expires_in})).into_response()
        }
        None => {
            axum::Json(json!({"client_id": info.client_id, "scopes": [], "expires_in": expires_in}))
                .into_response()
        }
    }
}

async fn revoke(State(state): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut st = lock(&state);
    if f.get("client_id").map(String::as_str) != Some(st.config.client_id.as_str()) {
        return id_error(StatusCode::NOT_FOUND, "client does not exist");
    }
    let token = f.get("token").map(String::as_str).unwrap_or_default();
    match st.tokens.remove(token) {
        Some(info) => {
            // Its refresh token goes with it.
            if let Some(r) = info.refresh_token {
                st.refresh.remove(&r);
            }
            StatusCode::OK.into_response()
        }
        None => id_error(StatusCode::BAD_REQUEST, "Invalid token"),
    }
}
