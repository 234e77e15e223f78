//! Delivering EventSub messages: webhook verification challenges, signed webhook
//! notifications with retries (and revocation after repeated failures), WebSocket frames, and
//! conduits (each event to one enabled shard, retried once on another). Faults injected
//! through the control API apply here.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};
use sev_twitch::eventsub::Subscription;

use crate::eventsub::{Outbound, ShardRec, condition_matches};
use crate::state::{Shared, lock};

/// Faults for the next deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFaults {
    /// Drop the next N messages (never sent).
    pub drop: u32,
    /// Send the next N messages twice, with the same message id.
    pub duplicate: u32,
    /// Hold the next message back and send it after the one that follows it.
    pub reorder: u32,
    /// Delay the next N messages by this long.
    pub delay: Option<(Duration, u32)>,
    /// A message held back by `reorder`.
    pub held: Option<Box<Pending>>,
}

/// One message on its way to one destination.
#[derive(Debug, Clone)]
pub struct Pending {
    pub message_id: String,
    pub subscription: Subscription,
    pub event: Value,
    pub to: Destination,
}

#[derive(Debug, Clone)]
pub enum Destination {
    Session(String),
    Webhook {
        callback: String,
        secret: String,
        sub_id: Option<String>,
    },
    Conduit(String),
}

fn webhook_body(sub: &Subscription, event: &Value) -> Vec<u8> {
    let mut shown = sub.clone();
    shown.transport.secret = None;
    serde_json::to_vec(&json!({"subscription": shown, "event": event})).unwrap_or_default()
}

fn ws_frame(message_id: &str, message_type: &str, sub: &Subscription, payload: Value) -> String {
    json!({
        "metadata": {
            "message_id": message_id, "message_type": message_type,
            "message_timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "subscription_type": sub.kind, "subscription_version": sub.version,
        },
        "payload": payload,
    })
    .to_string()
}

/// One webhook POST as Twitch sends it.
struct Post<'a> {
    callback: &'a str,
    secret: &'a str,
    message_id: &'a str,
    message_type: &'a str,
    sub: &'a Subscription,
    retry: u32,
}

async fn post_webhook(
    http: &reqwest::Client,
    p: &Post<'_>,
    body: &[u8],
) -> Result<reqwest::Response, String> {
    let headers = sev_twitch::webhook::signed_headers(
        p.secret.as_bytes(),
        p.message_id,
        p.message_type,
        Utc::now(),
        Some((&p.sub.kind, &p.sub.version)),
        p.retry,
        body,
    );
    let mut req = http
        .post(p.callback)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send().await.map_err(|e| e.to_string())
}

