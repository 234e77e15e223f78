//! Event payloads for every type, built from the world (as `twitch event trigger` builds
//! them from its flags), plus the state changes they imply (live status, title…).

use chrono::{SecondsFormat, Utc};
use serde::Deserialize;

use serde_json::{Map, Value, json};

use crate::world::{SimUser, World};

/// What to trigger; every field but `type` has a default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: String,
    /// Login or id of the channel (default: favstreamer).
    pub broadcaster: Option<String>,
    /// Login or id of the acting user: the raider, gifter, chatter, follower… (default: viewer1).
    pub user: Option<String>,
    /// Bits, gift count, viewers, points: whatever the type counts.
    pub amount: Option<i64>,
    /// "1000", "2000" or "3000".
    pub tier: Option<String>,
    pub title: Option<String>,
    pub category: Option<String>,
    pub message: Option<String>,
    /// For `channel.chat.notification`: which notice (default `sub`).
    pub notice_type: Option<String>,
    pub anonymous: Option<bool>,
    /// Extra fields merged into the event (for tests of unusual payloads).
    pub extra: Option<Map<String, Value>>,
}

fn ts() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn resolve<'a>(world: &'a World, who: Option<&str>, default: &str) -> Option<&'a SimUser> {
    let who = who.unwrap_or(default);
    world.user(who).or_else(|| world.user_by_login(who))
}

fn b(u: &SimUser) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("broadcaster_user_id".into(), json!(u.id));
    m.insert("broadcaster_user_login".into(), json!(u.login));
    m.insert("broadcaster_user_name".into(), json!(u.display_name));
    m
}

fn with(mut m: Map<String, Value>, v: Value) -> Map<String, Value> {
    if let Value::Object(o) = v {
        m.extend(o);
    }
    m
}

fn user(prefix: &str, u: &SimUser) -> Value {
    json!({ format!("{prefix}user_id"): u.id, format!("{prefix}user_login"): u.login, format!("{prefix}user_name"): u.display_name })
}

/// An event object and the condition it is delivered under.
pub type Built = (Map<String, Value>, Map<String, Value>);

