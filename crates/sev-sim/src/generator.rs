//! The world's own activity: channels go live and offline, change titles, raid each other;
//! viewers follow, subscribe, gift (gift bombs included), cheer, redeem; polls, predictions
//! and hype trains run their course. [`plan`] is a pure function of the seed, so the same seed
//! gives the same sequence; [`spawn`] plays it at a configurable rate.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::SimHandle;
use crate::events::Trigger;
use crate::world::{STREAMERS, VIEWERS};

fn t(kind: &str, broadcaster: &str) -> Trigger {
    Trigger {
        kind: kind.into(),
        broadcaster: Some(broadcaster.into()),
        ..Trigger::default()
    }
}

const NOTICES: &[&str] = &[
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
];

/// The first `n` events of the world with this seed. Live channels start as in
/// [`crate::world::World::generate`] (every other streamer).
pub fn plan(seed: u64, n: usize) -> Vec<Trigger> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e7_5e7);
    let mut live: BTreeSet<&str> = STREAMERS.iter().step_by(2).map(|(_, l)| *l).collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (_, b) = STREAMERS[rng.random_range(0..STREAMERS.len())];
        let (_, viewer) = VIEWERS[rng.random_range(0..VIEWERS.len())];
        let roll = rng.random_range(0..100);
        let mut batch: Vec<Trigger> = Vec::new();
        match roll {
            0..=29 => {
                let notice = NOTICES[rng.random_range(0..NOTICES.len())];
                let mut e = t("channel.chat.notification", b);
                e.user = Some(viewer.into());
                e.notice_type = Some(notice.into());
                e.amount = match notice {
                    "community_sub_gift" => Some(rng.random_range(2..8)),
                    "raid" => Some(rng.random_range(5..900)),
                    "resub" => Some(rng.random_range(2..48)),
                    "bits_badge_tier" => Some([100, 1000, 5000, 10000][rng.random_range(0..4)]),
                    "charity_donation" => Some(rng.random_range(100..10_000)),
                    _ => None,
                };
                if notice == "announcement" {
                    e.message = Some("Stream schedule changes next week!".into());
                }
                batch.push(e);
            }
            30..=39 => {
                let mut e = t("channel.chat.message", b);
                e.user = Some(viewer.into());
                e.amount = Some([1, 100, 500, 1000][rng.random_range(0..4)]);
                batch.push(e);
            }
            40..=54 => {
                let mut e = t("channel.follow", b);
                e.user = Some(viewer.into());
                batch.push(e);
            }
            55..=59 => {
                let mut e = t("channel.update", b);
                e.title = Some(format!("Day {} of the grind", rng.random_range(2..400)));
                e.category = Some(
                    crate::world::CATEGORIES[rng.random_range(0..crate::world::CATEGORIES.len())]
                        .1
                        .into(),
                );
                batch.push(e);
            }
            60..=64 => {
                if live.remove(b) {
                    batch.push(t("stream.offline", b));
                } else {
                    live.insert(b);
                    batch.push(t("stream.online", b));
                }
            }
            65..=69 => {
                let (_, raider) = STREAMERS[rng.random_range(0..STREAMERS.len())];
                if raider != b {
                    let mut e = t("channel.raid", b);
                    e.user = Some(raider.into());
                    e.amount = Some(rng.random_range(3..2000));
                    batch.push(e);
                }
            }
            70..=74 => {
                let mut e = t("channel.cheer", b);
                e.user = Some(viewer.into());
                e.amount = Some(rng.random_range(1..5000));
                batch.push(e);
            }
            75..=79 => {
                for kind in [
                    "channel.poll.begin",
                    "channel.poll.progress",
                    "channel.poll.end",
                ] {
                    batch.push(t(kind, b));
                }
            }
            80..=84 => {
                for kind in [
                    "channel.prediction.begin",
                    "channel.prediction.progress",
                    "channel.prediction.lock",
                    "channel.prediction.end",
                ] {
                    batch.push(t(kind, b));
                }
            }
            85..=89 => {
                let total = rng.random_range(200..5000);
                for kind in [
                    "channel.hype_train.begin",
                    "channel.hype_train.progress",
                    "channel.hype_train.end",
                ] {
                    let mut e = t(kind, b);
                    e.user = Some(viewer.into());
                    e.amount = Some(total);
                    batch.push(e);
                }
            }
            90..=94 => {
                let mut e = t("channel.channel_points_custom_reward_redemption.add", b);
                e.user = Some(viewer.into());
                e.title = Some(
                    ["Hydrate!", "Song request", "Posture check"][rng.random_range(0..3)].into(),
                );
                batch.push(e);
            }
            _ => {
                let mut e = t("channel.subscribe", b);
                e.user = Some(viewer.into());
                e.tier = Some(["1000", "2000", "3000"][rng.random_range(0..3)].into());
                batch.push(e);
            }
        }
        out.extend(batch);
    }
    out.truncate(n);
    out
}

/// Plays the seed's sequence forever at `per_minute` events a minute.
pub fn spawn(
    handle: SimHandle,
    seed: u64,
    per_minute: u32,
    stop: tokio_util::sync::CancellationToken,
) {
    if per_minute == 0 {
        return;
    }
    let interval = Duration::from_secs_f64(60.0 / f64::from(per_minute));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        let mut round = 0u64;
        loop {
            for trigger in plan(seed.wrapping_add(round), 500) {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if let Err(e) = handle.trigger(&trigger) {
                    tracing::debug!(error = %e, kind = %trigger.kind, "generator skipped an event");
                }
            }
            round += 1;
        }
    });
}
