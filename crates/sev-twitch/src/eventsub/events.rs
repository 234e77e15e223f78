//! One struct per event payload (fields as PLATFORM.md §6 lists them), and [`Event`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chat::{ChatMessage, ChatNotification};
use super::{Broadcaster, User};

macro_rules! payload {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}

payload!(StreamOnline {
    id: String,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    /// live, playlist, watch_party, premiere or rerun
    #[serde(rename = "type")]
    kind: String,
    started_at: String,
});
payload!(StreamOffline {
    #[serde(flatten)]
    broadcaster: Broadcaster
});
payload!(ChannelUpdate {
    #[serde(flatten)] broadcaster: Broadcaster,
    title: String,
    language: String,
    category_id: String,
    category_name: String,
    content_classification_labels: Vec<String>,
});
payload!(ChannelRaid {
    from_broadcaster_user_id: String,
    from_broadcaster_user_login: String,
    from_broadcaster_user_name: String,
    to_broadcaster_user_id: String,
    to_broadcaster_user_login: String,
    to_broadcaster_user_name: String,
    viewers: i64,
});
payload!(UserUpdate {
    user_id: String,
    user_login: String,
    user_name: String,
    email: Option<String>,
    email_verified: bool,
    description: String,
});
payload!(ChatClear {
    #[serde(flatten)]
    broadcaster: Broadcaster
});
payload!(ChatClearUserMessages {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    target_user_id: String,
    target_user_login: String,
    target_user_name: String,
});
payload!(ChatMessageDelete {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    target_user_id: String,
    target_user_login: String,
    target_user_name: String,
    message_id: String,
});
payload!(Follow {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    followed_at: String
});
payload!(Subscribe {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    /// "1000", "2000" or "3000"
    tier: String,
    is_gift: bool,
});
payload!(SubscriptionGift {
    #[serde(flatten)] user: User,
    #[serde(flatten)] broadcaster: Broadcaster,
    total: i64,
    tier: String,
    cumulative_total: Option<i64>,
    is_anonymous: bool,
});
payload!(Emote {
    begin: i64,
    end: i64,
    id: String
});
payload!(SubscriptionMessageText { text: String, emotes: Option<Vec<Emote>> });
payload!(SubscriptionMessage {
    #[serde(flatten)] user: User,
    #[serde(flatten)] broadcaster: Broadcaster,
    tier: String,
    message: SubscriptionMessageText,
    cumulative_months: i64,
    streak_months: Option<i64>,
    duration_months: i64,
});
payload!(Cheer {
    is_anonymous: bool,
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    message: String,
    bits: i64,
});
payload!(Ban {
    #[serde(flatten)] user: User,
    #[serde(flatten)] broadcaster: Broadcaster,
    moderator_user_id: String,
    moderator_user_login: String,
    moderator_user_name: String,
    reason: String,
    banned_at: String,
    ends_at: Option<String>,
    is_permanent: bool,
});
payload!(Contribution {
    #[serde(flatten)]
    user: User,
    /// bits, subscription or other
    #[serde(rename = "type")]
    kind: String,
    total: i64,
});
payload!(
    /// hype_train begin and progress (v2; v1 payloads, which Twitch's CLI still sends, parse too).
    HypeTrain {
    id: String,
    #[serde(flatten)] broadcaster: Broadcaster,
    total: i64,
    progress: i64,
    goal: i64,
    top_contributions: Vec<Contribution>,
    level: i64,
    all_time_high_level: Option<i64>,
    all_time_high_total: Option<i64>,
    started_at: String,
    expires_at: String,
    /// regular, golden_kappa or treasure
    #[serde(rename = "type")] kind: String,
    is_shared_train: bool,
});
payload!(HypeTrainEnd {
    id: String,
    #[serde(flatten)] broadcaster: Broadcaster,
    total: i64,
    top_contributions: Vec<Contribution>,
    level: i64,
    started_at: String,
    cooldown_ends_at: String,
    ended_at: String,
    #[serde(rename = "type")] kind: String,
    is_shared_train: bool,
});
payload!(PollChoice {
    id: String,
    title: String,
    bits_votes: i64,
    channel_points_votes: i64,
    votes: i64
});
payload!(
    /// poll begin, progress and end (end has `status` and `ended_at`).
    Poll {
    id: String,
    #[serde(flatten)] broadcaster: Broadcaster,
    title: String,
    choices: Vec<PollChoice>,
    started_at: String,
    ends_at: Option<String>,
    /// completed, archived or terminated (end only)
    status: Option<String>,
    ended_at: Option<String>,
});
payload!(Predictor {
    #[serde(flatten)] user: User,
    channel_points_won: Option<i64>,
    channel_points_used: i64,
});
payload!(Outcome {
    id: String,
    title: String,
    /// blue or pink
    color: String,
    users: i64,
    channel_points: i64,
    top_predictors: Vec<Predictor>,
});
payload!(
    /// prediction begin, progress, lock and end.
    Prediction {
    id: String,
    #[serde(flatten)] broadcaster: Broadcaster,
    title: String,
    outcomes: Vec<Outcome>,
    started_at: String,
    locks_at: Option<String>,
    locked_at: Option<String>,
    winning_outcome_id: Option<String>,
    /// resolved or canceled (end only)
    status: Option<String>,
    ended_at: Option<String>,
});
payload!(Reward {
    id: String,
    title: String,
    cost: i64,
    prompt: String
});
payload!(Redemption {
    id: String,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    #[serde(flatten)]
    user: User,
    user_input: String,
    status: String,
    reward: Reward,
    redeemed_at: String,
});
payload!(ShoutoutCreate {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    to_broadcaster_user_id: String,
    to_broadcaster_user_login: String,
    to_broadcaster_user_name: String,
    moderator_user_id: String,
    moderator_user_login: String,
    moderator_user_name: String,
    viewer_count: i64,
    started_at: String,
});
payload!(ShoutoutReceive {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    from_broadcaster_user_id: String,
    from_broadcaster_user_login: String,
    from_broadcaster_user_name: String,
    viewer_count: i64,
    started_at: String,
});
payload!(AdBreakBegin {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    duration_seconds: i64,
    started_at: String,
    is_automatic: bool,
    requester_user_id: String,
    requester_user_login: String,
    requester_user_name: String,
});
payload!(
    /// An amount of money: `value` 10000 with `decimal_places` 2 is 100.00.
    Amount { value: i64, decimal_places: u32, currency: String });