/// The event object and the condition it is delivered under, or why it cannot be built.
pub fn build(world: &mut World, t: &Trigger) -> Result<Built, String> {
    let bc = resolve(world, t.broadcaster.as_deref(), "favstreamer")
        .cloned()
        .ok_or("unknown broadcaster")?;
    let actor = resolve(world, t.user.as_deref(), "viewer1")
        .cloned()
        .ok_or("unknown user")?;
    let tier = t.tier.clone().unwrap_or_else(|| "1000".into());
    let id = uuid::Uuid::new_v4().to_string();
    let now = ts();
    let anonymous = t.anonymous.unwrap_or(false);
    let mut condition = Map::new();
    condition.insert("broadcaster_user_id".into(), json!(bc.id));
    let channel = world.channels.get_mut(&bc.id);
    let event = match t.kind.as_str() {
        "stream.online" => {
            if let Some(c) = channel {
                c.live = Some(crate::world::LiveStream {
                    id: id.clone(),
                    started_at: Utc::now(),
                    viewer_count: t.amount.unwrap_or(1),
                });
            }
            with(b(&bc), json!({"id": id, "type": "live", "started_at": now}))
        }
        "stream.offline" => {
            if let Some(c) = channel {
                c.live = None;
            }
            b(&bc)
        }
        "channel.update" => {
            let (cat_id, cat_name) = match &t.category {
                Some(name) => crate::world::CATEGORIES
                    .iter()
                    .find(|(_, n)| n.eq_ignore_ascii_case(name))
                    .map_or(("0", name.as_str()), |(i, n)| (*i, *n)),
                None => crate::world::CATEGORIES[0],
            };
            let title = t
                .title
                .clone()
                .unwrap_or_else(|| "A brand new title".into());
            if let Some(c) = channel {
                c.title = title.clone();
                c.category_id = cat_id.into();
                c.category_name = cat_name.into();
            }
            with(
                b(&bc),
                json!({"title": title, "language": "en", "category_id": cat_id, "category_name": cat_name, "content_classification_labels": []}),
            )
        }
        "channel.raid" => {
            condition.remove("broadcaster_user_id");
            condition.insert("from_broadcaster_user_id".into(), json!(actor.id));
            condition.insert("to_broadcaster_user_id".into(), json!(bc.id));
            with(
                with(Map::new(), user("from_broadcaster_", &actor)),
                with(
                    user("to_broadcaster_", &bc)
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    json!({"viewers": t.amount.unwrap_or(42)}),
                )
                .into(),
            )
        }
        "user.update" => {
            condition.remove("broadcaster_user_id");
            condition.insert("user_id".into(), json!(bc.id));
            with(
                user("", &bc).as_object().cloned().unwrap_or_default(),
                json!({"email_verified": true, "description": t.message.clone().unwrap_or_else(|| "New bio".into())}),
            )
        }
        "channel.chat.message" => {
            let bits = t.amount.filter(|a| *a > 0);
            let text = t.message.clone().unwrap_or_else(|| match bits {
                Some(n) => format!("Cheer{n} great stream!"),
                None => "hello chat".into(),
            });
            with(
                b(&bc),
                json!({
                    "chatter_user_id": actor.id, "chatter_user_login": actor.login, "chatter_user_name": actor.display_name,
                    "message_id": id, "message": {"text": text, "fragments": [{"type": "text", "text": text, "cheermote": null, "emote": null, "mention": null}]},
                    "message_type": "text", "badges": [], "cheer": bits.map(|n| json!({"bits": n})), "color": "#9147FF", "reply": null,
                    "channel_points_custom_reward_id": null, "source_broadcaster_user_id": null, "source_broadcaster_user_login": null,
                    "source_broadcaster_user_name": null, "source_message_id": null, "source_badges": null, "is_source_only": null,
                }),
            )
        }
        "channel.chat.notification" => chat_notification(&bc, &actor, t, &id, &tier, anonymous)?,
        "channel.chat.clear" => b(&bc),
        "channel.chat.clear_user_messages" => with(b(&bc), user("target_", &actor)),
        "channel.chat.message_delete" => with(
            with(b(&bc), user("target_", &actor)),
            json!({"message_id": id}),
        ),
        "channel.follow" => {
            if let Some(c) = channel {
                c.followers.insert(actor.id.clone(), Utc::now());
            }
            with(with(b(&bc), user("", &actor)), json!({"followed_at": now}))
        }
        "channel.subscribe" => with(
            with(b(&bc), user("", &actor)),
            json!({"tier": tier, "is_gift": false}),
        ),
        "channel.subscription.gift" => {
            let u = if anonymous {
                json!({"user_id": null, "user_login": null, "user_name": null})
            } else {
                user("", &actor)
            };
            with(
                with(b(&bc), u),
                json!({"total": t.amount.unwrap_or(5), "tier": tier, "cumulative_total": if anonymous { Value::Null } else { json!(t.amount.unwrap_or(5) * 3) }, "is_anonymous": anonymous}),
            )
        }
        "channel.subscription.message" => with(
            with(b(&bc), user("", &actor)),
            json!({"tier": tier, "message": {"text": t.message.clone().unwrap_or_else(|| "Still here!".into()), "emotes": []}, "cumulative_months": t.amount.unwrap_or(7), "streak_months": null, "duration_months": 1}),
        ),
        "channel.cheer" => {
            let u = if anonymous {
                json!({"user_id": null, "user_login": null, "user_name": null})
            } else {
                user("", &actor)
            };
            let bits = t.amount.unwrap_or(100);
            with(
                with(b(&bc), u),
                json!({"is_anonymous": anonymous, "message": t.message.clone().unwrap_or_else(|| format!("Cheer{bits}")), "bits": bits}),
            )
        }
        "channel.ban" => with(
            with(b(&bc), user("", &actor)),
            json!({"moderator_user_id": bc.id, "moderator_user_login": bc.login, "moderator_user_name": bc.display_name, "reason": t.message.clone().unwrap_or_default(), "banned_at": now, "ends_at": null, "is_permanent": true}),
        ),
        k if k.starts_with("channel.hype_train.") => {
            let total = t.amount.unwrap_or(500);
            let contribution = with(
                user("", &actor).as_object().cloned().unwrap_or_default(),
                json!({"type": "bits", "total": total}),
            );
            let common = json!({"id": id, "total": total, "top_contributions": [contribution], "level": 2, "started_at": now, "type": "regular", "is_shared_train": false, "shared_train_participants": null});
            let specific = if k.ends_with(".end") {
                json!({"ended_at": now, "cooldown_ends_at": now})
            } else {
                json!({"progress": total / 2, "goal": total, "expires_at": now, "all_time_high_level": 4, "all_time_high_total": 9000})
            };
            with(with(b(&bc), common), specific)
        }
        k if k.starts_with("channel.poll.") => {
            let ended = k.ends_with(".end");
            with(
                b(&bc),
                json!({"id": id, "title": t.title.clone().unwrap_or_else(|| "Which game next?".into()),
                "choices": [{"id": "c1", "title": "Celeste", "bits_votes": 0, "channel_points_votes": 0, "votes": if k.ends_with(".begin") { 0 } else { 12 }}, {"id": "c2", "title": "Hades", "bits_votes": 0, "channel_points_votes": 0, "votes": if k.ends_with(".begin") { 0 } else { 7 }}],
                "bits_voting": {"is_enabled": false, "amount_per_vote": 0}, "channel_points_voting": {"is_enabled": true, "amount_per_vote": 10},
                "started_at": now, "ends_at": if ended { Value::Null } else { json!(now) }, "status": if ended { json!("completed") } else { Value::Null }, "ended_at": if ended { json!(now) } else { Value::Null }}),
            )
        }
        k if k.starts_with("channel.prediction.") => {
            let end = k.ends_with(".end");
            with(
                b(&bc),
                json!({"id": id, "title": t.title.clone().unwrap_or_else(|| "Will we win?".into()),
                "outcomes": [{"id": "o1", "title": "Yes", "color": "blue", "users": 10, "channel_points": 15000, "top_predictors": []}, {"id": "o2", "title": "No", "color": "pink", "users": 4, "channel_points": 3000, "top_predictors": []}],
                "started_at": now, "locks_at": now, "locked_at": if k.ends_with(".lock") { json!(now) } else { Value::Null },
                "winning_outcome_id": if end { json!("o1") } else { Value::Null }, "status": if end { json!("resolved") } else { Value::Null }, "ended_at": if end { json!(now) } else { Value::Null }}),
            )
        }
        "channel.channel_points_custom_reward_redemption.add" => with(
            with(b(&bc), user("", &actor)),
            json!({"id": id, "user_input": t.message.clone().unwrap_or_default(), "status": "unfulfilled", "reward": {"id": "reward-1", "title": t.title.clone().unwrap_or_else(|| "Hydrate!".into()), "cost": t.amount.unwrap_or(500), "prompt": ""}, "redeemed_at": now}),
        ),
        "channel.shoutout.create" => {
            condition.insert("moderator_user_id".into(), json!(bc.id));
            with(
                with(
                    with(b(&bc), user("to_broadcaster_", &actor)),
                    user("moderator_", &bc),
                ),
                json!({"viewer_count": t.amount.unwrap_or(100), "started_at": now, "cooldown_ends_at": now, "target_cooldown_ends_at": now}),
            )
        }
        "channel.shoutout.receive" => {
            condition.insert("moderator_user_id".into(), json!(bc.id));
            with(
                with(b(&bc), user("from_broadcaster_", &actor)),
                json!({"viewer_count": t.amount.unwrap_or(100), "started_at": now}),
            )
        }
        "channel.ad_break.begin" => with(
            with(b(&bc), user("requester_", &bc)),
            json!({"duration_seconds": t.amount.unwrap_or(60), "started_at": now, "is_automatic": false}),
        ),
        "channel.charity_campaign.donate" => with(
            with(b(&bc), user("", &actor)),
            json!({"id": id, "campaign_id": "campaign-1", "charity_name": "Example Charity", "charity_description": "", "charity_logo": "", "charity_website": "", "amount": {"value": t.amount.unwrap_or(500), "decimal_places": 2, "currency": "USD"}}),
        ),
        k if k.starts_with("channel.goal.") => {
            let end = k.ends_with(".end");
            with(
                b(&bc),
                json!({"id": id, "type": "follow", "description": t.title.clone().unwrap_or_else(|| "Road to 1k".into()), "current_amount": t.amount.unwrap_or(900), "target_amount": 1000, "started_at": now, "is_achieved": if end { json!(false) } else { Value::Null }, "ended_at": if end { json!(now) } else { Value::Null }}),
            )
        }
        other => return Err(format!("cannot build an event of type {other:?}")),
    };
    let event = match &t.extra {
        Some(extra) => with(event, Value::Object(extra.clone())),
        None => event,
    };
    Ok((event, condition))
}

