//! Conduits (PLATFORM.md §5) with WebSocket shards: sev holds the public-tier subscriptions
//! on one conduit and connects outbound, so it needs no public HTTPS.
//!
//! [`ensure_conduit`] finds or creates the conduit; [`Shard::spawn`] runs one shard: a
//! [`WsSession`] whose every new session is attached to the shard id at once (Twitch wants
//! that within 10 s of the welcome), so a lost socket is re-attached when it reconnects.
//! Subscriptions live on the conduit, not the socket: a shard's loss loses none of them.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::eventsub::{Notification, Subscription, Transport};
use crate::helix::{Conduit, HelixClient, HelixError};
use crate::oauth::TokenSource;
use crate::ws::{Disconnect, SessionEvent, WsConfig, WsSession};

/// The app's conduit with at least `shard_count` shards: the existing one (grown if needed)
/// or a new one.
pub async fn ensure_conduit(
    helix: &HelixClient,
    app: &dyn TokenSource,
    shard_count: u32,
) -> Result<Conduit, HelixError> {
    match helix.get_conduits(app).await?.into_iter().next() {
        Some(c) if c.shard_count >= i64::from(shard_count) => Ok(c),
        Some(c) => helix.update_conduit(app, &c.id, shard_count).await,
        None => helix.create_conduit(app, shard_count).await,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShardEvent {
    /// A session is attached to the shard: events flow.
    Attached {
        session_id: String,
    },
    /// Twitch refused to attach the session; the socket will be closed (4003) and retried.
    AttachFailed {
        session_id: String,
        error: String,
    },
    Notification {
        message_id: String,
        notification: Box<Notification>,
    },
    Revocation(Box<Subscription>),
    /// The socket was lost; the shard is disabled until the next `Attached`.
    Lost(Disconnect),
}

/// A running shard. Dropping it stops the socket.
pub struct Shard {
    events: mpsc::Receiver<ShardEvent>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Shard {
    pub fn spawn(
        helix: Arc<HelixClient>,
        app: Arc<dyn TokenSource>,
        conduit_id: String,
        shard_id: String,
        ws: WsConfig,
    ) -> Self {
        let (tx, events) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut session = WsSession::spawn(ws);
            loop {
                let event = tokio::select! {
                    () = token.cancelled() => break,
                    e = session.next_event() => match e { Some(e) => e, None => break },
                };
                let out = match event {
                    SessionEvent::Welcome { session_id, .. } => {
                        let transport = Transport {
                            method: "websocket".into(),
                            session_id: Some(session_id.clone()),
                            ..Transport::default()
                        };
                        match helix
                            .update_shards(
                                app.as_ref(),
                                &conduit_id,
                                &[(shard_id.clone(), transport)],
                            )
                            .await
                        {
                            Ok(u) if u.errors.is_empty() => ShardEvent::Attached { session_id },
                            Ok(u) => ShardEvent::AttachFailed {
                                session_id,
                                error: u
                                    .errors
                                    .iter()
                                    .map(|e| format!("{}: {}", e.code, e.message))
                                    .collect::<Vec<_>>()
                                    .join("; "),
                            },
                            Err(e) => ShardEvent::AttachFailed {
                                session_id,
                                error: e.to_string(),
                            },
                        }
                    }
                    // Same session on a new socket: the shard follows it without a PATCH.
                    SessionEvent::Reconnected { .. } => continue,
                    SessionEvent::Notification {
                        message_id,
                        notification,
                    } => ShardEvent::Notification {
                        message_id,
                        notification,
                    },
                    SessionEvent::Revocation(s) => ShardEvent::Revocation(s),
                    SessionEvent::Disconnected(d) => ShardEvent::Lost(d),
                };
                if tx.send(out).await.is_err() {
                    break;
                }
            }
            session.stop().await;
        });
        Self {
            events,
            stop,
            task: Some(task),
        }
    }

    pub async fn next_event(&mut self) -> Option<ShardEvent> {
        self.events.recv().await
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
