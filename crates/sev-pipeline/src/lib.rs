//! sev's event pipeline: what turns Twitch's notifications into the feed every viewer sees.
//! [`normalize`] makes one feed event of a notification; [`manager`] keeps the Twitch
//! subscriptions that the users' favorites call for.

pub mod manager;
pub mod normalize;

pub use manager::{Consent, Destination, Manager, Status};
pub use normalize::{FeedEvent, Normalized, Person, Source, Visibility, normalize};
