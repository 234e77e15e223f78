//! Normalisation: the words viewers read, the tier, the streamer, and keys that make the same
//! thing arriving twice (or by two paths) one entry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use sev_pipeline::{Visibility, normalize};
use sev_twitch::eventsub::{Notification, SUBSCRIPTION_TYPES};

fn notification(kind: &str, version: &str, condition: Value, event: Value) -> Notification {
    Notification::from_value(json!({
        "subscription": {"id": "s", "status": "enabled", "type": kind, "version": version, "cost": 0, "condition": condition,
            "transport": {"method": "websocket", "session_id": "x"}, "created_at": "2026-01-02T10:00:00Z"},
        "event": event,
    }))
    .unwrap()
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 18, 0, 30).unwrap()
}

fn raid_event() -> Value {
    json!({"from_broadcaster_user_id": "1234", "from_broadcaster_user_login": "raider", "from_broadcaster_user_name": "Raider",
        "to_broadcaster_user_id": "4242", "to_broadcaster_user_login": "favstreamer", "to_broadcaster_user_name": "FavStreamer", "viewers": 321})
}

fn chat(notice: &str, object: Value) -> Value {
    let mut e = json!({"broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer", "broadcaster_user_name": "FavStreamer",
        "chatter_user_id": "555", "chatter_user_login": "alice", "chatter_user_name": "Alice", "chatter_is_anonymous": false,
        "color": "", "badges": [], "system_message": "", "message_id": "m", "message": {"text": "", "fragments": []}, "notice_type": notice});
    e[notice] = object;
    e
}

#[test]
fn a_raid_by_two_paths_is_one_entry() {
    let via_raid = normalize(
        &notification(
            "channel.raid",
            "1",
            json!({"to_broadcaster_user_id": "4242"}),
            raid_event(),
        ),
        "m1",
        at(),
    )
    .unwrap();
    assert_eq!(
        (via_raid.streamer_id.as_str(), via_raid.feed.kind.as_str()),
        ("4242", "raid.in")
    );
    assert_eq!(via_raid.feed.text, "Raided by Raider with 321 viewers");
    assert_eq!(via_raid.feed.visibility, Visibility::Public);
    let via_chat = normalize(
        &notification("channel.chat.notification", "1", json!({"broadcaster_user_id": "4242", "user_id": "1"}),
            chat("raid", json!({"user_id": "1234", "user_login": "raider", "user_name": "Raider", "viewer_count": 321, "profile_image_url": ""}))),
        "m2",
        at() + chrono::Duration::seconds(3),
    )
    .unwrap();
    assert_eq!(via_chat.feed.text, via_raid.feed.text);
    assert_eq!(
        via_chat.dedupe_keys[1], via_raid.dedupe_keys[1],
        "one semantic key"
    );
    assert_ne!(
        via_chat.dedupe_keys[0], via_raid.dedupe_keys[0],
        "two message ids"
    );

    let out = normalize(
        &notification(
            "channel.raid",
            "1",
            json!({"from_broadcaster_user_id": "1234"}),
            raid_event(),
        ),
        "m3",
        at(),
    )
    .unwrap();
    assert_eq!(
        (
            out.streamer_id.as_str(),
            out.feed.kind.as_str(),
            out.feed.text.as_str()
        ),
        ("1234", "raid.out", "Raided FavStreamer with 321 viewers")
    );
}

#[test]
fn a_gift_bomb_and_its_recipients_share_a_group() {
    let cond = json!({"broadcaster_user_id": "4242", "user_id": "1"});
    let bomb = normalize(
        &notification(
            "channel.chat.notification",
            "1",
            cond.clone(),
            chat(
                "community_sub_gift",
                json!({"id": "cg1", "total": 5, "sub_tier": "1000", "cumulative_total": null}),
            ),
        ),
        "m1",
        at(),
    )
    .unwrap();
    assert_eq!(
        (
            bomb.feed.kind.as_str(),
            bomb.feed.text.as_str(),
            bomb.feed.amount
        ),
        ("gift_bomb", "Alice gifted 5 Tier 1 subs", Some(5))
    );
    assert_eq!(bomb.feed.group.as_deref(), Some("cg1"));
    let gift = normalize(&notification("channel.chat.notification", "1", cond, chat("sub_gift", json!({"duration_months": 1, "recipient_user_id": "9", "recipient_user_login": "bob", "recipient_user_name": "Bob", "sub_tier": "1000", "community_gift_id": "cg1"}))), "m2", at()).unwrap();
    assert_eq!(
        (gift.feed.kind.as_str(), gift.feed.group.as_deref()),
        ("gift_bomb.recipient", Some("cg1"))
    );
    assert_eq!(
        gift.feed.target.as_ref().map(|p| p.name.as_str()),
        Some("Bob")
    );
}

