//! Signing in with Twitch (the authorization-code flow) and signing out.
//!
//! `GET /login` records a one-time `state` bound to this browser by a nonce cookie and sends
//! the browser to Twitch; `GET /auth/callback` takes the state back (once), checks the
//! browser, exchanges the code, and starts a new session. Every way this can go wrong ends
//! on a page that says what happened, never on a 500.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use serde::Deserialize;
use sev_store::{LoginState, Session, Streamer};
use sev_twitch::oauth::OAuthError;

use crate::state::AppState;
use crate::web::PageError;
use crate::web::session::{
    LOGIN_COOKIE, LOGIN_MINUTES, MaybeViewer, SESSION_COOKIE, SESSION_DAYS, Viewer, cookie, hash,
    random_token, safe_return_to, set_cookie,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/logout", post(logout))
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
    /// Turn broadcaster mode on for this channel (a login): asks for the consent tier's
    /// scopes on top of the viewer's.
    channel: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    MaybeViewer(viewer): MaybeViewer,
    Query(q): Query<LoginQuery>,
) -> Response {
    // Broadcaster mode is asked for by a signed-in viewer, from a channel's page.
    let consent_for = match (&viewer, q.channel.as_deref()) {
        (Some(_), Some(login)) => match state.store.streamer_by_login(login).await {
            Ok(found) => found,
            Err(e) => return PageError::storage(&e).into_response(),
        },
        _ => None,
    };
    let mut scopes: Vec<&str> = crate::web::VIEWER_SCOPES.to_vec();
    if let (Some(v), Some(s)) = (&viewer, &consent_for) {
        scopes.extend(sev_pipeline::manager::consent_scopes(v.user.id == s.id));
    }
    let nonce = random_token();
    let login = LoginState {
        state: random_token(),
        browser: hash(&nonce),
        return_to: safe_return_to(q.return_to.as_deref()),
        consent_for: consent_for.as_ref().map(|s| s.id.clone()),
        created_at: Utc::now(),
    };
    if let Err(e) = state.store.put_login_state(&login).await {
        return PageError::storage(&e).into_response();
    }
    let web = &state.web;
    // Broadcaster mode shows Twitch's consent page again, so the extra scopes are seen.
    let to = web.oauth.authorize_url(
        &web.redirect_uri,
        &scopes,
        &login.state,
        login.consent_for.is_some(),
    );
    let mut res = Redirect::to(to.as_str()).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &nonce, LOGIN_MINUTES * 60, web.secure_cookies),
    );
    res
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn start_again(status: StatusCode, title: &'static str, why: &str) -> PageError {
    PageError::new(
        status,
        title,
        format!("{why} Sign in again from the start page."),
    )
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    match finish_sign_in(&state, &headers, q).await {
        Ok(res) => res,
        Err(e) => {
            // The nonce is single-use as well.
            let mut res = e.into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", 0, state.web.secure_cookies),
            );
            res
        }
    }
}

