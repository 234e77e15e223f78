//! Stand-ins for Twitch's player and chat embeds, so the demo's stream page is whole offline.
//! Like Twitch's, they refuse to render without a `parent`; they show the channel's state
//! instead of video, and a note instead of chat.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::state::{Shared, lock};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/embed/player", get(player))
        .route("/embed/{login}/chat", get(chat))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Twitch simulator embed</title>\
         <style>body{{margin:0;min-height:100vh;display:grid;place-items:center;background:#0e0e10;color:#efeff1;\
         font-family:system-ui,sans-serif;text-align:center}}p{{margin:.3rem 1rem}}.dim{{color:#adadb8;font-size:.85rem}}\
         .live{{color:#ff4f4f;font-weight:700}}</style></head><body><div>{body}</div></body></html>"
    ))
    .into_response()
}

fn refuse(what: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(&format!(
            "<p>This {what} embed needs a <code>parent</code> parameter naming the embedding site.</p>"
        )),
    )
        .into_response()
}

async fn player(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("parent").is_none_or(String::is_empty) {
        return refuse("player");
    }
    let login = q.get("channel").cloned().unwrap_or_default();
    let st = lock(&state);
    let Some(user) = st.world.user_by_login(&login) else {
        return page(&format!("<p>No channel named {}.</p>", escape(&login)));
    };
    let channel = st.world.channels.get(&user.id);
    let body = match channel.and_then(|c| c.live.as_ref().map(|l| (c, l))) {
        Some((c, live)) => format!(
            "<p class=\"live\">● LIVE</p><p>{}</p><p class=\"dim\">{} · {} viewers</p>\
             <p class=\"dim\">Simulated player: no video offline.</p>",
            escape(&c.title),
            escape(&c.category_name),
            live.viewer_count
        ),
        None => format!(
            "<p>{} is offline.</p><p class=\"dim\">Simulated player.</p>",
            escape(&user.display_name)
        ),
    };
    page(&body)
}

async fn chat(
    State(state): State<Shared>,
    Path(login): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("parent").is_none_or(String::is_empty) {
        return refuse("chat");
    }
    let st = lock(&state);
    let name = st
        .world
        .user_by_login(&login)
        .map_or_else(|| login.clone(), |u| u.display_name.clone());
    page(&format!(
        "<p>{} chat</p><p class=\"dim\">Simulated chat embed: chat messages are not simulated.</p>",
        escape(&name)
    ))
}