payload!(CharityDonation {
    id: String,
    campaign_id: String,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    #[serde(flatten)]
    user: User,
    charity_name: String,
    amount: Amount,
});
payload!(
    /// goal begin, progress and end.
    Goal {
    id: String,
    #[serde(flatten)] broadcaster: Broadcaster,
    #[serde(rename = "type")] kind: String,
    description: String,
    current_amount: i64,
    target_amount: i64,
    started_at: String,
    is_achieved: Option<bool>,
    ended_at: Option<String>,
});
payload!(AuthorizationRevoke {
    client_id: String,
    #[serde(flatten)]
    user: User
});
payload!(ShardDisabled {
    conduit_id: String,
    shard_id: String,
    status: String
});

impl Amount {
    /// `value` scaled by `decimal_places`, e.g. "100.00".
    pub fn to_decimal_string(&self) -> String {
        let p = self.decimal_places.min(9);
        let scale = 10i64.pow(p);
        if p == 0 {
            return self.value.to_string();
        }
        let sign = if self.value < 0 { "-" } else { "" };
        let v = self.value.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            v / scale.unsigned_abs(),
            v % scale.unsigned_abs(),
            width = p as usize
        )
    }
}

/// A parsed event. The variant follows the subscription type.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StreamOnline(StreamOnline),
    StreamOffline(StreamOffline),
    ChannelUpdate(ChannelUpdate),
    ChannelRaid(ChannelRaid),
    UserUpdate(UserUpdate),
    ChatMessage(Box<ChatMessage>),
    ChatNotification(Box<ChatNotification>),
    ChatClear(ChatClear),
    ChatClearUserMessages(ChatClearUserMessages),
    ChatMessageDelete(ChatMessageDelete),
    Follow(Follow),
    Subscribe(Subscribe),
    SubscriptionGift(SubscriptionGift),
    SubscriptionMessage(SubscriptionMessage),
    Cheer(Cheer),
    Ban(Ban),
    HypeTrainBegin(HypeTrain),
    HypeTrainProgress(HypeTrain),
    HypeTrainEnd(HypeTrainEnd),
    PollBegin(Poll),
    PollProgress(Poll),
    PollEnd(Poll),
    PredictionBegin(Prediction),
    PredictionProgress(Prediction),
    PredictionLock(Prediction),
    PredictionEnd(Prediction),
    RedemptionAdd(Redemption),
    ShoutoutCreate(ShoutoutCreate),
    ShoutoutReceive(ShoutoutReceive),
    AdBreakBegin(AdBreakBegin),
    CharityDonation(CharityDonation),
    GoalBegin(Goal),
    GoalProgress(Goal),
    GoalEnd(Goal),
    AuthorizationRevoke(AuthorizationRevoke),
    ConduitShardDisabled(ShardDisabled),
    /// A type sev does not know (yet): kept whole.
    Unknown {
        kind: String,
        version: String,
        raw: Value,
    },
    /// A known type whose payload did not fit (e.g. a field of the wrong JSON type): kept whole.
    Malformed {
        kind: String,
        version: String,
        raw: Value,
        error: String,
    },
}

