//! The viewer's pages: the start page (sign in, or your channels), choosing favorites, and
//! the stream page (player, chat, channel header, tiers and the live feed).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sev_store::Streamer;

use super::api::{FeedItem, fold_gift_bombs, item, visible};
use crate::state::AppState;
use crate::web::consent::{ConsentState, consent_state};
use crate::web::session::{MaybeViewer, Viewer};
use crate::web::{PageError, render};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(start))
        .route("/favorites", post(add_favorite))
        .route("/favorites/{login}/remove", post(remove_favorite))
        .route("/suggest", get(suggest))
        .route("/s/{login}", get(stream))
        .route(
            "/s/{login}/broadcaster-mode/off",
            post(broadcaster_mode_off),
        )
}

/// What the header needs to know about the signed-in viewer.
pub struct NavUser {
    pub display_name: String,
    pub csrf: String,
}

impl From<&Viewer> for NavUser {
    fn from(v: &Viewer) -> Self {
        Self {
            display_name: v.user.display_name.clone(),
            csrf: v.session.csrf.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub viewer: Option<NavUser>,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "landing.html")]
struct LandingPage {
    viewer: Option<NavUser>,
    signed_out: bool,
}

pub struct Channel {
    pub login: String,
    pub display_name: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    viewer: Option<NavUser>,
    csrf: String,
    favorites: Vec<Channel>,
    follows: Vec<Channel>,
    follows_note: Option<String>,
    error: Option<String>,
    typed: String,
}

/// A Twitch login: 1 to 25 letters, digits and underscores.
pub fn valid_login(login: &str) -> bool {
    (1..=25).contains(&login.len()) && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Deserialize)]
struct StartQuery {
    signed_out: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    MaybeViewer(viewer): MaybeViewer,
    Query(q): Query<StartQuery>,
) -> Response {
    match viewer {
        None => render(&LandingPage {
            viewer: None,
            signed_out: q.signed_out.is_some(),
        }),
        Some(v) => match home(&state, &v, None, String::new()).await {
            Ok(page) => render(&page),
            Err(e) => e.into_response(),
        },
    }
}

async fn home(
    state: &AppState,
    v: &Viewer,
    error: Option<String>,
    typed: String,
) -> Result<HomePage, PageError> {
    // Visiting counts as activity: the viewer's favorites stay subscribed.
    state
        .store
        .upsert_user(&v.user)
        .await
        .map_err(|e| PageError::storage(&e))?;
    let favorites: Vec<Channel> = state
        .store
        .favorite_streamers(&v.user.id)
        .await
        .map_err(|e| PageError::storage(&e))?
        .into_iter()
        .map(|s| Channel {
            login: s.login,
            display_name: s.display_name,
        })
        .collect();
    let (follows, follows_note) = match crate::web::user_tokens(state, &v.session) {
        None => (
            Vec::new(),
            Some("Sign in again to see the channels you follow.".to_owned()),
        ),
        Some(tokens) => {
            match state
                .web
                .helix
                .get_followed_channels(&tokens, &v.user.id, 50, None)
                .await
            {
                Ok(page) => (
                    page.data
                        .into_iter()
                        .filter(|f| !favorites.iter().any(|c| c.login == f.broadcaster_login))
                        .map(|f| Channel {
                            login: f.broadcaster_login,
                            display_name: f.broadcaster_name,
                        })
                        .collect(),
                    None,
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "Get Followed Channels failed");
                    (Vec::new(), Some("Twitch did not answer; the channels you follow are not shown right now.".to_owned()))
                }
            }
        }
    };
    Ok(HomePage {
        viewer: Some(NavUser::from(v)),
        csrf: v.session.csrf.clone(),
        favorites,
        follows,
        follows_note,
        error,
        typed,
    })
}

#[derive(Deserialize)]
struct FavoriteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
}

/// Finds a channel by login: in the store, else at Twitch (and remembers it).
/// `Ok(None)`: Twitch has no such channel.
async fn lookup_channel(state: &AppState, login: &str) -> Result<Option<Streamer>, PageError> {
    if let Some(s) = state
        .store
        .streamer_by_login(login)
        .await
        .map_err(|e| PageError::storage(&e))?
    {
        return Ok(Some(s));
    }
    let found = state
        .web
        .helix
        .get_users(state.web.app_tokens.as_ref(), &[], &[login])
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Get Users failed");
            PageError::new(
                StatusCode::BAD_GATEWAY,
                "Twitch is not answering",
                "sev could not look up that channel because Twitch did not answer. Please try again.",
            )
        })?;
    let Some(u) = found.into_iter().next() else {
        return Ok(None);
    };
    let s = Streamer {
        id: u.id,
        login: u.login,
        display_name: u.display_name,
    };
    state
        .store
        .upsert_streamer(&s)
        .await
        .map_err(|e| PageError::storage(&e))?;
    Ok(Some(s))
}

