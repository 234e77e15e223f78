//! Fixture tests: a payload shaped as Twitch documents it (PLATFORM.md §6 and §10) for every
//! subscription type and every chat notice type, parsed into its typed event.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use sev_twitch::eventsub::*;

fn notification(kind: &str, version: &str, event: Value) -> Notification {
    let body = json!({
        "subscription": {
            "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4", "status": "enabled", "type": kind,
            "version": version, "cost": 0,
            "condition": { "broadcaster_user_id": "4242" },
            "transport": { "method": "webhook", "callback": "https://sev.example/eventsub" },
            "created_at": "2026-01-02T10:00:00.123456789Z"
        },
        "event": event,
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    Notification::from_json(&bytes).unwrap()
}

fn b() -> Value {
    json!({ "broadcaster_user_id": "4242", "broadcaster_user_login": "favstreamer", "broadcaster_user_name": "FavStreamer" })
}

fn with(base: Value, extra: Value) -> Value {
    let mut m = base.as_object().cloned().unwrap();
    m.extend(extra.as_object().cloned().unwrap());
    Value::Object(m)
}

fn u() -> Value {
    json!({ "user_id": "777", "user_login": "newfan", "user_name": "NewFan" })
}

#[test]
fn every_subscription_type_parses_into_its_typed_event() {
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "stream.online",
            "1",
            with(
                b(),
                json!({"id": "9876", "type": "live", "started_at": "2026-01-02T18:00:01Z"}),
            ),
        ),
        ("stream.offline", "1", b()),
        (
            "channel.update",
            "2",
            with(
                b(),
                json!({"title": "Speedruns", "language": "en", "category_id": "1", "category_name": "Celeste", "content_classification_labels": ["Gambling"]}),
            ),
        ),
        (
            "channel.raid",
            "1",
            json!({"from_broadcaster_user_id": "1234", "from_broadcaster_user_login": "raider", "from_broadcaster_user_name": "Raider", "to_broadcaster_user_id": "4242", "to_broadcaster_user_login": "favstreamer", "to_broadcaster_user_name": "FavStreamer", "viewers": 321}),
        ),
        (
            "user.update",
            "1",
            json!({"user_id": "4242", "user_login": "favstreamer", "user_name": "FavStreamer", "email_verified": true, "description": "hi"}),
        ),
        (
            "channel.chat.message",
            "1",
            with(
                b(),
                json!({"chatter_user_id": "888", "chatter_user_login": "bitsfan", "chatter_user_name": "BitsFan", "message_id": "m1", "message": {"text": "Cheer100 nice", "fragments": [{"type": "cheermote", "text": "Cheer100", "cheermote": {"prefix": "cheer", "bits": 100, "tier": 1}}, {"type": "text", "text": " nice"}]}, "message_type": "text", "badges": [], "cheer": {"bits": 100}, "color": "#00FF00", "reply": null}),
            ),
        ),
        (
            "channel.chat.notification",
            "1",
            with(
                b(),
                json!({"chatter_user_id": "555", "chatter_user_login": "viewer5", "chatter_user_name": "Viewer5", "chatter_is_anonymous": false, "color": "#1E90FF", "badges": [{"set_id": "subscriber", "id": "0", "info": "1"}], "system_message": "Viewer5 subscribed at Tier 1.", "message_id": "d62", "message": {"text": "", "fragments": []}, "notice_type": "sub", "sub": {"sub_tier": "1000", "is_prime": false, "duration_months": 1}, "resub": null, "raid": null}),
            ),
        ),
        ("channel.chat.clear", "1", b()),
        (
            "channel.chat.clear_user_messages",
            "1",
            with(
                b(),
                json!({"target_user_id": "9", "target_user_login": "troll", "target_user_name": "Troll"}),
            ),
        ),
        (
            "channel.chat.message_delete",
            "1",
            with(
                b(),
                json!({"target_user_id": "9", "target_user_login": "troll", "target_user_name": "Troll", "message_id": "m9"}),
            ),
        ),
        (
            "channel.follow",
            "2",
            with(
                with(b(), u()),
                json!({"followed_at": "2026-01-02T18:05:00.5Z"}),
            ),
        ),
        (
            "channel.subscribe",
            "1",
            with(with(b(), u()), json!({"tier": "1000", "is_gift": false})),
        ),
        (
            "channel.subscription.gift",
            "1",
            with(
                with(b(), u()),
                json!({"total": 5, "tier": "1000", "cumulative_total": 30, "is_anonymous": false}),
            ),
        ),
        (
            "channel.subscription.message",
            "1",
            with(
                with(b(), u()),
                json!({"tier": "2000", "message": {"text": "7 months!", "emotes": [{"begin": 0, "end": 1, "id": "25"}]}, "cumulative_months": 7, "streak_months": null, "duration_months": 1}),
            ),
        ),
        (
            "channel.cheer",
            "1",
            with(
                with(b(), u()),
                json!({"is_anonymous": false, "message": "Cheer100 nice", "bits": 100}),
            ),
        ),
        (
            "channel.ban",
            "1",
            with(
                with(b(), u()),
                json!({"moderator_user_id": "5", "moderator_user_login": "mod", "moderator_user_name": "Mod", "reason": "spam", "banned_at": "2026-01-02T18:00:00Z", "ends_at": null, "is_permanent": true}),
            ),
        ),
        (
            "channel.hype_train.begin",
            "2",
            with(
                b(),
                json!({"id": "ht1", "total": 137, "progress": 137, "goal": 500, "top_contributions": [{"user_id": "1", "user_login": "a", "user_name": "A", "type": "bits", "total": 50}], "level": 2, "all_time_high_level": 4, "all_time_high_total": 2845, "shared_train_participants": null, "started_at": "2026-01-02T18:00:00Z", "expires_at": "2026-01-02T18:05:00Z", "type": "regular", "is_shared_train": false}),
            ),
        ),
        (
            "channel.hype_train.progress",
            "2",
            with(
                b(),
                json!({"id": "ht1", "total": 700, "progress": 200, "goal": 1000, "top_contributions": [], "level": 3, "started_at": "x", "expires_at": "y", "type": "golden_kappa", "is_shared_train": false}),
            ),
        ),
        (
            "channel.hype_train.end",
            "2",
            with(
                b(),
                json!({"id": "ht1", "total": 1200, "top_contributions": [], "level": 5, "started_at": "x", "cooldown_ends_at": "z", "ended_at": "y", "type": "regular", "is_shared_train": false}),
            ),
        ),
        (
            "channel.poll.begin",
            "1",
            with(
                b(),
                json!({"id": "p1", "title": "Next game?", "choices": [{"id": "c1", "title": "Celeste"}, {"id": "c2", "title": "Hades"}], "bits_voting": {"is_enabled": false, "amount_per_vote": 0}, "channel_points_voting": {"is_enabled": true, "amount_per_vote": 10}, "started_at": "x", "ends_at": "y"}),
            ),
        ),
        (
            "channel.poll.progress",
            "1",
            with(
                b(),
                json!({"id": "p1", "title": "Next game?", "choices": [{"id": "c1", "title": "Celeste", "votes": 12, "channel_points_votes": 2, "bits_votes": 0}], "started_at": "x", "ends_at": "y"}),
            ),
        ),
        (
            "channel.poll.end",
            "1",
            with(
                b(),
                json!({"id": "p1", "title": "Next game?", "choices": [{"id": "c1", "title": "Celeste", "votes": 40}], "status": "completed", "started_at": "x", "ended_at": "y"}),
            ),
        ),
        (
            "channel.prediction.begin",
            "1",
            with(
                b(),
                json!({"id": "pr1", "title": "Win?", "outcomes": [{"id": "o1", "title": "Yes", "color": "blue"}, {"id": "o2", "title": "No", "color": "pink"}], "started_at": "x", "locks_at": "y"}),
            ),
        ),
        (
            "channel.prediction.progress",
            "1",
            with(
                b(),
                json!({"id": "pr1", "title": "Win?", "outcomes": [{"id": "o1", "title": "Yes", "color": "blue", "users": 10, "channel_points": 15000, "top_predictors": [{"user_id": "1", "user_login": "a", "user_name": "A", "channel_points_won": null, "channel_points_used": 500}]}], "started_at": "x", "locks_at": "y"}),
            ),
        ),
        (
            "channel.prediction.lock",
            "1",
            with(
                b(),
                json!({"id": "pr1", "title": "Win?", "outcomes": [], "started_at": "x", "locked_at": "y"}),
            ),
        ),
        (
            "channel.prediction.end",
            "1",
            with(
                b(),
                json!({"id": "pr1", "title": "Win?", "winning_outcome_id": "o1", "outcomes": [], "status": "resolved", "started_at": "x", "ended_at": "y"}),
            ),
        ),
        (
            "channel.channel_points_custom_reward_redemption.add",
            "1",
            with(
                with(b(), u()),
                json!({"id": "r1", "user_input": "play Celeste", "status": "unfulfilled", "reward": {"id": "rw", "title": "Song request", "cost": 500, "prompt": "Name a song"}, "redeemed_at": "x"}),
            ),
        ),
        (
            "channel.shoutout.create",
            "1",
            with(
                b(),
                json!({"to_broadcaster_user_id": "12", "to_broadcaster_user_login": "friend", "to_broadcaster_user_name": "Friend", "moderator_user_id": "4242", "moderator_user_login": "favstreamer", "moderator_user_name": "FavStreamer", "viewer_count": 860, "started_at": "x", "cooldown_ends_at": "y", "target_cooldown_ends_at": "z"}),
            ),
        ),
        (
            "channel.shoutout.receive",
            "1",
            with(
                b(),
                json!({"from_broadcaster_user_id": "12", "from_broadcaster_user_login": "friend", "from_broadcaster_user_name": "Friend", "viewer_count": 860, "started_at": "x"}),
            ),
        ),
        (
            "channel.ad_break.begin",
            "1",
            with(
                b(),
                json!({"duration_seconds": 60, "started_at": "x", "is_automatic": false, "requester_user_id": "4242", "requester_user_login": "favstreamer", "requester_user_name": "FavStreamer"}),
            ),
        ),
        (
            "channel.charity_campaign.donate",
            "1",
            with(
                with(b(), u()),
                json!({"id": "d1", "campaign_id": "c1", "charity_name": "Example Charity", "charity_description": "", "charity_logo": "", "charity_website": "", "amount": {"value": 10000, "decimal_places": 2, "currency": "USD"}}),
            ),
        ),
        (
            "channel.goal.begin",
            "1",
            with(
                b(),
                json!({"id": "g1", "type": "follow", "description": "To 1k", "current_amount": 900, "target_amount": 1000, "started_at": "x"}),
            ),
        ),
        (
            "channel.goal.progress",
            "1",
            with(
                b(),
                json!({"id": "g1", "type": "follow", "description": "To 1k", "current_amount": 950, "target_amount": 1000, "started_at": "x"}),
            ),
        ),
        (
            "channel.goal.end",
            "1",
            with(
                b(),
                json!({"id": "g1", "type": "follow", "description": "To 1k", "is_achieved": true, "current_amount": 1000, "target_amount": 1000, "started_at": "x", "ended_at": "y"}),
            ),
        ),
        (
            "user.authorization.revoke",
            "1",
            json!({"client_id": "abc", "user_id": "777", "user_login": "newfan", "user_name": "NewFan"}),
        ),
        (
            "conduit.shard.disabled",
            "1",
            json!({"conduit_id": "c", "shard_id": "0", "status": "websocket_disconnected", "transport": {"method": "websocket"}}),
        ),
    ];
    // Every type of the table is covered here, and nothing parses as Unknown or Malformed.
    for info in SUBSCRIPTION_TYPES {
        assert!(
            cases.iter().any(|(k, _, _)| *k == info.name),
            "no fixture for {}",
            info.name
        );
    }
    for (kind, version, event) in cases {
        let n = notification(kind, version, event.clone());
        assert!(
            !matches!(n.event, Event::Unknown { .. } | Event::Malformed { .. }),
            "{kind} did not parse: {:?}",
            n.event
        );
        assert_eq!(
            n.raw_event, event,
            "{kind}: the raw event is kept as received"
        );
        if !matches!(kind, "user.authorization.revoke" | "conduit.shard.disabled") {
            assert_eq!(n.event.broadcaster_id(), Some("4242"), "{kind}");
        }
    }
}