fn typed<T: DeserializeOwned>(
    kind: &str,
    version: &str,
    raw: Value,
    wrap: impl FnOnce(T) -> Event,
) -> Event {
    match T::deserialize(&raw) {
        Ok(v) => wrap(v),
        Err(e) => Event::Malformed {
            kind: kind.to_owned(),
            version: version.to_owned(),
            raw,
            error: e.to_string(),
        },
    }
}

impl Event {
    /// Parses an event object by its subscription type. Never fails: see the module docs.
    pub fn parse(kind: &str, version: &str, raw: Value) -> Event {
        use Event as E;
        let (k, v) = (kind, version);
        match kind {
            "stream.online" => typed(k, v, raw, E::StreamOnline),
            "stream.offline" => typed(k, v, raw, E::StreamOffline),
            "channel.update" => typed(k, v, raw, E::ChannelUpdate),
            "channel.raid" => typed(k, v, raw, E::ChannelRaid),
            "user.update" => typed(k, v, raw, E::UserUpdate),
            "channel.chat.message" => typed(k, v, raw, |m| E::ChatMessage(Box::new(m))),
            "channel.chat.notification" => match ChatNotification::from_value(&raw) {
                Ok(n) => E::ChatNotification(Box::new(n)),
                Err(e) => E::Malformed {
                    kind: k.into(),
                    version: v.into(),
                    raw,
                    error: e.to_string(),
                },
            },
            "channel.chat.clear" => typed(k, v, raw, E::ChatClear),
            "channel.chat.clear_user_messages" => typed(k, v, raw, E::ChatClearUserMessages),
            "channel.chat.message_delete" => typed(k, v, raw, E::ChatMessageDelete),
            "channel.follow" => typed(k, v, raw, E::Follow),
            "channel.subscribe" => typed(k, v, raw, E::Subscribe),
            "channel.subscription.gift" => typed(k, v, raw, E::SubscriptionGift),
            "channel.subscription.message" => typed(k, v, raw, E::SubscriptionMessage),
            "channel.cheer" => typed(k, v, raw, E::Cheer),
            "channel.ban" => typed(k, v, raw, E::Ban),
            "channel.hype_train.begin" => typed(k, v, raw, E::HypeTrainBegin),
            "channel.hype_train.progress" => typed(k, v, raw, E::HypeTrainProgress),
            "channel.hype_train.end" => typed(k, v, raw, E::HypeTrainEnd),
            "channel.poll.begin" => typed(k, v, raw, E::PollBegin),
            "channel.poll.progress" => typed(k, v, raw, E::PollProgress),
            "channel.poll.end" => typed(k, v, raw, E::PollEnd),
            "channel.prediction.begin" => typed(k, v, raw, E::PredictionBegin),
            "channel.prediction.progress" => typed(k, v, raw, E::PredictionProgress),
            "channel.prediction.lock" => typed(k, v, raw, E::PredictionLock),
            "channel.prediction.end" => typed(k, v, raw, E::PredictionEnd),
            "channel.channel_points_custom_reward_redemption.add" => {
                typed(k, v, raw, E::RedemptionAdd)
            }
            "channel.shoutout.create" => typed(k, v, raw, E::ShoutoutCreate),
            "channel.shoutout.receive" => typed(k, v, raw, E::ShoutoutReceive),
            "channel.ad_break.begin" => typed(k, v, raw, E::AdBreakBegin),
            "channel.charity_campaign.donate" => typed(k, v, raw, E::CharityDonation),
            "channel.goal.begin" => typed(k, v, raw, E::GoalBegin),
            "channel.goal.progress" => typed(k, v, raw, E::GoalProgress),
            "channel.goal.end" => typed(k, v, raw, E::GoalEnd),
            "user.authorization.revoke" => typed(k, v, raw, E::AuthorizationRevoke),
            "conduit.shard.disabled" => typed(k, v, raw, E::ConduitShardDisabled),
            _ => E::Unknown {
                kind: k.to_owned(),
                version: v.to_owned(),
                raw,
            },
        }
    }

