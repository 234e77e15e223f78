//! From an EventSub notification to one feed event: who did what, how much, in words people
//! read ("Alice gifted 5 Tier 1 subs"), when, which tier may see it, and a dedupe key that is
//! the same when the same thing arrives twice — redelivered under a new message id, or by two
//! paths (a raid as `channel.raid` and as a chat notice; a cheer as `channel.cheer` and inside
//! a chat message).

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sev_store::NewEvent;
use sev_twitch::eventsub::{Event, Notice, Notification, Tier, User, type_info};

/// Who may see an event (PRODUCT.md's tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone: public and chat-tier events.
    Public,
    /// Only the broadcaster and the moderators who enabled broadcaster mode.
    Consent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: Option<String>,
    pub login: Option<String>,
    pub name: String,
}

impl Person {
    fn new(id: &str, login: &str, name: &str) -> Self {
        let name = if name.is_empty() { login } else { name };
        Self {
            id: Some(id.to_owned()).filter(|s| !s.is_empty()),
            login: Some(login.to_owned()).filter(|s| !s.is_empty()),
            name: name.to_owned(),
        }
    }

    fn from_user(u: &User) -> Option<Self> {
        u.display().map(|name| Self {
            id: u.user_id.clone(),
            login: u.user_login.clone(),
            name: name.to_owned(),
        })
    }

    fn anonymous() -> Self {
        Self {
            id: None,
            login: None,
            name: "An anonymous gifter".into(),
        }
    }
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub subscription_type: String,
    pub subscription_version: String,
    pub message_ids: Vec<String>,
}

/// The payload of one event-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// What happened: `stream.online`, `raid.in`, `gift_bomb`, `cheer`, `poll.end`, … or `unknown`.
    pub kind: String,
    pub visibility: Visibility,
    /// The words a viewer reads.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// A user's own words (a resub message, an announcement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ties a gift bomb's recipients to the bomb (`community_gift_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub source: Source,
    /// The event exactly as Twitch sent it.
    pub raw: Value,
}

/// A notification ready for the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub streamer_id: String,
    pub occurred_at: DateTime<Utc>,
    /// The message id key, and a semantic key when the same thing can arrive by another path.
    pub dedupe_keys: Vec<String>,
    pub feed: FeedEvent,
}

impl Normalized {
    pub fn into_new_event(self) -> NewEvent {
        NewEvent {
            id: uuid::Uuid::now_v7(),
            streamer_id: self.streamer_id,
            kind: self.feed.kind.clone(),
            occurred_at: self.occurred_at,
            dedupe_keys: self.dedupe_keys,
            payload: serde_json::to_value(&self.feed).unwrap_or(Value::Null),
        }
    }
}