#[test]
fn key_fields_land_where_expected() {
    let n = notification(
        "channel.raid",
        "1",
        json!({"from_broadcaster_user_id": "1234", "from_broadcaster_user_login": "raider", "from_broadcaster_user_name": "Raider", "to_broadcaster_user_id": "4242", "to_broadcaster_user_login": "favstreamer", "to_broadcaster_user_name": "FavStreamer", "viewers": 321}),
    );
    let Event::ChannelRaid(r) = n.event else {
        panic!("{:?}", n.event)
    };
    assert_eq!(
        (r.from_broadcaster_user_name.as_str(), r.viewers),
        ("Raider", 321)
    );

    let n = notification(
        "channel.subscription.gift",
        "1",
        with(
            with(
                b(),
                json!({"user_id": null, "user_login": null, "user_name": null}),
            ),
            json!({"total": 5, "tier": "1000", "cumulative_total": null, "is_anonymous": true}),
        ),
    );
    let Event::SubscriptionGift(g) = n.event else {
        panic!("{:?}", n.event)
    };
    assert!(g.is_anonymous && g.user.display().is_none() && g.total == 5);

    let n = notification(
        "channel.charity_campaign.donate",
        "1",
        with(
            with(b(), u()),
            json!({"charity_name": "X", "amount": {"value": 10000, "decimal_places": 2, "currency": "USD"}}),
        ),
    );
    let Event::CharityDonation(d) = n.event else {
        panic!("{:?}", n.event)
    };
    assert_eq!(d.amount.to_decimal_string(), "100.00");

    let n = notification(
        "channel.chat.message",
        "1",
        with(
            b(),
            json!({"chatter_user_name": "BitsFan", "message": {"text": "Cheer100 nice"}, "cheer": {"bits": 100}}),
        ),
    );
    let Event::ChatMessage(m) = n.event else {
        panic!("{:?}", n.event)
    };
    assert_eq!(m.cheer.map(|c| c.bits), Some(100));
}