    /// The channel whose feed this event belongs to. For a raid that is the raided channel;
    /// callers that follow the raider too can use [`ChannelRaid`]'s `from_` fields.
    pub fn broadcaster_id(&self) -> Option<&str> {
        use Event as E;
        let id = match self {
            E::StreamOnline(e) => &e.broadcaster.broadcaster_user_id,
            E::StreamOffline(e) => &e.broadcaster.broadcaster_user_id,
            E::ChannelUpdate(e) => &e.broadcaster.broadcaster_user_id,
            E::ChannelRaid(e) => &e.to_broadcaster_user_id,
            E::UserUpdate(e) => &e.user_id,
            E::ChatMessage(e) => &e.broadcaster.broadcaster_user_id,
            E::ChatNotification(e) => &e.broadcaster.broadcaster_user_id,
            E::ChatClear(e) => &e.broadcaster.broadcaster_user_id,
            E::ChatClearUserMessages(e) => &e.broadcaster.broadcaster_user_id,
            E::ChatMessageDelete(e) => &e.broadcaster.broadcaster_user_id,
            E::Follow(e) => &e.broadcaster.broadcaster_user_id,
            E::Subscribe(e) => &e.broadcaster.broadcaster_user_id,
            E::SubscriptionGift(e) => &e.broadcaster.broadcaster_user_id,
            E::SubscriptionMessage(e) => &e.broadcaster.broadcaster_user_id,
            E::Cheer(e) => &e.broadcaster.broadcaster_user_id,
            E::Ban(e) => &e.broadcaster.broadcaster_user_id,
            E::HypeTrainBegin(e) | E::HypeTrainProgress(e) => &e.broadcaster.broadcaster_user_id,
            E::HypeTrainEnd(e) => &e.broadcaster.broadcaster_user_id,
            E::PollBegin(e) | E::PollProgress(e) | E::PollEnd(e) => {
                &e.broadcaster.broadcaster_user_id
            }
            E::PredictionBegin(e)
            | E::PredictionProgress(e)
            | E::PredictionLock(e)
            | E::PredictionEnd(e) => &e.broadcaster.broadcaster_user_id,
            E::RedemptionAdd(e) => &e.broadcaster.broadcaster_user_id,
            E::ShoutoutCreate(e) => &e.broadcaster.broadcaster_user_id,
            E::ShoutoutReceive(e) => &e.broadcaster.broadcaster_user_id,
            E::AdBreakBegin(e) => &e.broadcaster.broadcaster_user_id,
            E::CharityDonation(e) => &e.broadcaster.broadcaster_user_id,
            E::GoalBegin(e) | E::GoalProgress(e) | E::GoalEnd(e) => {
                &e.broadcaster.broadcaster_user_id
            }
            E::AuthorizationRevoke(_) | E::ConduitShardDisabled(_) => return None,
            E::Unknown { raw, .. } | E::Malformed { raw, .. } => {
                return ["broadcaster_user_id", "to_broadcaster_user_id", "user_id"]
                    .iter()
                    .find_map(|k| raw.get(k).and_then(Value::as_str))
                    .filter(|s| !s.is_empty());
            }
        };
        Some(id.as_str()).filter(|s| !s.is_empty())
    }
}
