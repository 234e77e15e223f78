//! The subscription types sev knows, with what Twitch requires for each (PLATFORM.md §6).
//! The subscription manager and the simulator both read this one table.

/// Who must have authorised a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// No authorisation: any broadcaster (app token; cost 1).
    Public,
    /// The reading user's own `user:read:chat`, over that user's WebSocket (cost 0).
    ChatReader,
    /// The broadcaster's grant of a scope (cost 0).
    Broadcaster,
    /// The broadcaster's or one of its moderators' grant (`moderator_user_id`; cost 0).
    Moderator,
    /// Not a channel event: the app's own housekeeping (`user.authorization.revoke`, conduits).
    App,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// Condition fields that must be present.
    pub condition: &'static [&'static str],
    /// Any one of these scopes suffices (empty: none needed).
    pub scopes: &'static [&'static str],
    pub tier: Tier,
}

const B: &[&str] = &["broadcaster_user_id"];
const BM: &[&str] = &["broadcaster_user_id", "moderator_user_id"];
const BU: &[&str] = &["broadcaster_user_id", "user_id"];

macro_rules! t {
    ($name:literal, $v:literal, $cond:expr, [$($scope:literal),*], $tier:ident) => {
        TypeInfo { name: $name, version: $v, condition: $cond, scopes: &[$($scope),*], tier: Tier::$tier }
    };
}

pub const SUBSCRIPTION_TYPES: &[TypeInfo] = &[
    t!("stream.online", "1", B, [], Public),
    t!("stream.offline", "1", B, [], Public),
    t!("channel.update", "2", B, [], Public),
    // Either side of a raid: the condition names one of the two (checked by the caller).
    t!("channel.raid", "1", &[], [], Public),
    t!("user.update", "1", &["user_id"], [], Public),
    t!(
        "channel.chat.message",
        "1",
        BU,
        ["user:read:chat"],
        ChatReader
    ),
    t!(
        "channel.chat.notification",
        "1",
        BU,
        ["user:read:chat"],
        ChatReader
    ),
    t!(
        "channel.chat.clear",
        "1",
        BU,
        ["user:read:chat"],
        ChatReader
    ),
    t!(
        "channel.chat.clear_user_messages",
        "1",
        BU,
        ["user:read:chat"],
        ChatReader
    ),
    t!(
        "channel.chat.message_delete",
        "1",
        BU,
        ["user:read:chat"],
        ChatReader
    ),
    t!(
        "channel.follow",
        "2",
        BM,
        ["moderator:read:followers"],
        Moderator
    ),
    t!(
        "channel.subscribe",
        "1",
        B,
        ["channel:read:subscriptions"],
        Broadcaster
    ),
    t!(
        "channel.subscription.gift",
        "1",
        B,
        ["channel:read:subscriptions"],
        Broadcaster
    ),
    t!(
        "channel.subscription.message",
        "1",
        B,
        ["channel:read:subscriptions"],
        Broadcaster
    ),
    t!("channel.cheer", "1", B, ["bits:read"], Broadcaster),
    t!("channel.ban", "1", B, ["channel:moderate"], Broadcaster),
    t!(
        "channel.hype_train.begin",
        "2",
        B,
        ["channel:read:hype_train"],
        Broadcaster
    ),
    t!(
        "channel.hype_train.progress",
        "2",
        B,
        ["channel:read:hype_train"],
        Broadcaster
    ),
    t!(
        "channel.hype_train.end",
        "2",
        B,
        ["channel:read:hype_train"],
        Broadcaster
    ),
    t!(
        "channel.poll.begin",
        "1",
        B,
        ["channel:read:polls", "channel:manage:polls"],
        Broadcaster
    ),
    t!(
        "channel.poll.progress",
        "1",
        B,
        ["channel:read:polls", "channel:manage:polls"],
        Broadcaster
    ),
    t!(
        "channel.poll.end",
        "1",
        B,
        ["channel:read:polls", "channel:manage:polls"],
        Broadcaster
    ),
    t!(
        "channel.prediction.begin",
        "1",
        B,
        ["channel:read:predictions", "channel:manage:predictions"],
        Broadcaster
    ),
    t!(
        "channel.prediction.progress",
        "1",
        B,
        ["channel:read:predictions", "channel:manage:predictions"],
        Broadcaster
    ),
    t!(
        "channel.prediction.lock",
        "1",
        B,
        ["channel:read:predictions", "channel:manage:predictions"],
        Broadcaster
    ),
    t!(
        "channel.prediction.end",
        "1",
        B,
        ["channel:read:predictions", "channel:manage:predictions"],
        Broadcaster
    ),
    t!(
        "channel.channel_points_custom_reward_redemption.add",
        "1",
        B,
        ["channel:read:redemptions", "channel:manage:redemptions"],
        Broadcaster
    ),
    t!(
        "channel.shoutout.create",
        "1",
        BM,
        ["moderator:read:shoutouts", "moderator:manage:shoutouts"],
        Moderator
    ),
    t!(
        "channel.shoutout.receive",
        "1",
        BM,
        ["moderator:read:shoutouts", "moderator:manage:shoutouts"],
        Moderator
    ),
    t!(
        "channel.ad_break.begin",
        "1",
        B,
        ["channel:read:ads"],
        Broadcaster
    ),
    t!(
        "channel.charity_campaign.donate",
        "1",
        B,
        ["channel:read:charity"],
        Broadcaster
    ),
    t!(
        "channel.goal.begin",
        "1",
        B,
        ["channel:read:goals"],
        Broadcaster
    ),
    t!(
        "channel.goal.progress",
        "1",
        B,
        ["channel:read:goals"],
        Broadcaster
    ),
    t!(
        "channel.goal.end",
        "1",
        B,
        ["channel:read:goals"],
        Broadcaster
    ),
    t!("user.authorization.revoke", "1", &["client_id"], [], App),
    t!("conduit.shard.disabled", "1", &["client_id"], [], App),
];

/// What Twitch requires for a type, if sev knows it.
pub fn type_info(name: &str) -> Option<&'static TypeInfo> {
    SUBSCRIPTION_TYPES.iter().find(|t| t.name == name)
}
