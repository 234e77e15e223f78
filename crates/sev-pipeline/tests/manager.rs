//! The subscription manager against the simulator: one shared set of subscriptions however
//! many viewers, adoption at start, repair after a revocation, the grace period, the budget.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use sev_pipeline::{Destination, Manager};
use sev_sim::{Sim, SimConfig};
use sev_twitch::TwitchUrls;
use sev_twitch::helix::{HelixClient, HelixConfig};
use sev_twitch::oauth::{AppTokenSource, Credentials, OAuthClient, TokenSource};

struct Setup {
    base: url::Url,
    helix: Arc<HelixClient>,
    app: Arc<dyn TokenSource>,
    conduit: String,
}

async fn setup(config: SimConfig) -> Setup {
    let sim = Sim::bind("127.0.0.1:0".parse().unwrap(), config.clone())
        .await
        .unwrap();
    let base = url::Url::parse(&sim.url().unwrap()).unwrap();
    tokio::spawn(sim.run(std::future::pending()));
    let urls = TwitchUrls::simulator(&base).unwrap();
    let http = sev_twitch::http_client().unwrap();
    let oauth = OAuthClient::new(
        http.clone(),
        urls.clone(),
        Credentials {
            client_id: config.client_id.clone(),
            client_secret: SecretString::from(config.client_secret.clone()),
        },
    );
    let app: Arc<dyn TokenSource> = Arc::new(AppTokenSource::new(oauth));
    let helix = Arc::new(HelixClient::new(
        http,
        urls,
        config.client_id,
        HelixConfig::default(),
    ));
    let conduit = sev_twitch::conduit::ensure_conduit(&helix, app.as_ref(), 1)
        .await
        .unwrap()
        .id;
    Setup {
        base,
        helix,
        app,
        conduit,
    }
}

impl Setup {
    fn manager(&self, grace: Duration) -> Manager {
        Manager::new(
            self.helix.clone(),
            self.app.clone(),
            Destination::Conduit(self.conduit.clone()),
            grace,
        )
    }

    /// The simulator's own list: every subscription of every client.
    async fn sim_subscriptions(&self) -> Vec<Value> {
        let v: Value = reqwest::get(self.base.join("/_sim/subscriptions").unwrap())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["subscription"].clone())
            .collect()
    }
}

