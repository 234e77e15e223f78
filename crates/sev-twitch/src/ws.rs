//! The EventSub WebSocket session (PLATFORM.md §4) as an explicit state machine.
//!
//! [`WsSession::spawn`] connects, and reports [`SessionEvent`]s to its owner:
//!
//! - `Welcome`: a new session; the owner creates its subscriptions on it (within 10 s).
//! - `Notification`: each message once, even across a reconnect hand-off.
//! - `Reconnected`: Twitch moved the session to a new socket; subscriptions carried over.
//! - `Revocation`: Twitch ended one subscription.
//! - `Disconnected`: the session is gone (close code, keepalive loss, network). Its
//!   subscriptions died with it; the driver reconnects with backoff and the next `Welcome`
//!   is a new session to subscribe on.
//!
//! On `session_reconnect` the driver opens the new socket at once, keeps reading the old one
//! until the new socket's welcome, then closes the old one. Notifications are deduplicated by
//! message id across both, so nothing is lost or doubled.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::eventsub::{Notification, Subscription};

type Conn = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a replaced socket may take to hand over its last messages after our close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The EventSub WebSocket URL (`wss://eventsub.wss.twitch.tv/ws`).
    pub url: Url,
    /// Asked of Twitch (10–600); `None` leaves Twitch's default.
    pub keepalive_timeout_seconds: Option<u32>,
    /// Largest message accepted; Twitch's are a few KiB.
    pub max_message_size: usize,
    /// How long to wait for the welcome after connecting.
    pub welcome_timeout: Duration,
    pub connect_timeout: Duration,
    /// First delay before reconnecting after a loss; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl WsConfig {
    pub fn new(url: Url) -> Self {
        Self {
            url,
            keepalive_timeout_seconds: None,
            max_message_size: 1 << 20,
            welcome_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    fn connect_url(&self) -> Url {
        let mut url = self.url.clone();
        if let Some(k) = self.keepalive_timeout_seconds {
            url.query_pairs_mut()
                .append_pair("keepalive_timeout_seconds", &k.to_string());
        }
        url
    }
}

/// The `session` object of welcome and reconnect messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub keepalive_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub reconnect_url: Option<String>,
}

/// One parsed frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Welcome(SessionInfo),
    Keepalive,
    Notification {
        message_id: String,
        notification: Box<Notification>,
    },
    Reconnect(SessionInfo),
    Revocation(Box<Subscription>),
    /// A message type Twitch may add later.
    Other {
        message_type: String,
        raw: Value,
    },
}

#[derive(Deserialize)]
struct Metadata {
    message_id: String,
    message_type: String,
}

#[derive(Deserialize)]
struct Wire {
    metadata: Metadata,
    #[serde(default)]
    payload: Value,
}

/// Parses a text frame. A malformed frame is an error the driver logs and skips.
pub fn parse_frame(text: &str) -> Result<Frame, serde_json::Error> {
    #[derive(Deserialize)]
    struct SessionPayload {
        session: SessionInfo,
    }
    #[derive(Deserialize)]
    struct RevocationPayload {
        subscription: Subscription,
    }
    let wire: Wire = serde_json::from_str(text)?;
    Ok(match wire.metadata.message_type.as_str() {
        "session_welcome" => Frame::Welcome(SessionPayload::deserialize(&wire.payload)?.session),
        "session_keepalive" => Frame::Keepalive,
        "session_reconnect" => {
            Frame::Reconnect(SessionPayload::deserialize(&wire.payload)?.session)
        }
        "notification" => Frame::Notification {
            message_id: wire.metadata.message_id,
            notification: Box::new(Notification::from_value(wire.payload)?),
        },
        "revocation" => Frame::Revocation(Box::new(
            RevocationPayload::deserialize(&wire.payload)?.subscription,
        )),
        other => Frame::Other {
            message_type: other.to_owned(),
            raw: wire.payload,
        },
    })
}

/// Twitch's close codes (PLATFORM.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    InternalServerError,
    ClientSentInboundTraffic,
    ClientFailedPingPong,
    ConnectionUnused,
    ReconnectGraceTimeExpired,
    NetworkTimeout,
    NetworkError,
    InvalidReconnect,
    /// A close code Twitch does not document.
    Other(u16),
}

