//! The control API under `/_sim`: inject events (`sev trigger` uses it), inspect
//! subscriptions and sessions, and inject faults. It is a local test tool: no auth.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::delivery::{self, DeliveryReport};
use crate::events::Trigger;
use crate::eventsub::Outbound;
use crate::state::{Shared, lock};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/_sim/world", get(world))
        .route("/_sim/trigger", post(trigger))
        .route("/_sim/subscriptions", get(subscriptions))
        .route("/_sim/subscriptions/{id}/revoke", post(revoke_subscription))
        .route("/_sim/sessions", get(sessions))
        .route("/_sim/sessions/{id}/reconnect", post(reconnect))
        .route("/_sim/sessions/{id}/close", post(close))
        .route("/_sim/sessions/{id}/keepalive", post(keepalive))
        .route("/_sim/faults/helix", post(helix_fault))
        .route("/_sim/faults/delivery", post(delivery_fault))
        .route(
            "/_sim/users/{login}/revoke-authorization",
            post(revoke_authorization),
        )
}

fn err(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"status": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

async fn world(State(state): State<Shared>) -> Response {
    let st = lock(&state);
    let users: Vec<Value> = st
        .world
        .users
        .iter()
        .map(|u| {
            let c = st.world.channels.get(&u.id);
            json!({"id": u.id, "login": u.login, "display_name": u.display_name,
                "live": c.is_some_and(|c| c.live.is_some()), "title": c.map(|c| c.title.clone()),
                "followers": c.map_or(0, |c| c.followers.len()), "moderators": c.map(|c| c.moderators.clone())})
        })
        .collect();
    axum::Json(json!({"client_id": st.config.client_id, "users": users})).into_response()
}

/// Injects an event: built from the world, delivered to every matching subscription.
/// A `community_sub_gift` is followed by its individual `sub_gift`s, as on Twitch.
pub fn inject(state: &Shared, t: &Trigger) -> Result<(Value, DeliveryReport), String> {
    let (event, condition) = {
        let mut st = lock(state);
        crate::events::build(&mut st.world, t)?
    };
    let mut report = delivery::publish(state, &t.kind, &condition, &Value::Object(event.clone()));
    let bomb = t.kind == "channel.chat.notification"
        && t.notice_type.as_deref() == Some("community_sub_gift");
    if bomb {
        let gift_id = event
            .get("community_sub_gift")
            .and_then(|g| g.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let recipients: Vec<(String, String, String)> = {
            let st = lock(state);
            st.world
                .users
                .iter()
                .filter(|u| u.broadcaster_type.is_empty())
                .map(|u| (u.id.clone(), u.login.clone(), u.display_name.clone()))
                .collect()
        };
        for i in 0..t.amount.unwrap_or(5).max(0) as usize {
            let (rid, rlogin, rname) = recipients
                .get(i % recipients.len().max(1))
                .cloned()
                .unwrap_or_default();
            let single = Trigger {
                notice_type: Some("sub_gift".into()),
                ..t.clone()
            };
            let (mut e, cond) = {
                let mut st = lock(state);
                crate::events::build(&mut st.world, &single)?
            };
            if let Some(g) = e.get_mut("sub_gift") {
                g["recipient_user_id"] = json!(rid);
                g["recipient_user_login"] = json!(rlogin);
                g["recipient_user_name"] = json!(rname);
                g["community_gift_id"] = gift_id.clone();
            }
            let r = delivery::publish(state, &t.kind, &cond, &Value::Object(e));
            report.subscriptions.extend(r.subscriptions);
            report.message_ids.extend(r.message_ids);
        }
    }
    Ok((Value::Object(event), report))
}

async fn trigger(State(state): State<Shared>, axum::Json(t): axum::Json<Trigger>) -> Response {
    match inject(&state, &t) {
        Ok((event, report)) => axum::Json(json!({"event": event, "subscriptions": report.subscriptions, "message_ids": report.message_ids})).into_response(),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

async fn subscriptions(State(state): State<Shared>) -> Response {
    let st = lock(&state);
    let data: Vec<Value> = st
        .eventsub
        .subs
        .iter()
        .map(|r| json!({"subscription": r.sub, "client_id": r.client_id, "owner_user_id": r.owner}))
        .collect();
    axum::Json(json!({"data": data, "total": data.len()})).into_response()
}

#[derive(Deserialize)]
struct RevokeBody {
    status: Option<String>,
}

async fn revoke_subscription(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Option<axum::Json<RevokeBody>>,
) -> Response {
    let status = body
        .and_then(|b| b.0.status)
        .unwrap_or_else(|| "authorization_revoked".into());
    let revoked = {
        let mut st = lock(&state);
        match st.eventsub.find_mut(&id) {
            Some(r) => {
                r.sub.status = status;
                Some((r.sub.clone(), r.secret.clone().unwrap_or_default()))
            }
            None => None,
        }
    };
    match revoked {
        Some((sub, secret)) => {
            delivery::send_revocation(&state, &sub, &secret).await;
            axum::Json(json!({"subscription": sub})).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "subscription not found"),
    }
}

async fn sessions(State(state): State<Shared>) -> Response {
    let st = lock(&state);
    let data: Vec<Value> = st
        .eventsub
        .sessions
        .values()
        .map(
            |s| json!({"id": s.id, "connected": s.connected, "user_id": s.user_id, "used": s.used}),
        )
        .collect();
    axum::Json(json!({"data": data})).into_response()
}

async fn reconnect(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match crate::ws::request_reconnect(&state, &id) {
        Some(url) => axum::Json(json!({"reconnect_url": url})).into_response(),
        None => err(StatusCode::NOT_FOUND, "no connected session with that id"),
    }
}

fn to_session(state: &Shared, id: &str, out: Outbound) -> Response {
    let st = lock(state);
    match st.eventsub.sessions.get(id).filter(|s| s.connected) {
        Some(s) if s.tx.send(out).is_ok() => StatusCode::NO_CONTENT.into_response(),
        _ => err(StatusCode::NOT_FOUND, "no connected session with that id"),
    }
}

#[derive(Deserialize)]
struct CloseBody {
    code: u16,
}

async fn close(
    State(state): State<Shared>,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<CloseBody>,
) -> Response {
    if !(4000..=4007).contains(&b.code) {
        return err(StatusCode::BAD_REQUEST, "code must be 4000 to 4007");
    }
    to_session(
        &state,
        &id,
        Outbound::Close(b.code, "closed by the simulator".into()),
    )
}

#[derive(Deserialize)]
struct KeepaliveBody {
    enabled: bool,
}

async fn keepalive(
    State(state): State<Shared>,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<KeepaliveBody>,
) -> Response {
    to_session(&state, &id, Outbound::Keepalive(b.enabled))
}

#[derive(Deserialize)]
struct HelixFault {
    status: u16,
    count: u32,
}

async fn helix_fault(
    State(state): State<Shared>,
    axum::Json(f): axum::Json<HelixFault>,
) -> Response {
    if !(400..=599).contains(&f.status) {
        return err(StatusCode::BAD_REQUEST, "status must be 4xx or 5xx");
    }
    lock(&state).faults.helix_status = (f.count > 0).then_some((f.status, f.count));
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeliveryFault {
    drop: u32,
    duplicate: u32,
    reorder: u32,
    delay_ms: u64,
    delay_count: u32,
}

async fn delivery_fault(
    State(state): State<Shared>,
    axum::Json(f): axum::Json<DeliveryFault>,
) -> Response {
    let mut st = lock(&state);
    let d = &mut st.faults_delivery;
    d.drop = f.drop;
    d.duplicate = f.duplicate;
    d.reorder = f.reorder;
    d.delay = (f.delay_count > 0).then_some((Duration::from_millis(f.delay_ms), f.delay_count));
    StatusCode::NO_CONTENT.into_response()
}

/// The user disconnects the app on Twitch: every token dies, their subscriptions are
/// revoked with `authorization_revoked`, and `user.authorization.revoke` is sent.
async fn revoke_authorization(State(state): State<Shared>, Path(login): Path<String>) -> Response {
    let (user, revoked, client_id) = {
        let mut st = lock(&state);
        let Some(user) = st.world.user_by_login(&login).cloned() else {
            return err(StatusCode::NOT_FOUND, "unknown user");
        };
        st.tokens
            .retain(|_, t| t.user_id.as_deref() != Some(user.id.as_str()));
        st.refresh.retain(|_, r| r.user_id != user.id);
        let mut revoked = Vec::new();
        for r in &mut st.eventsub.subs {
            let names_user = r.owner.as_deref() == Some(user.id.as_str())
                || r.sub
                    .condition
                    .values()
                    .any(|v| v.as_str() == Some(user.id.as_str()));
            if names_user
                && r.sub.status == "enabled"
                && sev_twitch::eventsub::type_info(&r.sub.kind)
                    .is_some_and(|i| !i.scopes.is_empty())
            {
                r.sub.status = "authorization_revoked".into();
                revoked.push((r.sub.clone(), r.secret.clone().unwrap_or_default()));
            }
        }
        (user, revoked, st.config.client_id.clone())
    };
    for (sub, secret) in &revoked {
        delivery::send_revocation(&state, sub, secret).await;
    }
    let mut condition = serde_json::Map::new();
    condition.insert("client_id".into(), json!(client_id));
    let event = json!({"client_id": client_id, "user_id": user.id, "user_login": user.login, "user_name": user.display_name});
    delivery::publish(&state, "user.authorization.revoke", &condition, &event);
    axum::Json(json!({"revoked_subscriptions": revoked.len()})).into_response()
}
