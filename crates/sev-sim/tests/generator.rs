//! The world's own activity: one seed, one sequence; every kind of event; and it flows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use sev_sim::SimConfig;
use sev_sim::generator::plan;
use sev_twitch::eventsub::Transport;
use sev_twitch::helix::CreateSubscription;
use sev_twitch::ws::{SessionEvent, WsConfig, WsSession};

#[test]
fn the_same_seed_gives_the_same_sequence() {
    assert_eq!(plan(7, 300), plan(7, 300));
    assert_ne!(plan(7, 300), plan(8, 300));
}

#[test]
fn the_sequence_covers_every_kind_and_notice() {
    let events = plan(1, 3000);
    let kinds: BTreeSet<&str> = events.iter().map(|t| t.kind.as_str()).collect();
    for k in [
        "stream.online",
        "stream.offline",
        "channel.update",
        "channel.raid",
        "channel.follow",
        "channel.subscribe",
        "channel.cheer",
        "channel.chat.message",
        "channel.chat.notification",
        "channel.poll.end",
        "channel.prediction.lock",
        "channel.hype_train.end",
        "channel.channel_points_custom_reward_redemption.add",
    ] {
        assert!(kinds.contains(k), "{k} never happens");
    }
    let notices: BTreeSet<&str> = events
        .iter()
        .filter_map(|t| t.notice_type.as_deref())
        .collect();
    for n in [
        "sub",
        "resub",
        "sub_gift",
        "community_sub_gift",
        "gift_paid_upgrade",
        "prime_paid_upgrade",
        "raid",
        "pay_it_forward",
        "announcement",
        "bits_badge_tier",
        "charity_donation",
    ] {
        assert!(notices.contains(n), "notice {n} never happens");
    }
    assert!(
        events
            .iter()
            .any(|t| t.kind == "channel.chat.message" && t.amount.unwrap_or(0) > 1),
        "cheers inside chat messages"
    );
}

#[tokio::test]
async fn a_gift_bomb_is_a_community_gift_followed_by_its_sub_gifts() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "user:read:chat").await;
    let mut cfg = WsConfig::new(sim.urls.eventsub_ws.clone());
    cfg.backoff = Duration::from_millis(10);
    let mut session = WsSession::spawn(cfg);
    let Some(SessionEvent::Welcome { session_id, .. }) = session.next_event().await else {
        panic!()
    };
    let t = Transport {
        method: "websocket".into(),
        session_id: Some(session_id),
        ..Transport::default()
    };
    sim.helix
        .create_subscription(
            &viewer,
            &CreateSubscription {
                kind: "channel.chat.notification".into(),
                version: "1".into(),
                condition: json!({"broadcaster_user_id": "4242", "user_id": "1001"}),
                transport: t,
            },
        )
        .await
        .unwrap();
    let bomb: sev_sim::Trigger = serde_json::from_value(json!({"type": "channel.chat.notification", "notice_type": "community_sub_gift", "amount": 3, "user": "viewer2"})).unwrap();
    sim.handle.trigger(&bomb).unwrap();
    let mut notices = Vec::new();
    while notices.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(5), session.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            SessionEvent::Notification { notification, .. } => notices.push(notification.raw_event),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(notices[0]["notice_type"], "community_sub_gift");
    let gift_id = notices[0]["community_sub_gift"]["id"].clone();
    for n in &notices[1..] {
        assert_eq!(n["notice_type"], "sub_gift");
        assert_eq!(n["sub_gift"]["community_gift_id"], gift_id);
    }
    session.stop().await;
}

#[tokio::test]
async fn the_generator_plays_events_at_its_rate() {
    let sim = common::start(SimConfig {
        events_per_minute: 6000,
        ..SimConfig::default()
    })
    .await;
    let viewer = sim.user("viewer1", "").await;
    let mut cfg = WsConfig::new(sim.urls.eventsub_ws.clone());
    cfg.backoff = Duration::from_millis(10);
    let mut session = WsSession::spawn(cfg);
    let Some(SessionEvent::Welcome { session_id, .. }) = session.next_event().await else {
        panic!()
    };
    for (id, _) in sev_sim::world::STREAMERS {
        let t = Transport {
            method: "websocket".into(),
            session_id: Some(session_id.clone()),
            ..Transport::default()
        };
        sim.helix
            .create_subscription(
                &viewer,
                &CreateSubscription {
                    kind: "channel.update".into(),
                    version: "2".into(),
                    condition: json!({"broadcaster_user_id": id}),
                    transport: t,
                },
            )
            .await
            .unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(10), session.next_event())
        .await
        .expect("a generated channel.update within 10 s")
        .unwrap();
    assert!(matches!(got, SessionEvent::Notification { .. }), "{got:?}");
    session.stop().await;
}
