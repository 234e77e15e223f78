//! One bus suite, run unchanged against both backends (`memory::…` and `redis::…` in the test
//! output), plus what only Redis has: several instances, and surviving a Redis restart.
//!
//! Redis comes from `SEV_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`); each test uses a
//! channel prefix of its own. The restart test runs a private `redis-server` it can stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use sev_bus::{Bus, Delivery, MemoryBus, RedisBus, RedisBusConfig, Subscription};

const WAIT: Duration = Duration::from_secs(10);

fn config(capacity: usize) -> RedisBusConfig {
    RedisBusConfig {
        capacity,
        prefix: format!("sev-test-{}:", uuid::Uuid::new_v4().simple()),
        timeout: Duration::from_secs(2),
    }
}

fn redis_url() -> String {
    std::env::var("SEV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn memory(capacity: usize) -> Result<Arc<dyn Bus>> {
    Ok(Arc::new(MemoryBus::new(capacity)))
}

async fn redis(capacity: usize) -> Result<Arc<dyn Bus>> {
    let url = redis_url();
    let bus = RedisBus::connect(&url, config(capacity))
        .await
        .with_context(|| format!("Redis at {url} (set SEV_TEST_REDIS_URL)"))?;
    Ok(Arc::new(bus))
}

async fn next(sub: &mut Subscription) -> Result<Delivery> {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .context("no delivery within 10 s")?
        .context("bus closed")
}

fn msg(s: &str) -> Delivery {
    Delivery::Message(Bytes::copy_from_slice(s.as_bytes()))
}

async fn publish_reaches_every_subscriber_of_that_topic_only(bus: Arc<dyn Bus>) -> Result<()> {
    let mut a1 = bus.subscribe("streamer.1").await?;
    let mut a2 = bus.subscribe("streamer.1").await?;
    let mut b = bus.subscribe("streamer.2").await?;
    bus.publish("streamer.1", Bytes::from_static(b"for one"))
        .await?;
    bus.publish("streamer.2", Bytes::from_static(b"for two"))
        .await?;
    ensure!(next(&mut a1).await? == msg("for one"));
    ensure!(next(&mut a2).await? == msg("for one"));
    ensure!(
        next(&mut b).await? == msg("for two"),
        "topic 2 sees only its own message"
    );
    Ok(())
}

async fn messages_arrive_in_publish_order(bus: Arc<dyn Bus>) -> Result<()> {
    // Bursts of 5 stay within the capacity of 8, so no gap is allowed here.
    let mut sub = bus.subscribe("ordered").await?;
    for burst in 0..100 {
        let range = burst * 5..burst * 5 + 5;
        for i in range.clone() {
            bus.publish("ordered", Bytes::from(i.to_string())).await?;
        }
        for i in range {
            ensure!(
                next(&mut sub).await? == msg(&i.to_string()),
                "message {i} in order"
            );
        }
    }
    Ok(())
}

async fn a_subscriber_that_falls_behind_gets_a_gap(bus: Arc<dyn Bus>) -> Result<()> {
    // Capacity is 8 (see the suite macro). `fence` reads as it goes; `slow` never reads.
    let mut slow = bus.subscribe("busy").await?;
    let mut fence = bus.subscribe("busy").await?;
    for i in 0..20 {
        bus.publish("busy", Bytes::from(i.to_string())).await?;
        ensure!(next(&mut fence).await? == msg(&i.to_string()));
    }
    ensure!(
        next(&mut slow).await? == Delivery::Gap,
        "missed messages are reported, not skipped"
    );
    ensure!(
        next(&mut slow).await? == msg("12"),
        "then the oldest still held"
    );
    Ok(())
}

async fn a_topic_can_be_left_and_joined_again(bus: Arc<dyn Bus>) -> Result<()> {
    let sub = bus.subscribe("again").await?;
    let mut other = bus.subscribe("again").await?;
    drop(sub);
    bus.publish("again", Bytes::from_static(b"still here"))
        .await?;
    ensure!(
        next(&mut other).await? == msg("still here"),
        "one leaving keeps the topic for others"
    );
    drop(other);
    bus.publish("again", Bytes::from_static(b"nobody listens"))
        .await?;
    let mut back = bus.subscribe("again").await?;
    bus.publish("again", Bytes::from_static(b"welcome back"))
        .await?;
    // Redis may still hand over the message published just before `subscribe` returned (see
    // the crate docs); nothing older, and the new message must arrive.
    let mut first = next(&mut back).await?;
    if first == msg("nobody listens") {
        first = next(&mut back).await?;
    }
    ensure!(
        first == msg("welcome back"),
        "nothing else stale, the new message arrives: {first:?}"
    );
    Ok(())
}

async fn dropping_the_bus_ends_subscriptions(bus: Arc<dyn Bus>) -> Result<()> {
    let mut sub = bus.subscribe("ending").await?;
    bus.ping().await?;
    drop(bus);
    let end = tokio::time::timeout(WAIT, sub.recv())
        .await
        .context("recv returns")?;
    ensure!(end.is_none(), "a subscription ends with its bus: {end:?}");
    Ok(())
}

macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() -> anyhow::Result<()> {
                    super::$test(super::$backend(8).await?).await
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($test:ident),* $(,)?) => {
        suite!(memory: $($test),*);
        suite!(redis: $($test),*);
    };
}

