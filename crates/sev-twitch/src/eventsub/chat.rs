//! Chat events: `channel.chat.message` (where cheers live) and `channel.chat.notification`
//! with every `notice_type`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Broadcaster;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Chatter {
    pub chatter_user_id: String,
    pub chatter_user_login: String,
    pub chatter_user_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fragment {
    /// text, cheermote, emote or mention
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub cheermote: Option<Value>,
    pub emote: Option<Value>,
    pub mention: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatText {
    pub text: String,
    pub fragments: Vec<Fragment>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Badge {
    pub set_id: String,
    pub id: String,
    pub info: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheerInfo {
    pub bits: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatMessage {
    #[serde(flatten)]
    pub broadcaster: Broadcaster,
    #[serde(flatten)]
    pub chatter: Chatter,
    pub message_id: String,
    pub message: ChatText,
    pub message_type: String,
    pub badges: Vec<Badge>,
    /// Set when the message is a cheer.
    pub cheer: Option<CheerInfo>,
    pub color: String,
    pub reply: Option<Value>,
    pub channel_points_custom_reward_id: Option<String>,
    pub source_broadcaster_user_id: Option<String>,
}

/// A gifter, anonymous or not (`gifter_is_anonymous`, `gifter_user_*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gifter {
    pub gifter_is_anonymous: bool,
    pub gifter_user_id: Option<String>,
    pub gifter_user_login: Option<String>,
    pub gifter_user_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubNotice {
    pub sub_tier: String,
    pub is_prime: bool,
    pub duration_months: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResubNotice {
    pub cumulative_months: i64,
    pub duration_months: i64,
    pub streak_months: Option<i64>,
    pub sub_tier: String,
    pub is_prime: bool,
    pub is_gift: bool,
    #[serde(flatten)]
    pub gifter: Gifter,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubGiftNotice {
    pub duration_months: i64,
    pub cumulative_total: Option<i64>,
    pub recipient_user_id: String,
    pub recipient_user_name: String,
    pub recipient_user_login: String,
    pub sub_tier: String,
    /// Set when this gift is part of a community gift (a "gift bomb").
    pub community_gift_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommunitySubGiftNotice {
    pub id: String,
    pub total: i64,
    pub sub_tier: String,
    pub cumulative_total: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrimePaidUpgradeNotice {
    pub sub_tier: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaidNotice {
    pub user_id: String,
    pub user_name: String,
    pub user_login: String,
    pub viewer_count: i64,
    pub profile_image_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnnouncementNotice {
    pub color: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BitsBadgeTierNotice {
    pub tier: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatAmount {
    pub value: i64,
    /// Twitch's chat payload spells it `decimal_place`; the charity event `decimal_places`.
    #[serde(alias = "decimal_places")]
    pub decimal_place: u32,
    pub currency: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CharityDonationNotice {
    pub charity_name: String,
    pub amount: ChatAmount,
}

/// The notice a chat notification carries, chosen by `notice_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Sub(SubNotice),
    Resub(ResubNotice),
    SubGift(SubGiftNotice),
    CommunitySubGift(CommunitySubGiftNotice),
    GiftPaidUpgrade(Gifter),
    PrimePaidUpgrade(PrimePaidUpgradeNotice),
    Raid(RaidNotice),
    Unraid,
    PayItForward(Gifter),
    Announcement(AnnouncementNotice),
    BitsBadgeTier(BitsBadgeTierNotice),
    CharityDonation(CharityDonationNotice),
    /// A notice type sev does not know, or whose object did not fit: kept whole.
    Unknown {
        notice_type: String,
        raw: Value,
    },
}

/// The notice types Twitch documents (the `shared_chat_` variants are these with a prefix).
pub const NOTICE_TYPES: &[&str] = &[
    "sub",
    "resub",
    "sub_gift",
    "community_sub_gift",
    "gift_paid_upgrade",
    "prime_paid_upgrade",
    "raid",
    "unraid",
    "pay_it_forward",
    "announcement",
    "bits_badge_tier",
    "charity_donation",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ChatNotification {
    pub broadcaster: Broadcaster,
    pub chatter: Chatter,
    pub chatter_is_anonymous: bool,
    pub color: String,
    pub badges: Vec<Badge>,
    pub system_message: String,
    pub message_id: String,
    pub message: ChatText,
    /// As sent, e.g. `sub` or `shared_chat_sub`.
    pub notice_type: String,
    /// The notification came from another channel in a shared chat session.
    pub shared_chat: bool,
    pub notice: Notice,
    pub source_broadcaster_user_id: Option<String>,
}

impl ChatNotification {
    pub fn from_value(raw: &Value) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(default)]
        #[derive(Default)]
        struct Common {
            #[serde(flatten)]
            broadcaster: Broadcaster,
            #[serde(flatten)]
            chatter: Chatter,
            chatter_is_anonymous: bool,
            color: String,
            badges: Vec<Badge>,
            system_message: String,
            message_id: String,
            message: ChatText,
            notice_type: String,
            source_broadcaster_user_id: Option<String>,
        }
        let c = Common::deserialize(raw)?;
        let (shared_chat, base) = match c.notice_type.strip_prefix("shared_chat_") {
            Some(base) => (true, base),
            None => (false, c.notice_type.as_str()),
        };
        // The object for `shared_chat_sub` is `shared_chat_sub`; fall back to the base name.
        let object = raw
            .get(&c.notice_type)
            .filter(|v| !v.is_null())
            .or_else(|| raw.get(base).filter(|v| !v.is_null()))
            .cloned()
            .unwrap_or(Value::Null);
        let notice = parse_notice(base, &c.notice_type, object);
        Ok(Self {
            broadcaster: c.broadcaster,
            chatter: c.chatter,
            chatter_is_anonymous: c.chatter_is_anonymous,
            color: c.color,
            badges: c.badges,
            system_message: c.system_message,
            message_id: c.message_id,
            message: c.message,
            notice_type: c.notice_type,
            shared_chat,
            notice,
            source_broadcaster_user_id: c.source_broadcaster_user_id,
        })
    }
}

fn parse_notice(base: &str, notice_type: &str, object: Value) -> Notice {
    fn de<T: serde::de::DeserializeOwned + Default>(v: &Value) -> Result<T, serde_json::Error> {
        if v.is_null() {
            Ok(T::default())
        } else {
            T::deserialize(v)
        }
    }
    let parsed = match base {
        "sub" => de(&object).map(Notice::Sub),
        "resub" => de(&object).map(Notice::Resub),
        "sub_gift" => de(&object).map(Notice::SubGift),
        "community_sub_gift" => de(&object).map(Notice::CommunitySubGift),
        "gift_paid_upgrade" => de(&object).map(Notice::GiftPaidUpgrade),
        "prime_paid_upgrade" => de(&object).map(Notice::PrimePaidUpgrade),
        "raid" => de(&object).map(Notice::Raid),
        "unraid" => Ok(Notice::Unraid),
        "pay_it_forward" => de(&object).map(Notice::PayItForward),
        "announcement" => de(&object).map(Notice::Announcement),
        "bits_badge_tier" => de(&object).map(Notice::BitsBadgeTier),
        "charity_donation" => de(&object).map(Notice::CharityDonation),
        _ => {
            return Notice::Unknown {
                notice_type: notice_type.to_owned(),
                raw: object,
            };
        }
    };
    parsed.unwrap_or_else(|_| Notice::Unknown {
        notice_type: notice_type.to_owned(),
        raw: object,
    })
}