fn chat_notification(
    bc: &SimUser,
    actor: &SimUser,
    t: &Trigger,
    id: &str,
    tier: &str,
    anonymous: bool,
) -> Result<Map<String, Value>, String> {
    let notice = t.notice_type.clone().unwrap_or_else(|| "sub".into());
    let base = notice
        .strip_prefix("shared_chat_")
        .unwrap_or(&notice)
        .to_owned();
    let amount = t.amount;
    let gifter = json!({"gifter_is_anonymous": anonymous, "gifter_user_id": if anonymous { Value::Null } else { json!(actor.id) }, "gifter_user_login": if anonymous { Value::Null } else { json!(actor.login) }, "gifter_user_name": if anonymous { Value::Null } else { json!(actor.display_name) }});
    let (object, system) = match base.as_str() {
        "sub" => (json!({"sub_tier": tier, "is_prime": false, "duration_months": 1}), format!("{} subscribed at Tier {}.", actor.display_name, &tier[..1])),
        "resub" => (with(json!({"cumulative_months": amount.unwrap_or(10), "duration_months": 1, "streak_months": null, "sub_tier": tier, "is_prime": false, "is_gift": false}).as_object().cloned().unwrap_or_default(), gifter.clone()).into(), format!("{} subscribed for {} months.", actor.display_name, amount.unwrap_or(10))),
        "sub_gift" => (json!({"duration_months": 1, "cumulative_total": null, "recipient_user_id": bc.id, "recipient_user_name": bc.display_name, "recipient_user_login": bc.login, "sub_tier": tier, "community_gift_id": null}), format!("{} gifted a sub.", actor.display_name)),
        "community_sub_gift" => (json!({"id": id, "total": amount.unwrap_or(5), "sub_tier": tier, "cumulative_total": null}), format!("{} is gifting {} subs!", actor.display_name, amount.unwrap_or(5))),
        "gift_paid_upgrade" => (gifter.clone(), format!("{} is continuing their gift sub.", actor.display_name)),
        "prime_paid_upgrade" => (json!({"sub_tier": tier}), format!("{} converted from Prime.", actor.display_name)),
        "raid" => (json!({"user_id": actor.id, "user_name": actor.display_name, "user_login": actor.login, "viewer_count": amount.unwrap_or(42), "profile_image_url": ""}), format!("{} is raiding with {} viewers!", actor.display_name, amount.unwrap_or(42))),
        "unraid" => (json!({}), "The raid was cancelled.".into()),
        "pay_it_forward" => (gifter.clone(), format!("{} is paying it forward.", actor.display_name)),
        "announcement" => (json!({"color": "PRIMARY"}), String::new()),
        "bits_badge_tier" => (json!({"tier": amount.unwrap_or(1000)}), format!("{} earned a new bits badge!", actor.display_name)),
        "charity_donation" => (json!({"charity_name": "Example Charity", "amount": {"value": amount.unwrap_or(500), "decimal_place": 2, "currency": "USD"}}), format!("{} donated.", actor.display_name)),
        other => return Err(format!("unknown notice_type {other:?}")),
    };
    let mut m = with(
        b(bc),
        json!({
            "chatter_user_id": actor.id, "chatter_user_login": actor.login, "chatter_user_name": actor.display_name,
            "chatter_is_anonymous": anonymous, "color": "#1E90FF", "badges": [], "system_message": system,
            "message_id": id, "message": {"text": t.message.clone().unwrap_or_default(), "fragments": []}, "notice_type": notice,
            "source_broadcaster_user_id": null, "source_broadcaster_user_login": null, "source_broadcaster_user_name": null, "source_message_id": null, "source_badges": null,
        }),
    );
    for n in sev_twitch::eventsub::NOTICE_TYPES {
        m.insert((*n).to_owned(), Value::Null);
        m.insert(format!("shared_chat_{n}"), Value::Null);
    }
    m.insert(notice, object);
    Ok(m)
}