impl CloseReason {
    pub fn from_code(code: u16) -> Self {
        match code {
            4000 => Self::InternalServerError,
            4001 => Self::ClientSentInboundTraffic,
            4002 => Self::ClientFailedPingPong,
            4003 => Self::ConnectionUnused,
            4004 => Self::ReconnectGraceTimeExpired,
            4005 => Self::NetworkTimeout,
            4006 => Self::NetworkError,
            4007 => Self::InvalidReconnect,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Self::InternalServerError => 4000,
            Self::ClientSentInboundTraffic => 4001,
            Self::ClientFailedPingPong => 4002,
            Self::ConnectionUnused => 4003,
            Self::ReconnectGraceTimeExpired => 4004,
            Self::NetworkTimeout => 4005,
            Self::NetworkError => 4006,
            Self::InvalidReconnect => 4007,
            Self::Other(c) => c,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// Twitch closed the socket with a code.
    Closed(CloseReason),
    /// The socket closed without a Twitch code (normal close, or none at all).
    ClosedWithoutCode,
    /// Nothing arrived for longer than the keepalive window.
    KeepaliveTimeout,
    /// No welcome arrived in time after connecting.
    NoWelcome,
    /// A message exceeded the size cap.
    MessageTooLarge,
    Network(String),
    ConnectFailed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Welcome {
        session_id: String,
        keepalive_timeout_seconds: Option<u64>,
    },
    Notification {
        message_id: String,
        notification: Box<Notification>,
    },
    Reconnected {
        session_id: String,
    },
    Revocation(Box<Subscription>),
    Disconnected(Disconnect),
}

/// A running session. Dropping it (or [`WsSession::stop`]) closes the socket.
pub struct WsSession {
    events: mpsc::Receiver<SessionEvent>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl WsSession {
    pub fn spawn(config: WsConfig) -> Self {
        let (tx, events) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let task = tokio::spawn(drive(config, tx, stop.clone()));
        Self {
            events,
            stop,
            task: Some(task),
        }
    }

    /// The next event; `None` once stopped.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// Closes the socket and waits for the driver to finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WsSession {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Remembers the last message ids, to drop the copies a hand-off may deliver twice.
struct RecentIds {
    order: VecDeque<String>,
    set: HashSet<String>,
    cap: usize,
}

impl RecentIds {
    fn new(cap: usize) -> Self {
        Self {
            order: VecDeque::new(),
            set: HashSet::new(),
            cap,
        }
    }

    /// True when the id is new.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
        true
    }
}

async fn connect(config: &WsConfig, url: &Url) -> Result<Conn, String> {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size));
    match tokio::time::timeout(
        config.connect_timeout,
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), false),
    )
    .await
    {
        Ok(Ok((conn, _))) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

async fn drive(config: WsConfig, tx: mpsc::Sender<SessionEvent>, stop: CancellationToken) {
    let mut backoff = config.backoff;
    let mut seen = RecentIds::new(4096);
    loop {
        let url = config.connect_url();
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            c = connect(&config, &url) => c,
        };
        let reason = match outcome {
            Err(e) => Disconnect::ConnectFailed(e),
            Ok(conn) => {
                let mut session = Session {
                    config: &config,
                    tx: &tx,
                    seen: &mut seen,
                    welcomed: false,
                };
                let reason = tokio::select! {
                    () = stop.cancelled() => None,
                    r = session.run(conn, &stop) => Some(r),
                };
                if session.welcomed {
                    backoff = config.backoff;
                }
                match reason {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        if stop.is_cancelled() {
            return;
        }
        tracing::info!(?reason, "EventSub WebSocket session ended; reconnecting");
        if tx.send(SessionEvent::Disconnected(reason)).await.is_err() {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

struct Session<'a> {
    config: &'a WsConfig,
    tx: &'a mpsc::Sender<SessionEvent>,
    seen: &'a mut RecentIds,
    welcomed: bool,
}

/// What one received WebSocket message means for the session.
enum Step {
    Continue,
    Frame(Box<Frame>),
    Ended(Disconnect),
}

fn classify(msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Step {
    use tokio_tungstenite::tungstenite::Error as E;
    match msg {
        None => Step::Ended(Disconnect::ClosedWithoutCode),
        Some(Err(E::Capacity(_))) => Step::Ended(Disconnect::MessageTooLarge),
        Some(Err(e)) => Step::Ended(Disconnect::Network(e.to_string())),
        Some(Ok(Message::Text(text))) => match parse_frame(text.as_str()) {
            Ok(f) => Step::Frame(Box::new(f)),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a malformed EventSub frame");
                Step::Continue
            }
        },
        Some(Ok(Message::Close(frame))) => Step::Ended(match frame {
            Some(f) if u16::from(f.code) >= 4000 => {
                Disconnect::Closed(CloseReason::from_code(f.code.into()))
            }
            _ => Disconnect::ClosedWithoutCode,
        }),
        // Pings are answered by tungstenite (flushed below); binary frames are not Twitch's.
        Some(Ok(_)) => Step::Continue,
    }
}

impl Session<'_> {
    async fn emit(&self, event: SessionEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    async fn run(&mut self, mut current: Conn, stop: &CancellationToken) -> Disconnect {
        let mut successor: Option<Conn> = None;
        let mut session_id: Option<String> = None;
        let mut keepalive = self.config.welcome_timeout;
        let mut deadline = Instant::now() + keepalive;
        loop {
            let next_successor = async {
                match successor.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => {
                    let _ = current.close(None).await;
                    return Disconnect::ClosedWithoutCode;
                }
                () = tokio::time::sleep_until(deadline) => {
                    return if session_id.is_some() { Disconnect::KeepaliveTimeout } else { Disconnect::NoWelcome };
                }
                msg = current.next() => {
                    let _ = current.flush().await; // sends queued pongs
                    match classify(msg) {
                        Step::Continue => {}
                        Step::Ended(reason) => match successor.take() {
                            // The old socket may close once the new one is open.
                            Some(s) => current = s,
                            None => return reason,
                        },
                        Step::Frame(frame) => {
                            deadline = Instant::now() + keepalive;
                            match *frame {
                                Frame::Welcome(info) => {
                                    if session_id.is_none() {
                                        keepalive = keepalive_window(&info).unwrap_or(keepalive);
                                        deadline = Instant::now() + keepalive;
                                        self.welcomed = true;
                                        session_id = Some(info.id.clone());
                                        if !self.emit(SessionEvent::Welcome { session_id: info.id, keepalive_timeout_seconds: info.keepalive_timeout_seconds }).await {
                                            return Disconnect::ClosedWithoutCode;
                                        }
                                    }
                                }
                                Frame::Reconnect(info) => {
                                    match info.reconnect_url.as_deref().map(Url::parse) {
                                        Some(Ok(url)) => match connect(self.config, &url).await {
                                            Ok(conn) => successor = Some(conn),
                                            // Twitch closes the old socket with 4004 after its grace
                                            // period; that loss is reported then.
                                            Err(e) => tracing::warn!(error = %e, "cannot open the EventSub reconnect URL"),
                                        },
                                        _ => tracing::warn!("session_reconnect without a usable reconnect_url"),
                                    }
                                }
                                other => {
                                    if !self.handle(other).await {
                                        return Disconnect::ClosedWithoutCode;
                                    }
                                }
                            }
                        }
                    }
                }
                msg = next_successor => {
                    match classify(msg) {
                        Step::Continue => {}
                        Step::Ended(reason) => {
                            tracing::warn!(?reason, "EventSub reconnect socket closed before its welcome");
                            successor = None;
                        }
                        Step::Frame(frame) if matches!(*frame, Frame::Welcome(_)) => {
                            let Frame::Welcome(info) = *frame else { continue };
                            // The hand-off is complete: the new socket takes over. What the
                            // old one sent before this welcome is delivered first, in order.
                            if let Some(new) = successor.take() {
                                let old = std::mem::replace(&mut current, new);
                                if !self.drain(old).await {
                                    return Disconnect::ClosedWithoutCode;
                                }
                            }
                            keepalive = keepalive_window(&info).unwrap_or(keepalive);
                            deadline = Instant::now() + keepalive;
                            session_id = Some(info.id.clone());
                            if !self.emit(SessionEvent::Reconnected { session_id: info.id }).await {
                                return Disconnect::ClosedWithoutCode;
                            }
                        }
                        Step::Frame(other) => {
                            if !self.handle(*other).await {
                                return Disconnect::ClosedWithoutCode;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Closes a replaced socket and delivers what it still holds: a close handshake makes the
    /// peer flush everything it sent before answering our close. Bounded, in case it never does.
    async fn drain(&mut self, mut old: Conn) -> bool {
        let _ = old.close(None).await;
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let msg = match tokio::time::timeout_at(deadline, old.next()).await {
                Ok(msg) => msg,
                Err(_) => return true,
            };
            match classify(msg) {
                Step::Continue => {}
                Step::Ended(_) => return true,
                Step::Frame(frame) => {
                    if !self.handle(*frame).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Notifications (deduplicated), revocations and unknown frames. False: owner gone.
    async fn handle(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::Notification {
                message_id,
                notification,
            } => {
                if self.seen.insert(&message_id) {
                    return self
                        .emit(SessionEvent::Notification {
                            message_id,
                            notification,
                        })
                        .await;
                }
                true
            }
            Frame::Revocation(sub) => self.emit(SessionEvent::Revocation(sub)).await,
            Frame::Other { message_type, .. } => {
                tracing::debug!(%message_type, "ignoring an unknown EventSub message type");
                true
            }
            Frame::Keepalive | Frame::Welcome(_) | Frame::Reconnect(_) => true,
        }
    }
}

/// Twitch's window plus a margin for network jitter: "nothing for longer than the keepalive
/// timeout" means dead.
fn keepalive_window(info: &SessionInfo) -> Option<Duration> {
    info.keepalive_timeout_seconds
        .map(|s| Duration::from_secs(s) + Duration::from_millis(500 + s.min(60) * 50))
}

/// Close code helper for tests and the simulator.
pub fn close_code(reason: CloseReason) -> CloseCode {
    CloseCode::from(reason.code())
}
