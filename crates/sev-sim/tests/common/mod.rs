//! Shared helpers: a simulator on port 0, clients for it, and signing in through its
//! authorize page as a browser would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use secrecy::SecretString;
use sev_sim::{Sim, SimConfig, SimHandle};
use sev_twitch::TwitchUrls;
use sev_twitch::helix::{HelixClient, HelixConfig};
use sev_twitch::oauth::{AppTokenSource, Credentials, OAuthClient, UserToken, UserTokenSource};

pub const REDIRECT: &str = "http://localhost:8080/auth/callback";

pub struct TestSim {
    pub base: url::Url,
    pub urls: TwitchUrls,
    pub config: SimConfig,
    pub handle: SimHandle,
    pub oauth: OAuthClient,
    pub helix: HelixClient,
    pub http: reqwest::Client,
}

pub async fn start(config: SimConfig) -> TestSim {
    let sim = Sim::bind("127.0.0.1:0".parse().unwrap(), config.clone())
        .await
        .unwrap();
    let base = url::Url::parse(&sim.url().unwrap()).unwrap();
    let handle = sim.handle();
    tokio::spawn(sim.run(std::future::pending()));
    let urls = TwitchUrls::simulator(&base).unwrap();
    let http = sev_twitch::http_client().unwrap();
    let creds = Credentials {
        client_id: config.client_id.clone(),
        client_secret: SecretString::from(config.client_secret.clone()),
    };
    let helix_config = HelixConfig {
        max_retries: 0,
        ..HelixConfig::default()
    };
    TestSim {
        oauth: OAuthClient::new(http.clone(), urls.clone(), creds),
        helix: HelixClient::new(
            http.clone(),
            urls.clone(),
            config.client_id.clone(),
            helix_config,
        ),
        base,
        urls,
        config,
        handle,
        http,
    }
}

impl TestSim {
    /// Approves (or denies) the authorize page as `login`; returns the redirect's query.
    pub async fn authorize(
        &self,
        login: &str,
        scopes: &str,
        state: &str,
        approve: bool,
    ) -> std::collections::HashMap<String, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = client
            .post(self.base.join("/oauth2/authorize").unwrap())
            .form(&[
                ("client_id", self.config.client_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("scope", scopes),
                ("state", state),
                ("login", login),
                ("decision", if approve { "approve" } else { "deny" }),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "a redirect back to the app");
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let url = url::Url::parse(&location).unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        url.query_pairs().into_owned().collect()
    }

    /// Signs `login` in with `scopes` and returns their tokens.
    pub async fn user_token(&self, login: &str, scopes: &str) -> UserToken {
        let q = self.authorize(login, scopes, "s", true).await;
        self.oauth
            .exchange_code(&q["code"], REDIRECT)
            .await
            .unwrap()
    }

    pub async fn user(&self, login: &str, scopes: &str) -> UserTokenSource {
        UserTokenSource::new(
            self.oauth.clone(),
            self.user_token(login, scopes).await,
            None,
        )
    }

    pub fn app(&self) -> AppTokenSource {
        AppTokenSource::new(self.oauth.clone())
    }

    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let res = self
            .http
            .post(self.base.join(path).unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(serde_json::Value::Null)
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.base.join(path).unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Polls until `f` holds: for asynchronous effects (a delivery, a verification).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
