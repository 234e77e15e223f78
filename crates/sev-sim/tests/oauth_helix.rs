//! The simulator's OAuth and Helix read endpoints, driven by sev's own Twitch client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use secrecy::ExposeSecret;
use serde_json::Value;
use sev_sim::SimConfig;
use sev_twitch::helix::HelixError;
use sev_twitch::oauth::OAuthError;

#[tokio::test]
async fn validate_and_helix_answer_401_as_twitch_does() {
    let sim = common::start(SimConfig::default()).await;
    let res = sim
        .http
        .get(sim.base.join("/oauth2/validate").unwrap())
        .header("Authorization", "OAuth not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"status": 401, "message": "invalid access token"})
    );
    let res = sim
        .http
        .get(sim.base.join("/helix/users?login=favstreamer").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"error": "Unauthorized", "status": 401, "message": "OAuth token is missing"})
    );
}

#[tokio::test]
async fn the_authorize_page_lists_users_and_checks_the_request() {
    let sim = common::start(SimConfig::default()).await;
    let page = |q: String| {
        let http = sim.http.clone();
        let url = sim.base.join(&format!("/oauth2/authorize?{q}")).unwrap();
        async move { http.get(url).send().await.unwrap() }
    };
    let good = format!(
        "client_id={}&redirect_uri={}&response_type=code&scope=user%3Aread%3Achat&state=abc",
        sim.config.client_id,
        common::REDIRECT
    );
    let res = page(good.clone()).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("favstreamer") && html.contains("viewer1") && html.contains("user:read:chat")
    );
    assert_eq!(
        page(good.replace("client_id=sev", "client_id=xx"))
            .await
            .status(),
        400,
        "unknown client"
    );
    assert_eq!(
        page(good.replace("localhost:8080", "evil.example"))
            .await
            .status(),
        400,
        "redirect_uri not registered"
    );
    assert_eq!(
        page(good.replace("user%3Aread%3Achat", "user%3Aread%3Aeverything"))
            .await
            .status(),
        400,
        "unknown scope"
    );
}

#[tokio::test]
async fn the_code_flow_refresh_validate_and_revoke() {
    let sim = common::start(SimConfig::default()).await;
    let q = sim
        .authorize("viewer1", "user:read:chat user:read:follows", "st4te", true)
        .await;
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["scope"], "user:read:chat user:read:follows");
    let token = sim
        .oauth
        .exchange_code(&q["code"], common::REDIRECT)
        .await
        .unwrap();
    assert_eq!(token.scopes, ["user:read:chat", "user:read:follows"]);
    assert!(
        matches!(
            sim.oauth.exchange_code(&q["code"], common::REDIRECT).await,
            Err(OAuthError::Refused(_))
        ),
        "a code is good once"
    );

    let v = sim.oauth.validate(&token.access_token).await.unwrap();
    assert_eq!(
        (
            v.login.as_deref(),
            v.user_id.as_deref(),
            v.client_id.as_str()
        ),
        (Some("viewer1"), Some("1001"), sim.config.client_id.as_str())
    );

    let fresh = sim.oauth.refresh(&token.refresh_token).await.unwrap();
    assert_ne!(
        fresh.refresh_token.expose_secret(),
        token.refresh_token.expose_secret()
    );
    assert!(
        matches!(sim.oauth.refresh(&token.refresh_token).await, Err(OAuthError::Refused(m)) if m == "Invalid refresh token"),
        "refresh tokens rotate"
    );

    sim.oauth.revoke(&fresh.access_token).await.unwrap();
    assert!(matches!(
        sim.oauth.validate(&fresh.access_token).await,
        Err(OAuthError::InvalidToken)
    ));
    assert!(
        matches!(
            sim.oauth.refresh(&fresh.refresh_token).await,
            Err(OAuthError::Refused(_))
        ),
        "revoking a token revokes its refresh token"
    );

    let denied = sim.authorize("viewer1", "", "xyz", false).await;
    assert_eq!(
        (denied["error"].as_str(), denied["state"].as_str()),
        ("access_denied", "xyz")
    );

    let app = sim.oauth.app_token().await.unwrap();
    let v = sim.oauth.validate(&app.access_token).await.unwrap();
    assert!(
        v.user_id.is_none() && v.login.is_none(),
        "app tokens have no user"
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let sim = common::start(SimConfig {
        user_token_ttl: chrono::Duration::seconds(-1),
        ..SimConfig::default()
    })
    .await;
    let token = sim.user_token("viewer2", "").await;
    assert!(matches!(
        sim.oauth.validate(&token.access_token).await,
        Err(OAuthError::InvalidToken)
    ));
}

