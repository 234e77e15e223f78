//! Prometheus metrics, one registry per app (no process-wide state, so tests can run many
//! apps in one process). Served as text at `/metrics`.

use std::pin::Pin;
use std::task::{Context, Poll};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The matched route (e.g. `/api/v1/streamers/{login}/events`), never the raw path, so
    /// the label set stays small.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_seconds: Family<RequestLabels, Histogram>,
    pub connections_open: Gauge,
    pub connections_total: Counter,
    pub events_stored: Family<KindLabels, Counter>,
    pub events_duplicate: Counter,
    pub events_published: Counter,
    pub viewer_sockets_open: Gauge,
    /// EventSub subscriptions by state (subscribed, not_subscribed, unwanted).
    pub subscriptions: Family<KindLabels, Gauge>,
    pub eventsub_notifications: Counter,
    pub events_pruned: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sev");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        let http_request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 12))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until the response head)",
            http_request_seconds.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Open client TCP connections",
            connections_open.clone(),
        );
        let connections_total = Counter::default();
        registry.register(
            "connections",
            "Client TCP connections accepted",
            connections_total.clone(),
        );
        let events_stored = Family::<KindLabels, Counter>::default();
        registry.register(
            "events_stored",
            "Events durably stored in the event log",
            events_stored.clone(),
        );
        let events_duplicate = Counter::default();
        registry.register(
            "events_duplicate",
            "Events recognised as already stored and dropped",
            events_duplicate.clone(),
        );
        let events_published = Counter::default();
        registry.register(
            "events_published",
            "Stored events published to live viewers",
            events_published.clone(),
        );
        let viewer_sockets_open = Gauge::default();
        registry.register(
            "viewer_sockets_open",
            "Open viewer WebSocket connections",
            viewer_sockets_open.clone(),
        );
        let subscriptions = Family::<KindLabels, Gauge>::default();
        registry.register(
            "eventsub_subscriptions",
            "Public-tier EventSub subscriptions by state (label kind)",
            subscriptions.clone(),
        );
        let eventsub_notifications = Counter::default();
        registry.register(
            "eventsub_notifications",
            "EventSub notifications received over WebSocket shards",
            eventsub_notifications.clone(),
        );
        let events_pruned = Counter::default();
        registry.register(
            "events_pruned",
            "Events deleted by the retention window",
            events_pruned.clone(),
        );
        Self {
            registry,
            events_pruned,
            subscriptions,
            eventsub_notifications,
            http_requests,
            http_request_seconds,
            connections_open,
            connections_total,
            events_stored,
            events_duplicate,
            events_published,
            viewer_sockets_open,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A TCP listener that counts open connections.
pub struct CountingListener {
    inner: TcpListener,
    open: Gauge,
    total: Counter,
}

impl CountingListener {
    pub fn new(inner: TcpListener, metrics: &Metrics) -> Self {
        Self {
            inner,
            open: metrics.connections_open.clone(),
            total: metrics.connections_total.clone(),
        }
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        // Many short requests on keep-alive connections: no Nagle delay on small responses.
        let _ = stream.set_nodelay(true);
        self.open.inc();
        self.total.inc();
        (
            CountedStream {
                stream,
                open: self.open.clone(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that leaves the open-connections gauge when dropped.
pub struct CountedStream {
    stream: TcpStream,
    open: Gauge,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
