//! Sign-in sessions: an opaque random cookie, a server-side row keyed by its hash, a CSRF
//! token per session. Cookies are HttpOnly and SameSite=Lax (Secure behind https).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::Rng;
use sev_store::{Session, Streamer};
use sha2::{Digest, Sha256};

use super::PageError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "sev_session";
/// Binds a sign-in's OAuth `state` to the browser that started it.
pub const LOGIN_COOKIE: &str = "sev_login";
/// Sessions end after this long, whatever happens to the token.
pub const SESSION_DAYS: i64 = 30;
/// A sign-in must come back from Twitch within this time.
pub const LOGIN_MINUTES: i64 = 10;

/// 32 random bytes, URL-safe: session ids, states, nonces and CSRF tokens.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps instead of a cookie value.
pub fn hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equal without revealing where two secrets differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    // Names and values are our own URL-safe tokens: always a valid header.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in viewer: their session and who they are.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: Session,
    pub user: Streamer,
}

impl Viewer {
    /// Checks the CSRF token a state-changing form carried.
    pub fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        if same_secret(&self.session.csrf, token) {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "That request did not come from sev",
                "The form was missing its security token, or it came from another site. \
                 Go back, reload the page and try again.",
            ))
        }
    }
}

/// The viewer whose session cookie this request carries, if any.
pub async fn current(headers: &HeaderMap, state: &AppState) -> Result<Option<Viewer>, PageError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let store = &state.store;
    let Some(session) = store
        .session(&hash(&id))
        .await
        .map_err(|e| PageError::storage(&e))?
    else {
        return Ok(None);
    };
    if session.created_at < Utc::now() - chrono::Duration::days(SESSION_DAYS) {
        let _ = store.delete_session(&session.id).await;
        return Ok(None);
    }
    let user = store
        .user(&session.user_id)
        .await
        .map_err(|e| PageError::storage(&e))?;
    Ok(user.map(|user| Viewer { session, user }))
}

/// Pages that need a signed-in viewer take this: others are sent to sign in first and come
/// back here afterwards.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(&parts.headers, state).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
                Err(Redirect::to(&format!("/login?return_to={back}")).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Pages that look different for signed-in viewers take this.
pub struct MaybeViewer(pub Option<Viewer>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        current(&parts.headers, state)
            .await
            .map(MaybeViewer)
            .map_err(IntoResponse::into_response)
    }
}

/// Only paths on this site: anything else (`//evil.example`, `https://…`) goes home.
pub fn safe_return_to(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_this_site() {
        assert_eq!(safe_return_to(Some("/s/favstreamer")), "/s/favstreamer");
        assert_eq!(safe_return_to(Some("//evil.example/x")), "/");
        assert_eq!(safe_return_to(Some("https://evil.example")), "/");
        assert_eq!(safe_return_to(Some("/\\evil.example")), "/");
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sev_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