#[tokio::test]
async fn helix_reads_users_channels_streams_search_and_follows() {
    let sim = common::start(SimConfig::default()).await;
    let viewer = sim.user("viewer1", "user:read:follows").await;
    let me = sim.helix.get_users(&viewer, &[], &[]).await.unwrap();
    assert_eq!(
        me[0].login, "viewer1",
        "no filter with a user token is the user"
    );
    let users = sim
        .helix
        .get_users(&viewer, &["4243"], &["FavStreamer"])
        .await
        .unwrap();
    let mut logins: Vec<&str> = users.iter().map(|u| u.login.as_str()).collect();
    logins.sort_unstable();
    assert_eq!(logins, ["favstreamer", "speedrunsam"]);

    let found = sim
        .helix
        .search_channels(&viewer, "fav", false, 20, None)
        .await
        .unwrap();
    assert_eq!(found.data[0].broadcaster_login, "favstreamer");
    assert!(
        sim.helix
            .search_channels(&viewer, "zzz", false, 20, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );

    let streams = sim
        .helix
        .get_streams(&viewer, &["4242", "4243"], &[])
        .await
        .unwrap();
    assert_eq!(
        streams
            .iter()
            .map(|s| s.user_login.as_str())
            .collect::<Vec<_>>(),
        ["favstreamer"],
        "only live channels are streams"
    );
    let channels = sim.helix.get_channels(&viewer, &["4243"]).await.unwrap();
    assert_eq!(channels[0].broadcaster_login, "speedrunsam");

    let follows = sim
        .helix
        .get_followed_channels(&viewer, "1001", 100, None)
        .await
        .unwrap();
    assert!(
        follows
            .data
            .iter()
            .any(|f| f.broadcaster_login == "favstreamer")
    );
    assert_eq!(follows.total, Some(follows.data.len() as i64));
    let other = sim
        .helix
        .get_followed_channels(&viewer, "1002", 100, None)
        .await;
    assert!(
        matches!(other, Err(HelixError::Unauthorized(_))),
        "only your own follows"
    );
    let no_scope = sim.user("viewer2", "").await;
    assert!(
        matches!(
            sim.helix
                .get_followed_channels(&no_scope, "1002", 100, None)
                .await,
            Err(HelixError::Unauthorized(_))
        ),
        "needs user:read:follows"
    );
}

#[tokio::test]
async fn helix_rate_limits_with_headers_and_429() {
    let sim = common::start(SimConfig {
        rate_limit_per_minute: 3,
        ..SimConfig::default()
    })
    .await;
    let token = sim.user_token("viewer1", "").await;
    let call = || {
        sim.http
            .get(sim.base.join("/helix/users").unwrap())
            .bearer_auth(token.access_token.expose_secret())
            .header("Client-Id", &sim.config.client_id)
            .send()
    };
    let first = call().await.unwrap();
    assert_eq!(first.headers()["ratelimit-limit"], "3");
    assert_eq!(first.headers()["ratelimit-remaining"], "2");
    let reset: i64 = first.headers()["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > chrono::Utc::now().timestamp());
    call().await.unwrap();
    call().await.unwrap();
    let refused = call().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
}

#[tokio::test]
async fn client_id_must_match_the_token_and_faults_can_be_injected() {
    let sim = common::start(SimConfig::default()).await;
    let token = sim.user_token("viewer1", "").await;
    let res = sim
        .http
        .get(sim.base.join("/helix/users").unwrap())
        .bearer_auth(token.access_token.expose_secret())
        .header("Client-Id", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    sim.control(
        "/_sim/faults/helix",
        serde_json::json!({"status": 503, "count": 2}),
    )
    .await;
    let viewer = sim.user("viewer2", "").await;
    for _ in 0..2 {
        assert!(matches!(
            sim.helix.get_users(&viewer, &[], &[]).await,
            Err(HelixError::Server { status: 503, .. })
        ));
    }
    assert!(
        sim.helix.get_users(&viewer, &[], &[]).await.is_ok(),
        "the fault lasts for its count"
    );
}

#[test]
fn the_same_seed_gives_the_same_world() {
    let shape = |w: &sev_sim::world::World| {
        w.channels
            .values()
            .map(|c| {
                (
                    c.broadcaster_id.clone(),
                    c.title.clone(),
                    c.category_name.clone(),
                    c.live.is_some(),
                    c.followers.keys().cloned().collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    let a = sev_sim::world::World::generate(7);
    let b = sev_sim::world::World::generate(7);
    let c = sev_sim::world::World::generate(8);
    assert_eq!(shape(&a), shape(&b));
    assert_eq!(a.users, b.users);
    assert_ne!(shape(&a), shape(&c), "another seed, another world");
}