fn http(state: &Shared) -> reqwest::Client {
    let timeout = lock(state).config.webhook_timeout;
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Sends the verification challenge of a new webhook subscription and records the outcome.
pub fn spawn_verification(state: Shared, sub: Subscription, secret: String) {
    tokio::spawn(async move {
        let challenge = uuid::Uuid::new_v4().to_string();
        let callback = sub.transport.callback.clone().unwrap_or_default();
        let body = serde_json::to_vec(&json!({"challenge": challenge, "subscription": sub}))
            .unwrap_or_default();
        let client = http(&state);
        let message_id = uuid::Uuid::new_v4().to_string();
        let ok = match post_webhook(
            &client,
            &Post {
                callback: &callback,
                secret: &secret,
                message_id: &message_id,
                message_type: "webhook_callback_verification",
                sub: &sub,
                retry: 0,
            },
            &body,
        )
        .await
        {
            Ok(res) if res.status().is_success() => res.text().await.is_ok_and(|t| t == challenge),
            _ => false,
        };
        let mut st = lock(&state);
        if let Some(rec) = st.eventsub.find_mut(&sub.id) {
            rec.sub.status = if ok {
                "enabled"
            } else {
                "webhook_callback_verification_failed"
            }
            .into();
        }
    });
}

/// A delivery attempt to a conduit shard's or subscription's webhook, with Twitch's retries.
/// Returns whether it was acknowledged (2xx).
async fn deliver_webhook(state: &Shared, callback: &str, secret: &str, p: &Pending) -> bool {
    let client = http(state);
    let (attempts, retry_delay) = {
        let st = lock(state);
        (
            st.config.webhook_attempts.max(1),
            st.config.webhook_retry_delay,
        )
    };
    let body = webhook_body(&p.subscription, &p.event);
    for retry in 0..attempts {
        if retry > 0 {
            tokio::time::sleep(retry_delay * retry).await;
        }
        match post_webhook(
            &client,
            &Post {
                callback,
                secret,
                message_id: &p.message_id,
                message_type: "notification",
                sub: &p.subscription,
                retry,
            },
            &body,
        )
        .await
        {
            Ok(res) if res.status().is_success() => return true,
            _ => {}
        }
    }
    false
}

fn send_to_session(state: &Shared, session_id: &str, p: &Pending) -> bool {
    let st = lock(state);
    match st.eventsub.sessions.get(session_id) {
        Some(s) if s.connected => {
            let mut sub = p.subscription.clone();
            sub.transport.secret = None;
            let payload = json!({"subscription": sub, "event": p.event});
            s.tx.send(Outbound::Frame(ws_frame(
                &p.message_id,
                "notification",
                &p.subscription,
                payload,
            )))
            .is_ok()
        }
        _ => false,
    }
}

/// Picks the next enabled shard after `skip`, round robin.
fn pick_shard(state: &Shared, conduit_id: &str, skip: Option<&str>) -> Option<ShardRec> {
    let mut st = lock(state);
    let c = st
        .eventsub
        .conduits
        .iter_mut()
        .find(|c| c.id == conduit_id)?;
    let n = c.shards.len();
    for i in 0..n {
        let idx = (c.next + i) % n;
        let s = &c.shards[idx];
        if s.status == "enabled" && Some(s.id.as_str()) != skip {
            c.next = idx + 1;
            return Some(s.clone());
        }
    }
    None
}

async fn deliver_to_shard(state: &Shared, shard: &ShardRec, p: &Pending) -> bool {
    match shard.transport.method.as_str() {
        "websocket" => shard
            .transport
            .session_id
            .as_deref()
            .is_some_and(|sid| send_to_session(state, sid, p)),
        _ => match (&shard.transport.callback, &shard.secret) {
            (Some(cb), Some(secret)) => deliver_webhook(state, cb, secret, p).await,
            _ => false,
        },
    }
}

/// Sends one message to its destination. Webhook failures count towards revocation.
async fn send(state: Shared, p: Pending) {
    match &p.to {
        Destination::Session(sid) => {
            send_to_session(&state, sid, &p);
        }
        Destination::Webhook {
            callback,
            secret,
            sub_id,
        } => {
            let ok = deliver_webhook(&state, callback, secret, &p).await;
            if let Some(id) = sub_id {
                record_webhook_outcome(&state, id, ok).await;
            }
        }
        Destination::Conduit(cid) => {
            // Each event goes to one enabled shard; on failure, once more to another.
            if let Some(first) = pick_shard(&state, cid, None)
                && !deliver_to_shard(&state, &first, &p).await
                && let Some(second) = pick_shard(&state, cid, Some(&first.id))
            {
                deliver_to_shard(&state, &second, &p).await;
            }
        }
    }
}

async fn record_webhook_outcome(state: &Shared, sub_id: &str, ok: bool) {
    let revoked = {
        let mut st = lock(state);
        let limit = st.config.revoke_after_failures;
        let Some(rec) = st.eventsub.find_mut(sub_id) else {
            return;
        };
        if ok {
            rec.failures = 0;
            None
        } else {
            rec.failures += 1;
            if rec.failures >= limit && rec.sub.status == "enabled" {
                rec.sub.status = "notification_failures_exceeded".into();
                Some((rec.sub.clone(), rec.secret.clone().unwrap_or_default()))
            } else {
                None
            }
        }
    };
    if let Some((sub, secret)) = revoked {
        send_revocation(state, &sub, &secret).await;
    }
}

/// Tells a subscription's owner it was revoked: a WebSocket frame, a webhook POST, or for a
/// conduit either of those on one of its enabled shards.
pub async fn send_revocation(state: &Shared, sub: &Subscription, secret: &str) {
    let message_id = uuid::Uuid::new_v4().to_string();
    let (session, webhook) = match sub.transport.method.as_str() {
        "webhook" => (
            None,
            sub.transport
                .callback
                .clone()
                .map(|cb| (cb, secret.to_owned())),
        ),
        "websocket" => (sub.transport.session_id.clone(), None),
        "conduit" => {
            let Some(shard) = sub
                .transport
                .conduit_id
                .as_deref()
                .and_then(|c| pick_shard(state, c, None))
            else {
                return;
            };
            (
                shard.transport.session_id.clone(),
                shard.transport.callback.clone().zip(shard.secret.clone()),
            )
        }
        _ => return,
    };
    if let Some(sid) = session {
        let st = lock(state);
        if let Some(s) = st.eventsub.sessions.get(&sid) {
            let _ = s.tx.send(Outbound::Frame(ws_frame(
                &message_id,
                "revocation",
                sub,
                json!({"subscription": sub}),
            )));
        }
    } else if let Some((callback, secret)) = webhook {
        let body = serde_json::to_vec(&json!({"subscription": sub})).unwrap_or_default();
        let post = Post {
            callback: &callback,
            secret: &secret,
            message_id: &message_id,
            message_type: "revocation",
            sub,
            retry: 0,
        };
        let _ = post_webhook(&http(state), &post, &body).await;
    }
}

/// What an injected event reached.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeliveryReport {
    pub subscriptions: Vec<String>,
    pub message_ids: Vec<String>,
}