#[test]
fn cheers_count_once_and_plain_chat_is_not_in_the_feed() {
    let line = |cheer: Value| {
        json!({"broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer", "broadcaster_user_name": "FavStreamer",
        "chatter_user_id": "888", "chatter_user_login": "bitsfan", "chatter_user_name": "BitsFan", "message_id": "x", "message": {"text": "Cheer100 nice"}, "cheer": cheer})
    };
    let cond = json!({"broadcaster_user_id": "4242", "user_id": "1"});
    assert!(
        normalize(
            &notification("channel.chat.message", "1", cond.clone(), line(Value::Null)),
            "m0",
            at()
        )
        .is_none()
    );
    let in_chat = normalize(
        &notification(
            "channel.chat.message",
            "1",
            cond,
            line(json!({"bits": 100})),
        ),
        "m1",
        at(),
    )
    .unwrap();
    assert_eq!(in_chat.feed.text, "BitsFan cheered 100 bits");
    let consent = normalize(&notification("channel.cheer", "1", json!({"broadcaster_user_id": "4242"}),
        json!({"is_anonymous": false, "user_id": "888", "user_login": "bitsfan", "user_name": "BitsFan", "broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer", "broadcaster_user_name": "FavStreamer", "message": "Cheer100 nice", "bits": 100})), "m2", at()).unwrap();
    assert_eq!(consent.feed.visibility, Visibility::Consent);
    assert_eq!(
        consent.dedupe_keys[1], in_chat.dedupe_keys[1],
        "the same cheer by two paths"
    );
}

#[test]
fn unknown_types_get_a_generic_entry_under_their_broadcaster() {
    let n = normalize(
        &notification(
            "channel.brand_new",
            "beta",
            json!({"broadcaster_user_id": "4242"}),
            json!({"broadcaster_user_id": "4242", "x": 1}),
        ),
        "m",
        at(),
    )
    .unwrap();
    assert_eq!(
        (
            n.streamer_id.as_str(),
            n.feed.kind.as_str(),
            n.feed.text.as_str()
        ),
        ("4242", "unknown", "Event: channel.brand_new")
    );
    assert_eq!(n.feed.raw["x"], 1);
}

#[test]
fn every_event_the_simulator_makes_reads_well() {
    let mut world = sev_sim::world::World::generate(1);
    for info in SUBSCRIPTION_TYPES {
        if matches!(
            info.name,
            "user.authorization.revoke"
                | "conduit.shard.disabled"
                | "channel.ban"
                | "channel.chat.clear"
                | "channel.chat.clear_user_messages"
                | "channel.chat.message_delete"
        ) {
            continue; // not feed events
        }
        let mut t: sev_sim::Trigger = serde_json::from_value(json!({"type": info.name})).unwrap();
        if info.name == "channel.chat.message" {
            t.amount = Some(50);
        }
        let (event, condition) = sev_sim::build_event(&mut world, &t).unwrap();
        let n = normalize(
            &notification(
                info.name,
                info.version,
                Value::Object(condition),
                Value::Object(event),
            ),
            "m",
            at(),
        )
        .unwrap_or_else(|| panic!("{} has no feed entry", info.name));
        assert!(
            !n.feed.text.is_empty() && n.feed.kind != "unknown",
            "{}: {:?}",
            info.name,
            n.feed
        );
        assert!(
            !n.feed.text.contains("{") && !n.feed.text.contains("  "),
            "{}: {}",
            info.name,
            n.feed.text
        );
        let expected = if matches!(
            info.tier,
            sev_twitch::eventsub::Tier::Broadcaster | sev_twitch::eventsub::Tier::Moderator
        ) {
            Visibility::Consent
        } else {
            Visibility::Public
        };
        assert_eq!(n.feed.visibility, expected, "{}", info.name);
    }
    for notice in sev_twitch::eventsub::NOTICE_TYPES {
        let t: sev_sim::Trigger = serde_json::from_value(
            json!({"type": "channel.chat.notification", "notice_type": notice}),
        )
        .unwrap();
        let (event, condition) = sev_sim::build_event(&mut world, &t).unwrap();
        let n = normalize(
            &notification(
                "channel.chat.notification",
                "1",
                Value::Object(condition),
                Value::Object(event),
            ),
            "m",
            at(),
        )
        .unwrap();
        assert!(
            n.feed.kind != "unknown" && !n.feed.text.is_empty(),
            "{notice}: {:?}",
            n.feed
        );
    }
}
