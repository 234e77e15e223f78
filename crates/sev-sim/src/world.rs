//! The simulated world: users, their channels, followers, moderators and live status.
//! Built from a seed: the same seed gives the same world.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    pub id: String,
    pub login: String,
    pub display_name: String,
    /// partner, affiliate or ""
    pub broadcaster_type: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveStream {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub viewer_count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub broadcaster_id: String,
    pub title: String,
    pub category_id: String,
    pub category_name: String,
    pub language: String,
    pub tags: Vec<String>,
    pub live: Option<LiveStream>,
    /// user id → followed at
    pub followers: BTreeMap<String, DateTime<Utc>>,
    pub moderators: Vec<String>,
}

pub const CATEGORIES: &[(&str, &str)] = &[
    ("509658", "Just Chatting"),
    ("504461", "Super Smash Bros. Ultimate"),
    ("743", "Chess"),
    ("26936", "Music"),
    ("504462", "Celeste"),
    ("516575", "VALORANT"),
    ("27471", "Minecraft"),
    ("509660", "Art"),
];

/// Streamers of the default world, with fixed ids so docs and tests can name them.
pub const STREAMERS: &[(&str, &str)] = &[
    ("4242", "favstreamer"),
    ("4243", "speedrunsam"),
    ("4244", "cozycarla"),
    ("4245", "retrorick"),
    ("4246", "pixelpia"),
    ("4247", "chessmaster_ko"),
    ("4248", "musicmaya"),
    ("4249", "lateknightlee"),
];

/// Viewers of the default world: they follow streamers and sign in to sev.
pub const VIEWERS: &[(&str, &str)] = &[
    ("1001", "viewer1"),
    ("1002", "viewer2"),
    ("1003", "viewer3"),
    ("1004", "viewer4"),
    ("1005", "viewer5"),
    ("1006", "moddy"),
];

#[derive(Debug, Clone)]
pub struct World {
    pub users: Vec<SimUser>,
    pub channels: BTreeMap<String, Channel>,
    pub now: DateTime<Utc>,
}

fn display(login: &str) -> String {
    login
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

impl World {
    /// The default world: 8 streamers (half live), 6 viewers, follows and moderators.
    pub fn generate(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let now = Utc::now();
        let epoch = Utc
            .with_ymd_and_hms(2016, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or(now);
        let mut users = Vec::new();
        let mut channels = BTreeMap::new();
        for (i, (id, login)) in STREAMERS.iter().enumerate() {
            users.push(SimUser {
                id: (*id).into(),
                login: (*login).into(),
                display_name: display(login),
                broadcaster_type: ["partner", "affiliate", ""][i % 3].into(),
                description: format!("{} streams here.", display(login)),
                created_at: epoch + Duration::days(rng.random_range(0..3000)),
            });
            let (category_id, category_name) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            let live = (i % 2 == 0).then(|| LiveStream {
                id: format!("{}", 40_000_000 + i),
                started_at: now - Duration::minutes(rng.random_range(5..300)),
                viewer_count: rng.random_range(3..50_000),
            });
            channels.insert(
                (*id).to_owned(),
                Channel {
                    broadcaster_id: (*id).into(),
                    title: format!("{} | day {}", category_name, rng.random_range(1..900)),
                    category_id: category_id.into(),
                    category_name: category_name.into(),
                    language: "en".into(),
                    tags: vec!["English".into()],
                    live,
                    followers: BTreeMap::new(),
                    moderators: vec!["1006".into()],
                },
            );
        }
        for (id, login) in VIEWERS {
            users.push(SimUser {
                id: (*id).into(),
                login: (*login).into(),
                display_name: display(login),
                broadcaster_type: String::new(),
                description: String::new(),
                created_at: epoch + Duration::days(rng.random_range(0..3000)),
            });
        }
        // Every viewer follows a few streamers; favstreamer is followed by everyone.
        for (vid, _) in VIEWERS {
            for (sid, _) in STREAMERS {
                if *sid == "4242" || rng.random_bool(0.4) {
                    let at = now - Duration::days(rng.random_range(1..1000));
                    if let Some(c) = channels.get_mut(*sid) {
                        c.followers.insert((*vid).to_owned(), at);
                    }
                }
            }
        }
        Self {
            users,
            channels,
            now,
        }
    }

    pub fn user(&self, id: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_by_login(&self, login: &str) -> Option<&SimUser> {
        let login = login.to_ascii_lowercase();
        self.users.iter().find(|u| u.login == login)
    }

    /// Adds a user (and a channel for them) when a login is typed on the authorize page.
    pub fn add_user(&mut self, login: &str) -> SimUser {
        let next = self
            .users
            .iter()
            .filter_map(|u| u.id.parse::<u64>().ok())
            .max()
            .unwrap_or(9000)
            + 1;
        let user = SimUser {
            id: next.max(9001).to_string(),
            login: login.to_ascii_lowercase(),
            display_name: login.to_owned(),
            broadcaster_type: String::new(),
            description: String::new(),
            created_at: self.now,
        };
        self.users.push(user.clone());
        self.channels.insert(
            user.id.clone(),
            Channel {
                broadcaster_id: user.id.clone(),
                title: String::new(),
                category_id: String::new(),
                category_name: String::new(),
                language: "en".into(),
                tags: Vec::new(),
                live: None,
                followers: BTreeMap::new(),
                moderators: Vec::new(),
            },
        );
        user
    }

    /// Whether `user` may read `broadcaster`'s moderator-tier events.
    pub fn is_moderator_or_self(&self, broadcaster: &str, user: &str) -> bool {
        broadcaster == user
            || self
                .channels
                .get(broadcaster)
                .is_some_and(|c| c.moderators.iter().any(|m| m == user))
    }
}

/// Twitch logins: 4–25 characters of letters, digits and underscores.
pub fn valid_login(login: &str) -> bool {
    (1..=25).contains(&login.len()) && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