all_backends!(
    publish_reaches_every_subscriber_of_that_topic_only,
    messages_arrive_in_publish_order,
    a_subscriber_that_falls_behind_gets_a_gap,
    a_topic_can_be_left_and_joined_again,
    dropping_the_bus_ends_subscriptions,
);

#[tokio::test]
async fn redis_only_instances_share_topics() -> Result<()> {
    let cfg = config(64);
    let one = RedisBus::connect(&redis_url(), cfg.clone()).await?;
    let two = RedisBus::connect(&redis_url(), cfg).await?;
    let mut on_two = two.subscribe("streamer.42").await?;
    let mut on_one = one.subscribe("streamer.42").await?;
    one.publish("streamer.42", Bytes::from_static(b"from one"))
        .await?;
    two.publish("streamer.42", Bytes::from_static(b"from two"))
        .await?;
    for sub in [&mut on_one, &mut on_two] {
        ensure!(next(sub).await? == msg("from one"));
        ensure!(next(sub).await? == msg("from two"));
    }
    Ok(())
}

/// A `redis-server` of this test's own, so stopping it disturbs no other test.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> Result<Self> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("redis-server on PATH")?;
        Ok(Self { child, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Polls until the server answers: its start is a real asynchronous effect.
    async fn ready(&self) -> Result<()> {
        let client = ::redis::Client::open(self.url())?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let pong: ::redis::RedisResult<String> =
                    ::redis::cmd("PING").query_async(&mut c).await;
                if pong.is_ok() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("private redis-server did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test]
async fn redis_only_a_restart_gives_a_gap_then_delivery_resumes() -> Result<()> {
    let port = free_port()?;
    let mut server = PrivateRedis::start(port)?;
    server.ready().await?;
    let bus = RedisBus::connect(&server.url(), config(64)).await?;
    let mut sub = bus.subscribe("streamer.7").await?;
    bus.publish("streamer.7", Bytes::from_static(b"before"))
        .await?;
    ensure!(next(&mut sub).await? == msg("before"));

    server.stop()?;
    ensure!(
        bus.publish("streamer.7", Bytes::from_static(b"lost"))
            .await
            .is_err(),
        "publish fails while Redis is down"
    );
    let mut server = PrivateRedis::start(port)?;
    server.ready().await?;

    ensure!(
        next(&mut sub).await? == Delivery::Gap,
        "the outage is reported as a gap"
    );
    bus.ping()
        .await
        .context("ready again after the reconnect")?;
    bus.publish("streamer.7", Bytes::from_static(b"after"))
        .await?;
    ensure!(
        next(&mut sub).await? == msg("after"),
        "delivery resumes on the same subscription"
    );
    server.stop()?;
    Ok(())
}