fn chat_notice(notice_type: &str, object: Value) -> ChatNotification {
    let mut event = with(
        b(),
        json!({"chatter_user_id": "555", "chatter_user_login": "viewer5", "chatter_user_name": "Viewer5", "chatter_is_anonymous": false, "color": "", "badges": [], "system_message": "…", "message_id": "m", "message": {"text": "", "fragments": []}, "notice_type": notice_type}),
    );
    for t in NOTICE_TYPES {
        event[*t] = Value::Null;
        event[format!("shared_chat_{t}")] = Value::Null;
    }
    if !object.is_null() {
        event[notice_type] = object;
    }
    let n = notification("channel.chat.notification", "1", event);
    match n.event {
        Event::ChatNotification(c) => *c,
        other => panic!("{notice_type}: {other:?}"),
    }
}

#[test]
fn every_notice_type_parses_into_its_notice() {
    let gifter = json!({"gifter_is_anonymous": false, "gifter_user_id": "1", "gifter_user_login": "gifter", "gifter_user_name": "Gifter"});
    let cases: Vec<(&str, Value)> = vec![
        (
            "sub",
            json!({"sub_tier": "1000", "is_prime": false, "duration_months": 1}),
        ),
        (
            "resub",
            with(
                json!({"cumulative_months": 10, "duration_months": 1, "streak_months": 3, "sub_tier": "2000", "is_prime": false, "is_gift": true}),
                gifter.clone(),
            ),
        ),
        (
            "sub_gift",
            json!({"duration_months": 1, "cumulative_total": null, "recipient_user_id": "2", "recipient_user_name": "Lucky", "recipient_user_login": "lucky", "sub_tier": "1000", "community_gift_id": "cg1"}),
        ),
        (
            "community_sub_gift",
            json!({"id": "cg1", "total": 5, "sub_tier": "1000", "cumulative_total": 50}),
        ),
        ("gift_paid_upgrade", gifter.clone()),
        ("prime_paid_upgrade", json!({"sub_tier": "1000"})),
        (
            "raid",
            json!({"user_id": "1234", "user_name": "Raider", "user_login": "raider", "viewer_count": 321, "profile_image_url": "https://x/y.png"}),
        ),
        ("unraid", json!({})),
        ("pay_it_forward", gifter.clone()),
        ("announcement", json!({"color": "PRIMARY"})),
        ("bits_badge_tier", json!({"tier": 1000})),
        (
            "charity_donation",
            json!({"charity_name": "Example", "amount": {"value": 500, "decimal_place": 2, "currency": "USD"}}),
        ),
    ];
    assert_eq!(cases.len(), NOTICE_TYPES.len());
    for (notice_type, object) in cases {
        for prefix in ["", "shared_chat_"] {
            let full = format!("{prefix}{notice_type}");
            let c = chat_notice(&full, object.clone());
            assert_eq!(c.shared_chat, !prefix.is_empty());
            let ok = match (&c.notice, notice_type) {
                (Notice::Sub(s), "sub") => s.sub_tier == "1000",
                (Notice::Resub(r), "resub") => {
                    r.cumulative_months == 10
                        && r.gifter.gifter_user_name.as_deref() == Some("Gifter")
                }
                (Notice::SubGift(g), "sub_gift") => {
                    g.recipient_user_name == "Lucky"
                        && g.community_gift_id.as_deref() == Some("cg1")
                }
                (Notice::CommunitySubGift(g), "community_sub_gift") => g.total == 5,
                (Notice::GiftPaidUpgrade(g), "gift_paid_upgrade") => {
                    g.gifter_user_login.as_deref() == Some("gifter")
                }
                (Notice::PrimePaidUpgrade(p), "prime_paid_upgrade") => p.sub_tier == "1000",
                (Notice::Raid(r), "raid") => r.viewer_count == 321,
                (Notice::Unraid, "unraid") => true,
                (Notice::PayItForward(g), "pay_it_forward") => {
                    g.gifter_user_name.as_deref() == Some("Gifter")
                }
                (Notice::Announcement(a), "announcement") => a.color == "PRIMARY",
                (Notice::BitsBadgeTier(t), "bits_badge_tier") => t.tier == 1000,
                (Notice::CharityDonation(d), "charity_donation") => {
                    d.amount.value == 500 && d.amount.decimal_place == 2
                }
                _ => false,
            };
            assert!(ok, "{full}: {:?}", c.notice);
        }
    }
}