#[tokio::test]
async fn a_thousand_viewers_of_one_streamer_cost_one_set_of_subscriptions() {
    let s = setup(SimConfig::default()).await;
    // The desired set comes from the store: 1,000 users with the same favorite.
    let dir = tempfile::tempdir().unwrap();
    let store = sev_store::connect(&format!("sqlite://{}", dir.path().join("sev.db").display()))
        .await
        .unwrap();
    for i in 0..1000 {
        let id = format!("{}", 100_000 + i);
        store
            .upsert_user(&sev_store::Streamer {
                id: id.clone(),
                login: format!("fan{i}"),
                display_name: format!("Fan{i}"),
            })
            .await
            .unwrap();
        store.add_favorite(&id, "4242").await.unwrap();
    }
    let wanted = store
        .wanted_streamers(chrono::Utc::now() - chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(wanted, ["4242"]);

    let mut manager = s.manager(Duration::from_secs(3600));
    let status = manager.reconcile(&wanted).await.unwrap();
    assert_eq!(status.subscribed.len(), 5, "{status:?}");
    assert!(status.not_subscribed.is_empty());
    let subs = s.sim_subscriptions().await;
    assert_eq!(
        subs.len(),
        5,
        "one subscription per (type, condition): {subs:#?}"
    );
    let mut keys: Vec<String> = subs
        .iter()
        .map(|s| format!("{} {}", s["type"], s["condition"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5);
    assert!(subs.iter().all(|x| x["transport"]["conduit_id"] == s.conduit.as_str() && x["status"] == "enabled"), "on sev's conduit, delivering");

    // Again, and from a fresh manager (a restart): adopted, nothing new.
    manager.reconcile(&wanted).await.unwrap();
    let restarted = s
        .manager(Duration::from_secs(3600))
        .reconcile(&wanted)
        .await
        .unwrap();
    assert_eq!(restarted.subscribed.len(), 5);
    let after: Vec<Value> = s.sim_subscriptions().await;
    assert_eq!(
        after.iter().map(|s| s["id"].clone()).collect::<Vec<_>>(),
        subs.iter().map(|s| s["id"].clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_revoked_subscription_is_replaced() {
    let s = setup(SimConfig::default()).await;
    let mut manager = s.manager(Duration::from_secs(3600));
    let wanted = vec!["4243".to_owned()];
    manager.reconcile(&wanted).await.unwrap();
    let online = s
        .sim_subscriptions()
        .await
        .into_iter()
        .find(|x| x["type"] == "stream.online")
        .unwrap();
    let id = online["id"].as_str().unwrap();
    let res = reqwest::Client::new()
        .post(
            s.base
                .join(&format!("/_sim/subscriptions/{id}/revoke"))
                .unwrap(),
        )
        .json(&serde_json::json!({"status": "authorization_revoked"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let status = manager.reconcile(&wanted).await.unwrap();
    assert_eq!(status.subscribed.len(), 5, "{status:?}");
    let subs = s.sim_subscriptions().await;
    let onlines: Vec<&Value> = subs
        .iter()
        .filter(|x| x["type"] == "stream.online")
        .collect();
    assert_eq!(
        onlines.len(),
        1,
        "the revoked one is gone, a new one took its place"
    );
    assert_ne!(onlines[0]["id"], online["id"]);
    assert_eq!(onlines[0]["status"], "enabled");
}

#[tokio::test]
async fn unwanted_subscriptions_go_after_the_grace_period() {
    let s = setup(SimConfig::default()).await;
    let mut patient = s.manager(Duration::from_secs(3600));
    patient.reconcile(&["4244".to_owned()]).await.unwrap();
    let kept = patient.reconcile(&[]).await.unwrap();
    assert_eq!(kept.unwanted.len(), 5, "kept while a viewer may come back");
    assert_eq!(s.sim_subscriptions().await.len(), 5);
    let mut hasty = s.manager(Duration::ZERO);
    hasty.reconcile(&[]).await.unwrap();
    assert!(
        s.sim_subscriptions().await.is_empty(),
        "deleted once the grace period is over"
    );
}

#[tokio::test]
async fn the_cost_budget_is_respected_and_reported() {
    let s = setup(SimConfig {
        max_total_cost: 7,
        ..SimConfig::default()
    })
    .await;
    let mut manager = s.manager(Duration::from_secs(3600));
    let status = manager
        .reconcile(&["4245".to_owned(), "4246".to_owned()])
        .await
        .unwrap();
    assert_eq!(status.subscribed.len(), 7, "{status:?}");
    assert_eq!(status.not_subscribed.len(), 3);
    assert!(
        status
            .not_subscribed
            .iter()
            .all(|n| n.reason.contains("budget")),
        "{:?}",
        status.not_subscribed
    );
    assert_eq!((status.total_cost, status.max_total_cost), (7, 7));
}

#[test]
fn broadcaster_mode_asks_moderators_only_for_what_twitch_lets_them_grant() {
    use sev_pipeline::manager::{consent_scopes, consent_types};
    let moderator = consent_scopes(false);
    assert!(
        moderator.contains(&"moderator:read:followers"),
        "{moderator:?}"
    );
    assert!(
        !moderator.contains(&"channel:read:polls"),
        "polls are the broadcaster's"
    );
    let broadcaster = consent_scopes(true);
    for s in [
        "moderator:read:followers",
        "channel:read:polls",
        "channel:read:subscriptions",
    ] {
        assert!(broadcaster.contains(&s), "{s} in {broadcaster:?}");
    }
    assert!(
        consent_types(true)
            .iter()
            .all(|t| t.scopes.iter().all(|s| *s != "user:read:chat")),
        "the chat tier is not consent"
    );
    let wants = sev_pipeline::manager::wants(
        &[],
        &[sev_pipeline::Consent {
            streamer_id: "4242".into(),
            user_id: "1006".into(),
        }],
    );
    assert!(
        wants
            .iter()
            .any(|w| w.kind == "channel.follow" && w.moderator_id.as_deref() == Some("1006"))
    );
    assert!(
        wants
            .iter()
            .all(|w| w.moderator_id.as_deref() == Some("1006")),
        "a moderator gets moderator types only"
    );
}