async fn add_favorite(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<FavoriteForm>,
) -> Response {
    if let Err(e) = viewer.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let login = f.login.trim().trim_start_matches('@').to_ascii_lowercase();
    let problem = if !valid_login(&login) {
        Some(format!(
            "“{}” is not a Twitch login: logins are 1 to 25 letters, digits and underscores.",
            f.login.trim()
        ))
    } else {
        match lookup_channel(&state, &login).await {
            Err(e) => return e.into_response(),
            Ok(None) => Some(format!("There is no Twitch channel named “{login}”.")),
            Ok(Some(s)) => {
                if let Err(e) = state.store.add_favorite(&viewer.user.id, &s.id).await {
                    return PageError::storage(&e).into_response();
                }
                // The subscription manager picks the new favorite up now, not in 30 s.
                state.favorites_changed();
                return Redirect::to(&format!("/s/{}", s.login)).into_response();
            }
        }
    };
    let status = if valid_login(&login) {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    };
    match home(&state, &viewer, problem, f.login).await {
        Ok(page) => (status, render(&page)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn remove_favorite(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(login): Path<String>,
    Form(f): Form<super::auth::CsrfForm>,
) -> Response {
    if let Err(e) = viewer.check_csrf(&f.csrf) {
        return e.into_response();
    }
    match state.store.streamer_by_login(&login).await {
        Ok(Some(s)) => {
            if let Err(e) = state.store.remove_favorite(&viewer.user.id, &s.id).await {
                return PageError::storage(&e).into_response();
            }
            state.favorites_changed();
        }
        Ok(None) => {}
        Err(e) => return PageError::storage(&e).into_response(),
    }
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
struct SuggestQuery {
    #[serde(default)]
    q: String,
}

/// Suggestions while typing a login: Search Channels, live channels first.
async fn suggest(
    State(state): State<AppState>,
    _viewer: Viewer,
    Query(q): Query<SuggestQuery>,
) -> Response {
    let query = q.q.trim().trim_start_matches('@');
    if query.is_empty() || query.len() > 25 {
        return Json(json!({ "channels": [] })).into_response();
    }
    match state
        .web
        .helix
        .search_channels(state.web.app_tokens.as_ref(), query, false, 8, None)
        .await
    {
        Ok(page) => {
            let mut channels = page.data;
            channels.sort_by_key(|c| !c.is_live);
            let channels: Vec<Value> = channels
                .into_iter()
                .map(|c| {
                    json!({
                        "login": c.broadcaster_login,
                        "display_name": c.display_name,
                        "live": c.is_live,
                        "category": c.game_name,
                    })
                })
                .collect();
            Json(json!({ "channels": channels })).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "Search Channels failed");
            (
                StatusCode::BAD_GATEWAY,
                Json(json!({ "channels": [], "error": "Twitch did not answer" })),
            )
                .into_response()
        }
    }
}

/// One feed entry as the page shows it; `sev.js` renders live ones the same way.
pub struct EventView {
    pub seq: i64,
    pub kind: String,
    pub text: String,
    pub message: Option<String>,
    pub occurred_at: String,
    pub time: String,
    pub recipients: Vec<String>,
    pub raw: String,
}

impl EventView {
    fn from_item(i: &FeedItem) -> Self {
        let s = |k: &str| i.feed.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            seq: i.seq,
            kind: s("kind").unwrap_or_else(|| "unknown".into()),
            text: s("text").unwrap_or_else(|| "Something happened".into()),
            message: s("message").filter(|m| !m.is_empty()),
            occurred_at: i
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            time: i.occurred_at.format("%H:%M:%S").to_string(),
            recipients: i
                .recipients
                .iter()
                .filter_map(|r| {
                    r.get("name")
                        .or_else(|| r.get("login"))
                        .and_then(Value::as_str)
                })
                .map(str::to_owned)
                .collect(),
            raw: serde_json::to_string_pretty(i).unwrap_or_default(),
        }
    }
}

pub struct Tier {
    pub name: &'static str,
    pub covers: &'static str,
    pub active: bool,
    pub detail: String,
    /// Broadcaster mode: where turning it on starts.
    pub turn_on: Option<String>,
    /// Broadcaster mode: it is on and can be turned off.
    pub turn_off: bool,
}

#[derive(Clone)]
pub struct Header {
    pub live: bool,
    pub title: String,
    pub category: String,
    pub viewers: Option<i64>,
    pub known: bool,
}

#[derive(Template)]
#[template(path = "stream.html")]
struct StreamPage {
    viewer: Option<NavUser>,
    csrf: String,
    streamer: Streamer,
    header: Header,
    is_favorite: bool,
    player_src: String,
    chat_src: String,
    events: Vec<EventView>,
    cursor: i64,
    tiers: Vec<Tier>,
}

/// How long a channel header is reused; live events update the open page in between.
const HEADER_FOR: std::time::Duration = std::time::Duration::from_secs(30);

async fn channel_header(state: &AppState, id: &str) -> Header {
    let cached = state.web.headers.lock().ok().and_then(|m| {
        m.get(id)
            .filter(|(at, _)| at.elapsed() < HEADER_FOR)
            .map(|(_, h)| h.clone())
    });
    if let Some(h) = cached {
        return h;
    }
    let fresh = fetch_header(state, id).await;
    if fresh.known
        && let Ok(mut m) = state.web.headers.lock()
    {
        // Bounded: old entries go when it grows past what a busy instance shows in 30 s.
        if m.len() > 10_000 {
            m.retain(|_, (at, _)| at.elapsed() < HEADER_FOR);
        }
        m.insert(id.to_owned(), (std::time::Instant::now(), fresh.clone()));
    }
    fresh
}

async fn fetch_header(state: &AppState, id: &str) -> Header {
    let app = state.web.app_tokens.as_ref();
    let helix = &state.web.helix;
    let ids = [id];
    let (streams, channels) = tokio::join!(
        helix.get_streams(app, &ids, &[]),
        helix.get_channels(app, &ids)
    );
    let channel = channels.ok().and_then(|c| c.into_iter().next());
    match streams {
        Ok(s) => {
            let live = s.into_iter().next();
            Header {
                live: live.is_some(),
                title: live
                    .as_ref()
                    .map(|l| l.title.clone())
                    .or_else(|| channel.as_ref().map(|c| c.title.clone()))
                    .unwrap_or_default(),
                category: live
                    .as_ref()
                    .map(|l| l.game_name.clone())
                    .or_else(|| channel.as_ref().map(|c| c.game_name.clone()))
                    .unwrap_or_default(),
                viewers: live.map(|l| l.viewer_count),
                known: true,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "Get Streams failed; the header shows what it can");
            Header {
                live: false,
                title: channel
                    .as_ref()
                    .map(|c| c.title.clone())
                    .unwrap_or_default(),
                category: channel.map(|c| c.game_name).unwrap_or_default(),
                viewers: None,
                known: false,
            }
        }
    }
}

/// Which tiers deliver for this channel, and why the others do not (PRODUCT.md).
async fn tiers(
    state: &AppState,
    streamer: &Streamer,
    is_favorite: bool,
    consent: &ConsentState,
) -> Vec<Tier> {
    let streamer_id = streamer.id.as_str();
    let status = state.subscription_status().await;
    let wanted = sev_pipeline::manager::PUBLIC_TYPES.len();
    let public = match &status {
        _ if state.config.twitch.client_id.is_empty() => (
            false,
            "This sev instance is not connected to Twitch.".to_owned(),
        ),
        None => (false, "Connecting to Twitch…".to_owned()),
        Some(st) => {
            let ok = st
                .subscribed
                .iter()
                .filter(|s| s.want.streamer_id == streamer_id)
                .count();
            let failed = st
                .not_subscribed
                .iter()
                .find(|s| s.want.streamer_id == streamer_id);
            if ok >= wanted {
                (true, "Subscribed for this channel.".to_owned())
            } else if let Some(f) = failed {
                (
                    false,
                    format!("Twitch refused a subscription: {}", f.reason),
                )
            } else if is_favorite {
                (
                    false,
                    "Subscribing now; events follow within seconds.".to_owned(),
                )
            } else {
                (
                    false,
                    "Add this channel to your channels to receive its events.".to_owned(),
                )
            }
        }
    };
    let chat_active = crate::chat::reading(state, streamer_id).await;
    vec![
        Tier {
            name: "Public",
            covers: "going live or offline, title and category changes, raids",
            active: public.0,
            detail: public.1,
            turn_on: None,
            turn_off: false,
        },
        Tier {
            name: "Chat",
            covers: "subs, resubs, gift subs, cheers, announcements",
            active: chat_active,
            detail: if chat_active {
                "Read from chat with the permission of a viewer who follows this channel in sev."
                    .into()
            } else if is_favorite {
                "Starting: sev reads chat with the permission of a signed-in fan of this channel."
                    .into()
            } else {
                "Needs a signed-in viewer who granted chat access to add this channel.".into()
            },
            turn_on: None,
            turn_off: false,
        },
        Tier {
            name: "Broadcaster",
            covers: "follows, polls, predictions, hype trains, channel point redemptions",
            active: *consent == ConsentState::On,
            detail: match consent {
                ConsentState::On => "Broadcaster mode is on: you see them, nobody else does.".into(),
                ConsentState::Pending(why) => why.clone(),
                ConsentState::Off => "Shown only to the streamer and moderators who turn on \
                                      broadcaster mode. Is this your channel, or do you moderate it?"
                    .into(),
            },
            turn_on: (*consent == ConsentState::Off).then(|| {
                let back: String =
                    url::form_urlencoded::byte_serialize(format!("/s/{}", streamer.login).as_bytes())
                        .collect();
                format!("/login?channel={}&return_to={back}", streamer.login)
            }),
            turn_off: *consent != ConsentState::Off,
        },
    ]
}

async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(login): Path<String>,
) -> Response {
    match stream_page(&state, &viewer, &login).await {
        Ok(page) => render(&page),
        Err(e) => e.into_response(),
    }
}

async fn stream_page(
    state: &AppState,
    viewer: &Viewer,
    login: &str,
) -> Result<StreamPage, PageError> {
    let login = login.to_ascii_lowercase();
    if !valid_login(&login) {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Not a Twitch login",
            "Twitch logins are 1 to 25 letters, digits and underscores.",
        ));
    }
    let Some(streamer) = lookup_channel(state, &login).await? else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No such channel",
            format!("There is no Twitch channel named “{login}”."),
        ));
    };
    let store = &state.store;
    store
        .upsert_user(&viewer.user)
        .await
        .map_err(|e| PageError::storage(&e))?;
    let is_favorite = store
        .favorites(&viewer.user.id)
        .await
        .map_err(|e| PageError::storage(&e))?
        .contains(&streamer.id);
    let n = state.config.feed_history;
    // Hidden (consent-tier) events are fetched too, so the page's cursor is the log's newest.
    let recent = store
        .recent_events(&streamer.id, n.saturating_mul(4))
        .await
        .map_err(|e| PageError::storage(&e))?;
    let cursor = recent.last().map_or(0, |e| e.seq);
    let consent = consent_state(state, &viewer.user.id, &streamer.id)
        .await
        .map_err(|e| PageError::storage(&e))?;
    let on = consent == ConsentState::On;
    let items: Vec<FeedItem> = recent.iter().filter(|e| visible(e, on)).map(item).collect();
    let items = fold_gift_bombs(items);
    let skip = items.len().saturating_sub(n as usize);
    let events: Vec<EventView> = items[skip..]
        .iter()
        .rev()
        .map(EventView::from_item)
        .collect();

    let web = &state.web;
    let mut player = state.config.twitch.player_url.clone();
    player
        .query_pairs_mut()
        .append_pair("channel", &streamer.login)
        .append_pair("parent", &web.embed_parent)
        .append_pair("muted", "true");
    let mut chat = crate::config::join(
        &state.config.twitch.chat_url,
        &format!("{}/chat", streamer.login),
    );
    chat.query_pairs_mut()
        .append_pair("parent", &web.embed_parent)
        .append_pair("darkpopout", "");
    Ok(StreamPage {
        viewer: Some(NavUser::from(viewer)),
        csrf: viewer.session.csrf.clone(),
        header: channel_header(state, &streamer.id).await,
        tiers: tiers(state, &streamer, is_favorite, &consent).await,
        streamer,
        is_favorite,
        player_src: player.to_string(),
        chat_src: chat.to_string(),
        events,
        cursor,
    })
}

/// Turns broadcaster mode off for this viewer and channel; the subscriptions it needed go
/// after the grace period, unless someone else's grant still wants them.
async fn broadcaster_mode_off(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(login): Path<String>,
    Form(f): Form<super::auth::CsrfForm>,
) -> Response {
    if let Err(e) = viewer.check_csrf(&f.csrf) {
        return e.into_response();
    }
    match state.store.streamer_by_login(&login).await {
        Ok(Some(s)) => {
            if let Err(e) = state.store.revoke_consent(&viewer.user.id, &s.id).await {
                return PageError::storage(&e).into_response();
            }
            state.favorites_changed();
            Redirect::to(&format!("/s/{}", s.login)).into_response()
        }
        Ok(None) => Redirect::to("/").into_response(),
        Err(e) => PageError::storage(&e).into_response(),
    }
}