async fn finish_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<Response, PageError> {
    let web = &state.web;
    // A refusal signs nobody in, so it needs no state check; the state is spent all the same.
    if let Some(error) = q.error {
        tracing::info!(%error, description = q.error_description.as_deref().unwrap_or(""), "sign-in declined at Twitch");
        if let Some(s) = q.state.as_deref() {
            let _ = state.store.take_login_state(s).await;
        }
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Sign-in cancelled",
            "You did not authorize sev on Twitch, so nothing was shared. You can sign in again \
             whenever you like.",
        ));
    }
    let Some(state_param) = q.state.filter(|s| !s.is_empty()) else {
        return Err(start_again(
            StatusCode::BAD_REQUEST,
            "Sign-in incomplete",
            "Twitch sent you back without the sign-in's state.",
        ));
    };
    // Taken, not read: a state works once, whatever happens next.
    let pending = state
        .store
        .take_login_state(&state_param)
        .await
        .map_err(|e| PageError::storage(&e))?;
    let Some(pending) =
        pending.filter(|p| p.created_at > Utc::now() - chrono::Duration::minutes(LOGIN_MINUTES))
    else {
        return Err(start_again(
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "It was already used, or it is more than 10 minutes old.",
        ));
    };
    let browser = cookie(headers, LOGIN_COOKIE).map(|n| hash(&n));
    if browser.as_deref() != Some(pending.browser.as_str()) {
        return Err(start_again(
            StatusCode::BAD_REQUEST,
            "Sign-in started elsewhere",
            "This sign-in was started in another browser or tab that sev cannot match to this one.",
        ));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return Err(start_again(
            StatusCode::BAD_REQUEST,
            "Sign-in incomplete",
            "Twitch sent you back without an authorization code.",
        ));
    };

    let twitch_down = |e: &OAuthError| {
        tracing::warn!(error = %e, "sign-in: Twitch call failed");
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "Twitch is not answering",
            "sev could not finish signing you in because Twitch did not answer. Please try again.",
        )
    };
    let token = match web.oauth.exchange_code(&code, &web.redirect_uri).await {
        Ok(t) => t,
        Err(OAuthError::Refused(_) | OAuthError::InvalidToken) => {
            return Err(start_again(
                StatusCode::BAD_REQUEST,
                "Twitch did not accept this sign-in",
                "The authorization code was invalid or had expired.",
            ));
        }
        Err(e) => return Err(twitch_down(&e)),
    };
    let who = web
        .oauth
        .validate(&token.access_token)
        .await
        .map_err(|e| twitch_down(&e))?;
    let (Some(user_id), Some(login)) = (who.user_id, who.login) else {
        return Err(twitch_down(&OAuthError::Decode(
            "validate returned no user".into(),
        )));
    };
    let source = sev_twitch::oauth::UserTokenSource::new(web.oauth.clone(), token.clone(), None);
    // The display name is a nicety: the login stands in when Helix is unavailable.
    let display_name = match web.helix.get_users(&source, &[&user_id], &[]).await {
        Ok(users) => users
            .into_iter()
            .next()
            .map_or_else(|| login.clone(), |u| u.display_name),
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: Get Users failed; showing the login");
            login.clone()
        }
    };
    let user = Streamer {
        id: user_id,
        login,
        display_name,
    };
    let store = &state.store;
    store
        .upsert_user(&user)
        .await
        .map_err(|e| PageError::storage(&e))?;

    // A new session id at every sign-in: a cookie planted before sign-in is worth nothing.
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        let _ = store.delete_session(&hash(&old)).await;
    }
    let id = random_token();
    let now = Utc::now();
    let session = Session {
        id: hash(&id),
        user_id: user.id.clone(),
        csrf: random_token(),
        access_token: web.sealer.seal(&token.access_token),
        refresh_token: web.sealer.seal(&token.refresh_token),
        token_expires_at: token.expires_at,
        scopes: token.scopes.clone(),
        created_at: now,
        validated_at: now,
    };
    store
        .create_session(&session)
        .await
        .map_err(|e| PageError::storage(&e))?;
    tracing::info!(user_id = %user.id, login = %user.login, "signed in");

    if let Some(streamer_id) = &pending.consent_for {
        let needed = sev_pipeline::manager::consent_scopes(user.id == *streamer_id);
        if needed.iter().all(|n| token.scopes.iter().any(|s| s == n)) {
            store
                .grant_consent(&user.id, streamer_id, &token.scopes)
                .await
                .map_err(|e| PageError::storage(&e))?;
            // Broadcaster mode implies wanting the channel's public events too.
            store
                .add_favorite(&user.id, streamer_id)
                .await
                .map_err(|e| PageError::storage(&e))?;
            state.favorites_changed();
            tracing::info!(user_id = %user.id, %streamer_id, "broadcaster mode on");
        } else {
            tracing::info!(user_id = %user.id, %streamer_id, "broadcaster mode not granted: scopes missing");
        }
    }

    let mut res = Redirect::to(&pending.return_to).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &id,
            SESSION_DAYS * 86_400,
            web.secure_cookies,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", 0, web.secure_cookies),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Ends this session and revokes its token at Twitch, so the grant is gone there too.
async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(e) = viewer.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let web = &state.web;
    if let Ok(token) = web.sealer.open(&viewer.session.access_token)
        && let Err(e) = web.oauth.revoke(&token).await
    {
        // Signing out here still happens; Twitch drops the token when it expires.
        tracing::warn!(error = %e, "revoking a token at sign-out failed");
    }
    if let Err(e) = state.store.delete_session(&viewer.session.id).await {
        return PageError::storage(&e).into_response();
    }
    tracing::info!(user_id = %viewer.user.id, "signed out");
    let mut res = Redirect::to("/?signed_out=1").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, web.secure_cookies),
    );
    res
}