#[test]
fn unknown_types_notices_and_extra_fields_survive_as_raw_data() {
    let raw = json!({"broadcaster_user_id": "4242", "brand_new": {"nested": [1, 2, 3]}});
    let n = notification("channel.brand_new_thing", "beta", raw.clone());
    assert_eq!(
        n.event,
        Event::Unknown {
            kind: "channel.brand_new_thing".into(),
            version: "beta".into(),
            raw: raw.clone()
        }
    );
    assert_eq!(
        n.event.broadcaster_id(),
        Some("4242"),
        "still filed under its broadcaster"
    );

    let c = chat_notice("mystery_box", json!({"prize": "a cat"}));
    assert_eq!(
        c.notice,
        Notice::Unknown {
            notice_type: "mystery_box".into(),
            raw: json!({"prize": "a cat"})
        }
    );

    let extra = with(
        b(),
        json!({"id": "1", "type": "live", "started_at": "x", "added_in_2027": {"a": 1}}),
    );
    let n = notification("stream.online", "1", extra.clone());
    assert!(
        matches!(n.event, Event::StreamOnline(_)),
        "extra fields are ignored by the typed view"
    );
    assert_eq!(
        n.raw_event["added_in_2027"]["a"], 1,
        "and kept in the raw event"
    );

    // A known type with a field of the wrong JSON type is kept whole, not dropped.
    let bad = with(b(), json!({"viewers": "many"}));
    let n = notification("channel.raid", "1", bad.clone());
    assert!(
        matches!(&n.event, Event::Malformed { raw, .. } if *raw == bad),
        "{:?}",
        n.event
    );
}
