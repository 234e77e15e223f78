//! sev's own CSS, JavaScript and icon, compiled into the binary: no CDN at run time.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/assets/{file}", get(asset))
}

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "sev.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/sev.css"),
    ),
    (
        "sev.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/sev.js"),
    ),
    (
        "theme.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/theme.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../assets/favicon.svg"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                // Short: a new release must not be hidden behind a stale cache for long.
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