/// Delivers an event to every enabled subscription of its type whose condition matches.
pub fn publish(
    state: &Shared,
    kind: &str,
    event_condition: &Map<String, Value>,
    event: &Value,
) -> DeliveryReport {
    let pendings: Vec<Pending> = {
        let st = lock(state);
        st.eventsub
            .subs
            .iter()
            .filter(|r| {
                r.sub.kind == kind
                    && r.sub.status == "enabled"
                    && condition_matches(&r.sub.condition, event_condition)
            })
            .map(|r| {
                let to = match r.sub.transport.method.as_str() {
                    "websocket" => {
                        Destination::Session(r.sub.transport.session_id.clone().unwrap_or_default())
                    }
                    "webhook" => Destination::Webhook {
                        callback: r.sub.transport.callback.clone().unwrap_or_default(),
                        secret: r.secret.clone().unwrap_or_default(),
                        sub_id: Some(r.sub.id.clone()),
                    },
                    _ => {
                        Destination::Conduit(r.sub.transport.conduit_id.clone().unwrap_or_default())
                    }
                };
                Pending {
                    message_id: uuid::Uuid::new_v4().to_string(),
                    subscription: r.sub.clone(),
                    event: event.clone(),
                    to,
                }
            })
            .collect()
    };
    let report = DeliveryReport {
        subscriptions: pendings.iter().map(|p| p.subscription.id.clone()).collect(),
        message_ids: pendings.iter().map(|p| p.message_id.clone()).collect(),
    };
    for p in pendings {
        dispatch(state, p);
    }
    report
}

/// Applies the delivery faults, then sends.
fn dispatch(state: &Shared, p: Pending) {
    let mut out: Vec<(Pending, Duration)> = Vec::new();
    {
        let mut st = lock(state);
        let f = &mut st.faults_delivery;
        if f.drop > 0 {
            f.drop -= 1;
            return;
        }
        let delay = match &mut f.delay {
            Some((d, n)) if *n > 0 => {
                *n -= 1;
                *d
            }
            _ => Duration::ZERO,
        };
        if f.reorder > 0 && f.held.is_none() {
            f.reorder -= 1;
            f.held = Some(Box::new(p));
            return;
        }
        let held = f.held.take();
        if f.duplicate > 0 {
            f.duplicate -= 1;
            out.push((p.clone(), delay));
        }
        out.push((p, delay));
        if let Some(h) = held {
            out.push((*h, delay));
        }
    }
    for (p, delay) in out {
        enqueue(state, p, delay);
    }
}

fn queue_key(to: &Destination) -> String {
    match to {
        Destination::Session(s) => format!("session:{s}"),
        Destination::Webhook { callback, .. } => format!("webhook:{callback}"),
        Destination::Conduit(c) => format!("conduit:{c}"),
    }
}

/// One worker per destination sends its messages one after another, so each destination
/// sees events in the order they were published (a duplicate right after its original, a
/// held message after the next).
fn enqueue(state: &Shared, p: Pending, delay: Duration) {
    let key = queue_key(&p.to);
    let mut st = lock(state);
    let tx = st.queues.entry(key.clone()).or_insert_with(|| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Pending, Duration)>();
        let state = state.clone();
        tokio::spawn(async move {
            while let Some((p, delay)) = rx.recv().await {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                send(state.clone(), p).await;
            }
        });
        tx
    });
    if let Err(e) = tx.send((p, delay)) {
        // The worker is gone (its runtime stopped): start over with a new one.
        st.queues.remove(&key);
        drop(st);
        let (p, delay) = e.0;
        enqueue(state, p, delay);
    }
}
