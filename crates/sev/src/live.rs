//! A viewer's live feed over a WebSocket, resumable by cursor, with nothing lost or doubled.
//!
//! The connection subscribes to the streamer's topic *first*, then sends what the store holds
//! after the viewer's cursor, then live events. Every event carries its cursor (`seq`); the
//! connection drops what it already sent and, whenever the bus may have skipped something (a
//! gap: this viewer fell behind, or the bus reconnected) or an event arrives out of sequence,
//! reads the store again from its cursor. A slow viewer therefore costs a bounded queue and a
//! store read, never unbounded memory or the other viewers' latency. Cursors older than the
//! retention window get an explicit `gap` message.
//!
//! Messages (JSON text frames): `{"type":"event","event":{…}}`,
//! `{"type":"gap","after":N,"next":M}`, `{"type":"ready","cursor":N}`.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde_json::{Value, json};
use sev_bus::Delivery;
use sev_store::{StoredEvent, Streamer};

use crate::routes::api::{SEND_TIMEOUT, close, item, visible};
use crate::state::AppState;
use crate::web::consent::ConsentViewer;

const PAGE: u32 = 500;
const PING_EVERY: Duration = Duration::from_secs(20);

/// Why a connection ended early.
enum End {
    ViewerGone,
    TooSlow,
    Unavailable,
}

struct Conn {
    socket: WebSocket,
    /// The last cursor this viewer has been brought past.
    cursor: i64,
    /// Set when this viewer sees consent-tier events (broadcaster mode); checked again
    /// before each one is sent.
    consent: Option<ConsentViewer>,
    state: AppState,
}

impl Conn {
    async fn send(&mut self, v: Value) -> Result<(), End> {
        match tokio::time::timeout(
            SEND_TIMEOUT,
            self.socket.send(Message::Text(v.to_string().into())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ViewerGone),
            Err(_) => Err(End::TooSlow),
        }
    }

    async fn deliver(&mut self, e: &StoredEvent) -> Result<(), End> {
        if e.seq <= self.cursor {
            return Ok(()); // already sent (history and live overlap)
        }
        let show = visible(e, false)
            || match &self.consent {
                Some(c) if c.still(&self.state).await => true,
                Some(_) => {
                    // Signed out or broadcaster mode off: no more of these on this socket.
                    self.consent = None;
                    false
                }
                None => false,
            };
        if show {
            self.send(json!({ "type": "event", "event": item(e) }))
                .await?;
        }
        self.cursor = e.seq;
        Ok(())
    }

    /// Sends everything the store holds after the cursor.
    async fn catch_up(&mut self, state: &AppState, streamer_id: &str) -> Result<(), End> {
        loop {
            let page = state
                .store
                .events_after(streamer_id, self.cursor, PAGE)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "reading the event log for a viewer failed");
                    End::Unavailable
                })?;
            if page.gap {
                let next = page.events.first().map_or(page.last_seq + 1, |e| e.seq);
                self.send(json!({ "type": "gap", "after": self.cursor, "next": next }))
                    .await?;
                self.cursor = next - 1;
            }
            for e in &page.events {
                self.deliver(e).await?;
            }
            if page.events.len() < PAGE as usize {
                return Ok(());
            }
        }
    }
}

pub async fn run(
    state: AppState,
    streamer: Streamer,
    after: Option<i64>,
    consent: Option<ConsentViewer>,
    socket: WebSocket,
) {
    state.metrics.viewer_sockets_open.inc();
    let mut conn = Conn {
        socket,
        cursor: 0,
        consent,
        state: state.clone(),
    };
    let end = serve(&state, &streamer, after, &mut conn).await;
    let frame = match end {
        Some(End::TooSlow) => Some(close(1008, "too slow; reconnect with your cursor")),
        Some(End::Unavailable) => Some(close(
            1011,
            "temporarily unavailable; reconnect with your cursor",
        )),
        Some(End::ViewerGone) => None,
        None => Some(close(
            1001,
            "server shutting down; reconnect with your cursor",
        )),
    };
    if let Some(f) = frame {
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.socket.send(f)).await;
    }
    state.metrics.viewer_sockets_open.dec();
}

/// Runs a connection; `None` when it ended because sev is shutting down.
async fn serve(
    state: &AppState,
    streamer: &Streamer,
    after: Option<i64>,
    conn: &mut Conn,
) -> Option<End> {
    let mut live = match state
        .events
        .bus()
        .subscribe(&crate::events::topic(&streamer.id))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow a streamer's topic");
            return Some(End::Unavailable);
        }
    };
    conn.cursor = match after {
        Some(a) => a,
        // No cursor: live from now on.
        None => match state
            .store
            .events_after(&streamer.id, i64::MAX - 1, 1)
            .await
        {
            Ok(p) => p.last_seq,
            Err(_) => return Some(End::Unavailable),
        },
    };
    if let Err(e) = conn.catch_up(state, &streamer.id).await {
        return Some(e);
    }
    let ready = json!({ "type": "ready", "cursor": conn.cursor });
    if let Err(e) = conn.send(ready).await {
        return Some(e);
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let step = tokio::select! {
            () = state.shutdown.cancelled() => return None,
            _ = ping.tick() => match tokio::time::timeout(SEND_TIMEOUT, conn.socket.send(Message::Ping(Default::default()))).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::ViewerGone),
                Err(_) => Err(End::TooSlow),
            },
            d = live.recv() => match d {
                Some(Delivery::Message(bytes)) => match serde_json::from_slice::<StoredEvent>(&bytes) {
                    // In sequence: straight through. Anything else: the store has the truth.
                    Ok(e) if e.seq <= conn.cursor + 1 => conn.deliver(&e).await,
                    Ok(_) | Err(_) => conn.catch_up(state, &streamer.id).await,
                },
                Some(Delivery::Gap) => conn.catch_up(state, &streamer.id).await,
                None => Err(End::Unavailable),
            },
            msg = conn.socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Err(End::ViewerGone),
                // Viewers have nothing to say; pongs and stray text are ignored.
                Some(Ok(_)) => Ok(()),
            },
        };
        if let Err(e) = step {
            return Some(e);
        }
    }
}