fn tier_name(tier: &str) -> &str {
    match tier {
        "2000" => "Tier 2",
        "3000" => "Tier 3",
        _ => "Tier 1",
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A coarse time bucket, so one thing seen by two paths a few seconds apart gets one key.
fn bucket(t: DateTime<Utc>, minutes: i64) -> i64 {
    t.duration_trunc(TimeDelta::minutes(minutes))
        .map(|b| b.timestamp())
        .unwrap_or_else(|_| t.timestamp())
}

/// What the feed shows for a notification; `None` for what belongs elsewhere (plain chat
/// lines are in the chat embed; moderation clean-ups; the app's own housekeeping).
pub fn normalize(
    n: &Notification,
    message_id: &str,
    received_at: DateTime<Utc>,
) -> Option<Normalized> {
    let sub = &n.subscription;
    let visibility = match type_info(&sub.kind).map(|t| t.tier) {
        Some(Tier::Broadcaster | Tier::Moderator) => Visibility::Consent,
        _ => Visibility::Public,
    };
    let mut streamer = n.event.broadcaster_id().map(str::to_owned)?;
    let msg_key = format!("msg:{message_id}");
    let mut at = received_at;
    let mut feed = FeedEvent {
        kind: sub.kind.clone(),
        visibility,
        text: String::new(),
        actor: None,
        target: None,
        amount: None,
        message: None,
        group: None,
        source: Source {
            subscription_type: sub.kind.clone(),
            subscription_version: sub.version.clone(),
            message_ids: vec![message_id.to_owned()],
        },
        raw: n.raw_event.clone(),
    };
    let key: String;
    match &n.event {
        Event::StreamOnline(e) => {
            at = parse_time(&e.started_at).unwrap_or(at);
            feed.text = format!("{} went live", e.broadcaster.broadcaster_user_name);
            key = format!("online:{streamer}:{}", e.id);
        }
        Event::StreamOffline(e) => {
            feed.text = format!("{} went offline", e.broadcaster.broadcaster_user_name);
            key = msg_key.clone();
        }
        Event::ChannelUpdate(e) => {
            feed.text = match e.category_name.as_str() {
                "" => format!("Title: “{}”", e.title),
                c => format!("Title: “{}” · {c}", e.title),
            };
            key = msg_key.clone();
        }
        Event::ChannelRaid(e) => {
            let from = Person::new(
                &e.from_broadcaster_user_id,
                &e.from_broadcaster_user_login,
                &e.from_broadcaster_user_name,
            );
            let to = Person::new(
                &e.to_broadcaster_user_id,
                &e.to_broadcaster_user_login,
                &e.to_broadcaster_user_name,
            );
            // A raid belongs to the channel the subscription watches: raids out of it, or into it.
            let outgoing = sub.condition_str("from_broadcaster_user_id").is_some();
            feed.amount = Some(e.viewers);
            if outgoing {
                streamer = e.from_broadcaster_user_id.clone();
                feed.kind = "raid.out".into();
                feed.text = format!(
                    "Raided {} with {}",
                    to.name,
                    plural(e.viewers, "viewer", "viewers")
                );
            } else {
                feed.kind = "raid.in".into();
                feed.text = format!(
                    "Raided by {} with {}",
                    from.name,
                    plural(e.viewers, "viewer", "viewers")
                );
            }
            key = format!(
                "raid:{}:{}:{}:{}",
                if outgoing { "out" } else { "in" },
                e.from_broadcaster_user_id,
                e.to_broadcaster_user_id,
                bucket(at, 10)
            );
            feed.actor = Some(from);
            feed.target = Some(to);
        }
        Event::UserUpdate(e) => {
            feed.text = format!(
                "{} updated their profile",
                if e.user_name.is_empty() {
                    &e.user_login
                } else {
                    &e.user_name
                }
            );
            key = msg_key.clone();
        }
        Event::ChatMessage(m) => {
            // Only cheers belong in the feed; the chat embed shows every line.
            let bits = m.cheer.as_ref()?.bits;
            let who = Person::new(
                &m.chatter.chatter_user_id,
                &m.chatter.chatter_user_login,
                &m.chatter.chatter_user_name,
            );
            feed.kind = "cheer".into();
            feed.text = format!("{} cheered {}", who.name, plural(bits, "bit", "bits"));
            feed.amount = Some(bits);
            feed.message = Some(m.message.text.clone()).filter(|t| !t.is_empty());
            key = format!(
                "cheer:{streamer}:{}:{bits}:{}",
                who.id.clone().unwrap_or_default(),
                bucket(at, 2)
            );
            feed.actor = Some(who);
        }
        Event::ChatNotification(c) => {
            let who = if c.chatter_is_anonymous {
                Person::anonymous()
            } else {
                Person::new(
                    &c.chatter.chatter_user_id,
                    &c.chatter.chatter_user_login,
                    &c.chatter.chatter_user_name,
                )
            };
            let user_id = who.id.clone().unwrap_or_default();
            feed.message = Some(c.message.text.clone()).filter(|t| !t.is_empty());
            key = match &c.notice {
                Notice::Sub(s) => {
                    feed.kind = "sub".into();
                    feed.text = if s.is_prime {
                        format!("{} subscribed with Prime", who.name)
                    } else {
                        format!("{} subscribed at {}", who.name, tier_name(&s.sub_tier))
                    };
                    format!("sub:{streamer}:{user_id}:{}", bucket(at, 60 * 24))
                }
                Notice::Resub(r) => {
                    feed.kind = "resub".into();
                    feed.amount = Some(r.cumulative_months);
                    feed.text = format!(
                        "{} resubscribed for {}",
                        who.name,
                        plural(r.cumulative_months, "month", "months")
                    );
                    format!("resub:{streamer}:{user_id}:{}", bucket(at, 60 * 24))
                }
                Notice::SubGift(g) => {
                    let to = Person::new(
                        &g.recipient_user_id,
                        &g.recipient_user_login,
                        &g.recipient_user_name,
                    );
                    match &g.community_gift_id {
                        Some(group) => {
                            feed.kind = "gift_bomb.recipient".into();
                            feed.group = Some(group.clone());
                            feed.text =
                                format!("{} received a gift sub from {}", to.name, who.name);
                        }
                        None => {
                            feed.kind = "gift".into();
                            feed.text = format!(
                                "{} gifted a {} sub to {}",
                                who.name,
                                tier_name(&g.sub_tier),
                                to.name
                            );
                        }
                    }
                    feed.target = Some(to);
                    msg_key.clone()
                }
                Notice::CommunitySubGift(g) => {
                    feed.kind = "gift_bomb".into();
                    feed.group = Some(g.id.clone());
                    feed.amount = Some(g.total);
                    feed.text = format!(
                        "{} gifted {} {} subs",
                        who.name,
                        g.total,
                        tier_name(&g.sub_tier)
                    );
                    format!("gift_bomb:{streamer}:{}", g.id)
                }
                Notice::GiftPaidUpgrade(g) => {
                    feed.kind = "upgrade".into();
                    feed.text = match &g.gifter_user_name {
                        Some(from) if !g.gifter_is_anonymous => {
                            format!("{} is continuing the gift sub from {from}", who.name)
                        }
                        _ => format!("{} is continuing their gift sub", who.name),
                    };
                    msg_key.clone()
                }
                Notice::PrimePaidUpgrade(p) => {
                    feed.kind = "upgrade".into();
                    feed.text = format!(
                        "{} upgraded from Prime to {}",
                        who.name,
                        tier_name(&p.sub_tier)
                    );
                    msg_key.clone()
                }
                Notice::Raid(r) => {
                    let from = Person::new(&r.user_id, &r.user_login, &r.user_name);
                    feed.kind = "raid.in".into();
                    feed.amount = Some(r.viewer_count);
                    feed.text = format!(
                        "Raided by {} with {}",
                        from.name,
                        plural(r.viewer_count, "viewer", "viewers")
                    );
                    let k = format!("raid:in:{}:{streamer}:{}", r.user_id, bucket(at, 10));
                    feed.actor = Some(from);
                    feed.target = None;
                    feed.source.subscription_type = "channel.chat.notification".into();
                    return Some(Normalized {
                        streamer_id: streamer,
                        occurred_at: at,
                        dedupe_keys: keys(&msg_key, k),
                        feed,
                    });
                }
                Notice::Unraid => {
                    feed.kind = "raid.cancelled".into();
                    feed.text = "A raid was cancelled".into();
                    msg_key.clone()
                }
                Notice::PayItForward(g) => {
                    feed.kind = "gift".into();
                    feed.text = match &g.gifter_user_name {
                        Some(from) if !g.gifter_is_anonymous => {
                            format!("{} is paying forward the gift from {from}", who.name)
                        }
                        _ => format!("{} is paying forward a gift", who.name),
                    };
                    msg_key.clone()
                }
                Notice::Announcement(_) => {
                    feed.kind = "announcement".into();
                    feed.text = format!("Announcement from {}", who.name);
                    msg_key.clone()
                }
                Notice::BitsBadgeTier(b) => {
                    feed.kind = "bits_badge".into();
                    feed.amount = Some(b.tier);
                    feed.text = format!("{} earned the {} bits badge", who.name, b.tier);
                    msg_key.clone()
                }
                Notice::CharityDonation(d) => {
                    feed.kind = "charity".into();
                    let amount = sev_twitch::eventsub::Amount {
                        value: d.amount.value,
                        decimal_places: d.amount.decimal_place,
                        currency: d.amount.currency.clone(),
                    };
                    feed.text = format!(
                        "{} donated {} {} to {}",
                        who.name,
                        amount.to_decimal_string(),
                        amount.currency,
                        d.charity_name
                    );
                    msg_key.clone()
                }
                Notice::Unknown { notice_type, .. } => {
                    feed.kind = "unknown".into();
                    feed.text = if c.system_message.is_empty() {
                        format!("Chat notice: {notice_type}")
                    } else {
                        c.system_message.clone()
                    };
                    msg_key.clone()
                }
            };
            feed.actor = Some(who);
        }
        Event::ChatClear(_)
        | Event::ChatClearUserMessages(_)
        | Event::ChatMessageDelete(_)
        | Event::Ban(_) => return None,
        Event::AuthorizationRevoke(_) | Event::ConduitShardDisabled(_) => return None,
        Event::Follow(e) => {
            at = parse_time(&e.followed_at).unwrap_or(at);
            let who = Person::from_user(&e.user)?;
            feed.kind = "follow".into();
            feed.text = format!("{} followed", who.name);
            key = format!(
                "follow:{streamer}:{}:{}",
                who.id.clone().unwrap_or_default(),
                bucket(at, 60 * 24)
            );
            feed.actor = Some(who);
        }
        Event::Subscribe(e) => {
            let who = Person::from_user(&e.user)?;
            feed.kind = if e.is_gift {
                "gift.received".into()
            } else {
                "sub".into()
            };
            feed.text = if e.is_gift {
                format!("{} received a {} gift sub", who.name, tier_name(&e.tier))
            } else {
                format!("{} subscribed at {}", who.name, tier_name(&e.tier))
            };
            key = if e.is_gift {
                msg_key.clone()
            } else {
                format!(
                    "sub:{streamer}:{}:{}",
                    who.id.clone().unwrap_or_default(),
                    bucket(at, 60 * 24)
                )
            };
            feed.actor = Some(who);
        }
        Event::SubscriptionGift(e) => {
            let who = if e.is_anonymous {
                Person::anonymous()
            } else {
                Person::from_user(&e.user).unwrap_or_else(Person::anonymous)
            };
            feed.kind = if e.total > 1 {
                "gift_bomb".into()
            } else {
                "gift".into()
            };
            feed.amount = Some(e.total);
            feed.text = format!(
                "{} gifted {} {} {}",
                who.name,
                e.total,
                tier_name(&e.tier),
                if e.total == 1 { "sub" } else { "subs" }
            );
            key = msg_key.clone();
            feed.actor = Some(who);
        }
        Event::SubscriptionMessage(e) => {
            let who = Person::from_user(&e.user)?;
            feed.kind = "resub".into();
            feed.amount = Some(e.cumulative_months);
            feed.text = format!(
                "{} resubscribed for {}",
                who.name,
                plural(e.cumulative_months, "month", "months")
            );
            feed.message = Some(e.message.text.clone()).filter(|t| !t.is_empty());
            key = format!(
                "resub:{streamer}:{}:{}",
                who.id.clone().unwrap_or_default(),
                bucket(at, 60 * 24)
            );
            feed.actor = Some(who);
        }
        Event::Cheer(e) => {
            let who = if e.is_anonymous {
                Person {
                    name: "An anonymous cheerer".into(),
                    ..Person::anonymous()
                }
            } else {
                Person::from_user(&e.user).unwrap_or_else(Person::anonymous)
            };
            feed.kind = "cheer".into();
            feed.amount = Some(e.bits);
            feed.text = format!("{} cheered {}", who.name, plural(e.bits, "bit", "bits"));
            feed.message = Some(e.message.clone()).filter(|t| !t.is_empty());
            key = format!(
                "cheer:{streamer}:{}:{}:{}",
                who.id.clone().unwrap_or_default(),
                e.bits,
                bucket(at, 2)
            );
            feed.actor = Some(who);
        }
        Event::HypeTrainBegin(e) | Event::HypeTrainProgress(e) => {
            let begin = matches!(n.event, Event::HypeTrainBegin(_));
            feed.kind = if begin {
                "hype_train.begin".into()
            } else {
                "hype_train.progress".into()
            };
            feed.amount = Some(e.level);
            feed.text = if begin {
                format!("A hype train started! Level {}", e.level)
            } else {
                format!(
                    "Hype train at level {} ({}/{})",
                    e.level, e.progress, e.goal
                )
            };
            key = msg_key.clone();
        }
        Event::HypeTrainEnd(e) => {
            feed.kind = "hype_train.end".into();
            feed.amount = Some(e.level);
            feed.text = format!("The hype train ended at level {}", e.level);
            key = msg_key.clone();
        }
        Event::PollBegin(p) | Event::PollProgress(p) | Event::PollEnd(p) => {
            let phase = sub.kind.rsplit('.').next().unwrap_or("progress");
            feed.kind = format!("poll.{phase}");
            feed.text = match phase {
                "begin" => format!("Poll: {}", p.title),
                "end" => match p.choices.iter().max_by_key(|c| c.votes) {
                    Some(w) if p.status.as_deref() == Some("completed") => format!(
                        "Poll ended: {} — “{}” won with {}",
                        p.title,
                        w.title,
                        plural(w.votes, "vote", "votes")
                    ),
                    _ => format!("Poll ended: {}", p.title),
                },
                _ => format!(
                    "Poll: {} ({})",
                    p.title,
                    plural(p.choices.iter().map(|c| c.votes).sum(), "vote", "votes")
                ),
            };
            key = msg_key.clone();
        }
        Event::PredictionBegin(p)
        | Event::PredictionProgress(p)
        | Event::PredictionLock(p)
        | Event::PredictionEnd(p) => {
            let phase = sub.kind.rsplit('.').next().unwrap_or("progress");
            feed.kind = format!("prediction.{phase}");
            let winner = p
                .winning_outcome_id
                .as_ref()
                .and_then(|id| p.outcomes.iter().find(|o| &o.id == id))
                .map(|o| o.title.clone());
            feed.text = match (phase, winner) {
                ("begin", _) => format!("Prediction: {}", p.title),
                ("lock", _) => format!("Predictions locked: {}", p.title),
                ("end", Some(w)) => format!("Prediction over: {} — “{w}”", p.title),
                ("end", None) => format!("Prediction cancelled: {}", p.title),
                _ => format!("Prediction: {}", p.title),
            };
            key = msg_key.clone();
        }
        Event::RedemptionAdd(r) => {
            let who = Person::from_user(&r.user)?;
            feed.kind = "redemption".into();
            feed.amount = Some(r.reward.cost);
            feed.text = format!("{} redeemed {}", who.name, r.reward.title);
            feed.message = Some(r.user_input.clone()).filter(|t| !t.is_empty());
            key = msg_key.clone();
            feed.actor = Some(who);
        }
        Event::ShoutoutCreate(s) => {
            feed.kind = "shoutout.out".into();
            feed.text = format!("Shoutout to {}", s.to_broadcaster_user_name);
            key = msg_key.clone();
        }
        Event::ShoutoutReceive(s) => {
            feed.kind = "shoutout.in".into();
            feed.text = format!("Shouted out by {}", s.from_broadcaster_user_name);
            key = msg_key.clone();
        }
        Event::AdBreakBegin(a) => {
            feed.kind = "ad_break".into();
            feed.amount = Some(a.duration_seconds);
            feed.text = format!("Ad break ({} s)", a.duration_seconds);
            key = msg_key.clone();
        }
        Event::CharityDonation(d) => {
            let who = Person::from_user(&d.user).unwrap_or_else(Person::anonymous);
            feed.kind = "charity".into();
            feed.text = format!(
                "{} donated {} {} to {}",
                who.name,
                d.amount.to_decimal_string(),
                d.amount.currency,
                d.charity_name
            );
            key = msg_key.clone();
            feed.actor = Some(who);
        }
        Event::GoalBegin(g) | Event::GoalProgress(g) | Event::GoalEnd(g) => {
            let phase = sub.kind.rsplit('.').next().unwrap_or("progress");
            feed.kind = format!("goal.{phase}");
            feed.amount = Some(g.current_amount);
            feed.text = match (phase, g.is_achieved) {
                ("end", Some(true)) => format!("Goal reached: {}", g.description),
                ("end", _) => format!(
                    "Goal ended: {} ({}/{})",
                    g.description, g.current_amount, g.target_amount
                ),
                _ => format!(
                    "Goal: {} ({}/{})",
                    g.description, g.current_amount, g.target_amount
                ),
            };
            key = msg_key.clone();
        }
        Event::Unknown { kind, .. } => {
            feed.kind = "unknown".into();
            feed.text = format!("Event: {kind}");
            key = msg_key.clone();
        }
        Event::Malformed { kind, .. } => {
            feed.kind = "unknown".into();
            feed.text = format!("Event: {kind} (shown as received)");
            key = msg_key.clone();
        }
    }
    Some(Normalized {
        streamer_id: streamer,
        occurred_at: at,
        dedupe_keys: keys(&msg_key, key),
        feed,
    })
}

fn keys(msg_key: &str, key: String) -> Vec<String> {
    if key == msg_key {
        vec![key]
    } else {
        vec![msg_key.to_owned(), key]
    }
}
