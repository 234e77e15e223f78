//! The Redis bus: for several instances. Publishing is a Redis `PUBLISH`; each process holds
//! one pub/sub connection, subscribed once per topic that has local subscribers.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::topics::{Command, Topics};
use crate::{Bus, BusError, Delivery, Subscription};

#[derive(Debug, Clone)]
pub struct RedisBusConfig {
    /// How many messages a local subscriber may fall behind before it gets a gap.
    pub capacity: usize,
    /// Prefix of the Redis channel names, so several deployments can share one Redis.
    pub prefix: String,
    /// Connect and command timeout.
    pub timeout: Duration,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            prefix: "sev:".into(),
            timeout: Duration::from_secs(3),
        }
    }
}

pub struct RedisBus {
    topics: Arc<Topics>,
    publisher: ConnectionManager,
    commands: mpsc::UnboundedSender<Command>,
    connected: Arc<AtomicBool>,
    config: RedisBusConfig,
    _stop: DropGuard,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Unavailable(Box::new(e))
}

async fn with_timeout<T>(
    d: Duration,
    f: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => r.map_err(unavailable),
        Err(e) => Err(unavailable(e)),
    }
}

impl RedisBus {
    /// Connects both the publishing and the subscribing connection; fails when Redis is not
    /// reachable now. Later outages are survived: see the module docs.
    pub async fn connect(url: &str, config: RedisBusConfig) -> Result<Self, BusError> {
        let client = redis::Client::open(url).map_err(|e| BusError::InvalidUrl(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2);
        let publisher = with_timeout(
            config.timeout,
            ConnectionManager::new_with_config(client.clone(), manager_config),
        )
        .await?;
        let pubsub = with_timeout(config.timeout, client.get_async_pubsub()).await?;

        let (commands, rx) = mpsc::unbounded_channel();
        let topics = Topics::new(config.capacity, Some(commands.clone()));
        let connected = Arc::new(AtomicBool::new(true));
        let stop = CancellationToken::new();
        let upstream = Upstream {
            client,
            topics: topics.clone(),
            connected: connected.clone(),
            prefix: config.prefix.clone(),
            timeout: config.timeout,
            subscribed: HashSet::new(),
        };
        let token = stop.clone();
        tokio::spawn(async move {
            let topics = upstream.topics.clone();
            tokio::select! {
                () = upstream.run(pubsub, rx) => {}
                () = token.cancelled() => {}
            }
            topics.close();
        });
        Ok(Self {
            topics,
            publisher,
            commands,
            connected,
            config,
            _stop: stop.drop_guard(),
        })
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        let channel = format!("{}{topic}", self.config.prefix);
        let mut conn = self.publisher.clone();
        let _receivers: i64 = with_timeout(
            self.config.timeout,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload.as_ref())
                .query_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        let (rx, guard) = self.topics.join(topic);
        let (ack, done) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Ensure(topic.to_owned(), ack))
            .map_err(|_| BusError::Closed)?;
        done.await.map_err(|_| BusError::Closed)??;
        Ok(Subscription { rx, guard })
    }

    async fn ping(&self) -> Result<(), BusError> {
        if !self.connected.load(Ordering::Relaxed) {
            return Err(BusError::Unavailable(
                "subscriber connection is down".into(),
            ));
        }
        let mut conn = self.publisher.clone();
        let _: String = with_timeout(
            self.config.timeout,
            redis::cmd("PING").query_async(&mut conn),
        )
        .await?;
        Ok(())
    }
}

/// The task that owns the pub/sub connection.
struct Upstream {
    client: redis::Client,
    topics: Arc<Topics>,
    connected: Arc<AtomicBool>,
    prefix: String,
    timeout: Duration,
    /// Topics subscribed on the current connection.
    subscribed: HashSet<String>,
}

impl Upstream {
    async fn run(mut self, pubsub: redis::aio::PubSub, mut rx: mpsc::UnboundedReceiver<Command>) {
        let (mut sink, mut stream) = pubsub.split();
        loop {
            self.serve(&mut sink, &mut stream, &mut rx).await;
            if rx.is_closed() {
                return;
            }
            self.connected.store(false, Ordering::Relaxed);
            tracing::warn!("Redis bus connection lost; reconnecting");
            (sink, stream) = self.reconnect(&mut rx).await;
            self.connected.store(true, Ordering::Relaxed);
            // Anything published while we were away is lost to us: subscribers resync.
            self.topics.gap_all();
            tracing::info!(topics = self.subscribed.len(), "Redis bus reconnected");
        }
    }

    /// Runs until the connection drops.
    async fn serve(
        &mut self,
        sink: &mut PubSubSink,
        stream: &mut PubSubStream,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Command::Ensure(topic, ack)) => {
                        let result = if self.subscribed.contains(&topic) {
                            Ok(())
                        } else {
                            let r = with_timeout(self.timeout, sink.subscribe(format!("{}{topic}", self.prefix))).await;
                            if r.is_ok() {
                                self.subscribed.insert(topic);
                            }
                            r
                        };
                        let failed = result.is_err();
                        let _ = ack.send(result);
                        if failed {
                            return;
                        }
                    }
                    Some(Command::Release(topic)) => {
                        if !self.topics.contains(&topic) && self.subscribed.remove(&topic)
                            && with_timeout(self.timeout, sink.unsubscribe(format!("{}{topic}", self.prefix))).await.is_err() {
                            return;
                        }
                    }
                },
                msg = stream.next() => match msg {
                    None => return,
                    Some(msg) => {
                        if let Some(topic) = msg.get_channel_name().strip_prefix(&self.prefix) {
                            let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                            self.topics.deliver(topic, Delivery::Message(payload));
                        }
                    }
                },
            }
        }
    }

    /// Reconnects with backoff and subscribes every topic that has local subscribers.
    /// Subscribes asked for meanwhile are acknowledged at once: their topic is in the local
    /// map, so the reconnect covers it, and the gap that follows makes them resync.
    async fn reconnect(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> (PubSubSink, PubSubStream) {
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = async {
                let pubsub = with_timeout(self.timeout, self.client.get_async_pubsub()).await?;
                let (mut sink, stream) = pubsub.split();
                let wanted: HashSet<String> = self.topics.names().into_iter().collect();
                for topic in &wanted {
                    with_timeout(
                        self.timeout,
                        sink.subscribe(format!("{}{topic}", self.prefix)),
                    )
                    .await?;
                }
                Ok::<_, BusError>((sink, stream, wanted))
            };
            match attempt.await {
                Ok((sink, stream, wanted)) => {
                    self.subscribed = wanted;
                    return (sink, stream);
                }
                Err(e) => tracing::debug!(error = %e, "Redis bus reconnect failed"),
            }
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    cmd = rx.recv() => match cmd {
                        Some(Command::Ensure(_, ack)) => { let _ = ack.send(Ok(())); }
                        Some(Command::Release(_)) => {}
                        None => { (&mut sleep).await; break }
                    },
                }
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
