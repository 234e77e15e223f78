//! sev's event pipeline: what turns Twitch's notifications into the feed every viewer sees.
//! [`normalize`] makes one feed event of a notification.

pub mod normalize;

pub use normalize::{FeedEvent, Normalized, Person, Source, Visibility, normalize};
