//! The viewer's web app through HTTP, as a browser drives it: sign-in against the simulator's
//! authorize endpoint, sessions, CSRF, favorites, the stream page, sign-out and validation.

use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;
use sev_twitch::oauth::OAuthError;

use crate::helpers::{Sim, TestApp, eventually, spawn_app_with_sim};

/// A browser: no automatic redirects, and a cookie jar kept by hand so tests can inspect it.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            cookies: HashMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Result<Answer> {
        let res = req.header("cookie", self.cookie_header()).send().await?;
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str()?;
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').context("cookie pair")?;
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Ok(Answer {
            status: res.status(),
            location: res
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned),
            body: res.text().await?,
        })
    }

    async fn get(&mut self, url: &str) -> Result<Answer> {
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Result<Answer> {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    fn session(&self) -> Option<&String> {
        self.cookies.get("sev_session")
    }
}

/// Starts a sign-in: returns the `state` sev sent to the authorize endpoint.
async fn start_sign_in(app: &TestApp, browser: &mut Browser) -> Result<String> {
    let (state, scope) = start_sign_in_at(app, browser, "/login").await?;
    ensure!(scope == "user:read:chat user:read:follows");
    Ok(state)
}

/// Follows `path` to the authorize endpoint: the state and the scopes asked for.
async fn start_sign_in_at(
    app: &TestApp,
    browser: &mut Browser,
    path: &str,
) -> Result<(String, String)> {
    let res = browser.get(&format!("{}{path}", app.url)).await?;
    ensure!(
        res.status == StatusCode::SEE_OTHER,
        "login redirects: {}",
        res.status
    );
    let to = url::Url::parse(&res.location.context("to Twitch")?)?;
    let param = |name: &str| {
        to.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .with_context(|| format!("{name} in the authorize URL"))
    };
    Ok((param("state")?, param("scope")?))
}

/// What the simulator's authorize page sends back: the callback URL.
async fn decide(
    app: &TestApp,
    sim: &Sim,
    state: &str,
    login: &str,
    approve: bool,
) -> Result<String> {
    decide_scopes(
        app,
        sim,
        state,
        login,
        approve,
        "user:read:chat user:read:follows",
    )
    .await
}

async fn decide_scopes(
    app: &TestApp,
    sim: &Sim,
    state: &str,
    login: &str,
    approve: bool,
    scope: &str,
) -> Result<String> {
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(sim.base.join("/oauth2/authorize")?)
        .form(&[
            ("client_id", app.state.config.twitch.client_id.as_str()),
            ("redirect_uri", app.state.web.redirect_uri.as_str()),
            ("scope", scope),
            ("state", state),
            ("login", login),
            ("decision", if approve { "approve" } else { "deny" }),
        ])
        .send()
        .await?;
    let to = res
        .headers()
        .get("location")
        .context("back to sev")?
        .to_str()?;
    // The callback is on the public URL (localhost); the test talks to 127.0.0.1.
    Ok(to.replacen("localhost", "127.0.0.1", 1))
}

async fn sign_in(app: &TestApp, sim: &Sim, browser: &mut Browser, login: &str) -> Result<()> {
    let state = start_sign_in(app, browser).await?;
    let callback = decide(app, sim, &state, login, true).await?;
    let res = browser.get(&callback).await?;
    ensure!(
        res.status == StatusCode::SEE_OTHER && browser.session().is_some(),
        "signed in: {} {}",
        res.status,
        res.body
    );
    Ok(())
}

fn csrf(page: &str) -> Result<String> {
    let at = page
        .find("name=\"csrf\" value=\"")
        .context("a CSRF field")?
        + 19;
    Ok(page[at..].split('"').next().unwrap_or_default().to_owned())
}

async fn stored_session(app: &TestApp, browser: &Browser) -> Result<Option<sev_store::Session>> {
    let id = browser.session().context("a session cookie")?;
    Ok(app
        .state
        .store
        .session(&sev::web::session::hash(id))
        .await?)
}

#[tokio::test]
async fn sign_in_gives_a_new_session_and_sign_out_revokes_the_token() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let mut browser = Browser::new()?;
    let landing = browser.get(&format!("{}/", app.url)).await?;
    ensure!(landing.body.contains("Sign in with Twitch"));

    // A session id planted before sign-in (session fixation) is not the one after it.
    browser
        .cookies
        .insert("sev_session".into(), "planted".into());
    sign_in(&app, &sim, &mut browser, "viewer1").await?;
    ensure!(
        browser
            .session()
            .is_some_and(|s| s != "planted" && s.len() >= 43)
    );
    let home = browser.get(&format!("{}/", app.url)).await?;
    ensure!(home.body.contains("Viewer1") && home.body.contains("Your channels"));
    ensure!(
        home.body.contains("speedrunsam"),
        "channels viewer1 follows are offered"
    );

    // Tokens are sealed at rest and open to a token Twitch accepts.
    let session = stored_session(&app, &browser).await?.context("stored")?;
    let web = &app.state.web;
    let token = web.sealer.open(&session.access_token)?;
    ensure!(!session.access_token.contains(token.expose_secret()));
    ensure!(web.oauth.validate(&token).await?.login.as_deref() == Some("viewer1"));

    // Signing in again (another browser) is another session.
    let mut other = Browser::new()?;
    sign_in(&app, &sim, &mut other, "viewer1").await?;
    ensure!(other.session() != browser.session());

    let refused = browser.post(&format!("{}/logout", app.url), &[]).await?;
    ensure!(
        refused.status == StatusCode::FORBIDDEN,
        "no CSRF token, no sign-out"
    );
    let token_field = csrf(&home.body)?;
    let out = browser
        .post(&format!("{}/logout", app.url), &[("csrf", &token_field)])
        .await?;
    ensure!(out.status == StatusCode::SEE_OTHER && browser.session().is_none());
    ensure!(
        app.state.store.session(&session.id).await?.is_none(),
        "the session is gone server-side"
    );
    ensure!(
        matches!(
            web.oauth.validate(&token).await,
            Err(OAuthError::InvalidToken)
        ),
        "the token is revoked at Twitch"
    );
    let after = browser.get(&format!("{}/s/favstreamer", app.url)).await?;
    ensure!(
        after.status == StatusCode::SEE_OTHER
            && after.location.as_deref() == Some("/login?return_to=%2Fs%2Ffavstreamer"),
        "signed-out viewers are sent to sign in, and back: {} {:?}",
        after.status,
        after.location
    );
    app.stop().await
}

#[tokio::test]
async fn a_state_from_another_browser_or_used_twice_is_refused() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;

    // Started in one browser, finished in another: refused, and the state is spent.
    let mut started = Browser::new()?;
    let state = start_sign_in(&app, &mut started).await?;
    let callback = decide(&app, &sim, &state, "viewer1", true).await?;
    let mut elsewhere = Browser::new()?;
    let res = elsewhere.get(&callback).await?;
    ensure!(
        res.status == StatusCode::BAD_REQUEST && res.body.contains("started in another browser")
    );
    ensure!(elsewhere.session().is_none());
    let res = started.get(&callback).await?;
    ensure!(
        res.status == StatusCode::BAD_REQUEST && res.body.contains("already used"),
        "a state works once: {}",
        res.body
    );
    ensure!(started.session().is_none());

    // A completed sign-in's callback, replayed: refused, no second session.
    let mut browser = Browser::new()?;
    let state = start_sign_in(&app, &mut browser).await?;
    let callback = decide(&app, &sim, &state, "viewer2", true).await?;
    ensure!(browser.get(&callback).await?.status == StatusCode::SEE_OTHER);
    let first = browser.session().cloned();
    let replay = browser.get(&callback).await?;
    ensure!(replay.status == StatusCode::BAD_REQUEST && replay.body.contains("expired"));
    ensure!(
        browser.session() == first.as_ref(),
        "the replay changed nothing"
    );

    // A state sev never issued, and no state at all.
    let res = browser
        .get(&format!("{}/auth/callback?code=abc&state=forged", app.url))
        .await?;
    ensure!(res.status == StatusCode::BAD_REQUEST);
    let res = browser
        .get(&format!("{}/auth/callback?code=abc", app.url))
        .await?;
    ensure!(res.status == StatusCode::BAD_REQUEST && res.body.contains("Sign-in incomplete"));
    app.stop().await
}

#[tokio::test]
async fn denied_consent_gets_a_friendly_page() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let mut browser = Browser::new()?;
    let state = start_sign_in(&app, &mut browser).await?;
    let callback = decide(&app, &sim, &state, "viewer1", false).await?;
    ensure!(callback.contains("error=access_denied"));
    let res = browser.get(&callback).await?;
    ensure!(res.status == StatusCode::FORBIDDEN, "{}", res.status);
    ensure!(res.body.contains("Sign-in cancelled") && res.body.contains("nothing was shared"));
    ensure!(browser.session().is_none());
    app.stop().await
}

#[tokio::test]
async fn favorites_need_the_csrf_token_and_a_real_login() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let mut browser = Browser::new()?;
    sign_in(&app, &sim, &mut browser, "viewer1").await?;
    let home = browser.get(&format!("{}/", app.url)).await?;
    let token = csrf(&home.body)?;
    let add = format!("{}/favorites", app.url);
    let user_id = "1001";

    let res = browser.post(&add, &[("login", "favstreamer")]).await?;
    ensure!(res.status == StatusCode::FORBIDDEN && res.body.contains("security token"));
    let res = browser
        .post(&add, &[("login", "favstreamer"), ("csrf", "not-the-token")])
        .await?;
    ensure!(res.status == StatusCode::FORBIDDEN);
    ensure!(
        app.state.store.favorites(user_id).await?.is_empty(),
        "nothing saved"
    );

    let res = browser
        .post(&add, &[("login", "no such!"), ("csrf", &token)])
        .await?;
    ensure!(res.status == StatusCode::BAD_REQUEST && res.body.contains("is not a Twitch login"));
    let res = browser
        .post(&add, &[("login", "nosuchchannel"), ("csrf", &token)])
        .await?;
    ensure!(
        res.status == StatusCode::NOT_FOUND
            && res
                .body
                .contains("There is no Twitch channel named “nosuchchannel”")
            && res.body.contains("value=\"nosuchchannel\""),
        "the message, and the typed login kept: {}",
        res.status
    );
    let res = browser.get(&format!("{}/s/nosuchchannel", app.url)).await?;
    ensure!(res.status == StatusCode::NOT_FOUND && res.body.contains("No such channel"));
    ensure!(app.state.store.favorites(user_id).await?.is_empty());

    let res = browser
        .post(&add, &[("login", "@FavStreamer"), ("csrf", &token)])
        .await?;
    ensure!(res.location.as_deref() == Some("/s/favstreamer"));
    ensure!(app.state.store.favorites(user_id).await? == ["4242"]);
    let suggest = browser.get(&format!("{}/suggest?q=speed", app.url)).await?;
    let v: serde_json::Value = serde_json::from_str(&suggest.body)?;
    ensure!(v["channels"][0]["login"] == "speedrunsam", "{v}");

    let res = browser
        .post(
            &format!("{}/favorites/favstreamer/remove", app.url),
            &[("csrf", &token)],
        )
        .await?;
    ensure!(res.status == StatusCode::SEE_OTHER);
    ensure!(app.state.store.favorites(user_id).await?.is_empty());
    app.stop().await
}

#[tokio::test]
async fn the_stream_page_has_embeds_history_and_tiers() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let mut browser = Browser::new()?;
    sign_in(&app, &sim, &mut browser, "viewer1").await?;
    let home = browser.get(&format!("{}/", app.url)).await?;
    let token = csrf(&home.body)?;
    browser
        .post(
            &format!("{}/favorites", app.url),
            &[("login", "favstreamer"), ("csrf", &token)],
        )
        .await?;
    eventually("favstreamer subscribed", || async {
        let subs = sim.subscriptions().await?;
        Ok(subs.len() >= 5)
    })
    .await?;
    sim.trigger(json!({"type": "channel.raid", "broadcaster": "favstreamer", "user": "speedrunsam", "amount": 321}))?;
    let api = format!("{}/api/v1/streamers/favstreamer/events", app.url);
    eventually("the raid is stored", || async {
        let v: serde_json::Value = reqwest::get(&api).await?.json().await?;
        Ok(v["last_seq"].as_i64().unwrap_or(0) >= 1)
    })
    .await?;

    eventually("the chat reader", || async {
        Ok(sev::chat::reading(&app.state, "4242").await)
    })
    .await?;
    let page = browser.get(&format!("{}/s/favstreamer", app.url)).await?;
    ensure!(page.status == StatusCode::OK);
    ensure!(
        page.body
            .contains("<strong>Chat</strong> <span class=\"state\">active</span>")
    );
    let b = &page.body;
    ensure!(
        b.contains("Raided by Speedrunsam with 321 viewers"),
        "history is on the page"
    );
    ensure!(
        b.contains("data-cursor=\"1\""),
        "the live socket resumes after the history"
    );
    ensure!(b.contains("/embed/player?channel=favstreamer&#38;parent=localhost"));
    ensure!(b.contains("/embed/favstreamer/chat?parent=localhost"));
    ensure!(
        b.contains("<span class=\"pill live\">Live</span>"),
        "favstreamer is live in the sim"
    );
    ensure!(b.contains("<strong>Public</strong> <span class=\"state\">active</span>"));
    ensure!(b.contains("Shown only to the streamer and moderators"));
    ensure!(!b.contains("Add to your channels"), "already a favorite");
    app.stop().await
}

#[tokio::test]
async fn hourly_validation_signs_a_revoked_user_out_everywhere() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let (mut laptop, mut phone, mut friend) = (Browser::new()?, Browser::new()?, Browser::new()?);
    sign_in(&app, &sim, &mut laptop, "viewer1").await?;
    sign_in(&app, &sim, &mut phone, "viewer1").await?;
    sign_in(&app, &sim, &mut friend, "viewer2").await?;

    // The user.authorization.revoke notification is lost (sev was down, say): the hourly
    // validation is what notices.
    let http = reqwest::Client::new();
    let res = http
        .post(sim.base.join("/_sim/faults/delivery")?)
        .json(&json!({"drop": 1}))
        .send()
        .await?;
    ensure!(res.status().is_success());
    let res = http
        .post(sim.base.join("/_sim/users/viewer1/revoke-authorization")?)
        .send()
        .await?;
    ensure!(res.status().is_success());
    ensure!(
        stored_session(&app, &laptop).await?.is_some(),
        "nothing told sev yet"
    );

    let now = chrono::Utc::now();
    let report = sev::web::validation::validate_due(&app.state, now).await?;
    ensure!(
        report.signed_out.is_empty(),
        "validated at sign-in: nothing due yet"
    );
    let later = now + chrono::Duration::minutes(61);
    let report = sev::web::validation::validate_due(&app.state, later).await?;
    ensure!(report.signed_out == ["1001"], "{report:?}");
    ensure!(
        report.valid == 1,
        "viewer2's token is still good: {report:?}"
    );

    for b in [&mut laptop, &mut phone] {
        let home = b.get(&format!("{}/", app.url)).await?;
        ensure!(
            home.body.contains("Sign in with Twitch"),
            "signed out on every device"
        );
    }
    let home = friend.get(&format!("{}/", app.url)).await?;
    ensure!(home.body.contains("Viewer2"), "other users stay signed in");
    app.stop().await
}

/// Who reads favstreamer's chat now: the user in the enabled chat subscription's condition.
async fn chat_reader(sim: &Sim) -> Result<Option<String>> {
    Ok(sim
        .subscriptions()
        .await?
        .into_iter()
        .find(|s| {
            s["type"] == "channel.chat.notification"
                && s["status"] == "enabled"
                && s["condition"]["broadcaster_user_id"] == "4242"
        })
        .and_then(|s| s["condition"]["user_id"].as_str().map(str::to_owned)))
}

#[tokio::test]
async fn a_revoked_chat_reader_is_replaced_by_another_fan_and_the_gap_is_shown() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    for login in ["viewer1", "viewer2"] {
        let mut b = Browser::new()?;
        sign_in(&app, &sim, &mut b, login).await?;
        let home = b.get(&format!("{}/", app.url)).await?;
        let token = csrf(&home.body)?;
        b.post(
            &format!("{}/favorites", app.url),
            &[("login", "favstreamer"), ("csrf", &token)],
        )
        .await?;
    }
    let mut viewer = crate::helpers::connect(&app, Some(0)).await?;
    crate::helpers::until_ready(&mut viewer).await?;

    eventually("a chat reader for favstreamer", || async {
        Ok(chat_reader(&sim).await?.is_some())
    })
    .await?;
    let first = chat_reader(&sim).await?.context("a reader")?;
    sim.trigger(json!({"type": "channel.chat.notification", "broadcaster": "favstreamer", "user": "viewer3", "notice_type": "sub"}))?;
    let m = crate::helpers::next(&mut viewer).await?;
    ensure!(m["event"]["kind"] == "sub", "chat-tier events flow: {m}");

    let login = if first == "1001" {
        "viewer1"
    } else {
        "viewer2"
    };
    let res = reqwest::Client::new()
        .post(
            sim.base
                .join(&format!("/_sim/users/{login}/revoke-authorization"))?,
        )
        .send()
        .await?;
    ensure!(res.status().is_success());
    eventually("another fan's token takes over", || async {
        Ok(chat_reader(&sim).await?.is_some_and(|s| s != first))
    })
    .await?;

    let m = crate::helpers::next(&mut viewer).await?;
    ensure!(
        m["event"]["kind"] == "gap"
            && m["event"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("may be missing"),
        "the failover is reported in the feed: {m}"
    );
    sim.trigger(json!({"type": "channel.chat.notification", "broadcaster": "favstreamer", "user": "viewer4", "notice_type": "resub", "amount": 7}))?;
    let m = crate::helpers::next(&mut viewer).await?;
    ensure!(
        m["event"]["kind"] == "resub",
        "chat-tier events keep flowing: {m}"
    );
    app.stop().await
}

/// Turns broadcaster mode on for favstreamer from a signed-in browser, as its button does.
async fn broadcaster_mode(
    app: &TestApp,
    sim: &Sim,
    b: &mut Browser,
    login: &str,
) -> Result<String> {
    let (state, scope) = start_sign_in_at(
        app,
        b,
        "/login?channel=favstreamer&return_to=%2Fs%2Ffavstreamer",
    )
    .await?;
    let callback = decide_scopes(app, sim, &state, login, true, &scope).await?;
    let res = b.get(&callback).await?;
    ensure!(
        res.location.as_deref() == Some("/s/favstreamer"),
        "{}",
        res.body
    );
    Ok(scope)
}

/// A viewer socket carrying this browser's cookies.
async fn socket(app: &TestApp, b: &Browser) -> Result<crate::helpers::Ws> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/v1/streamers/favstreamer/live?after=0",
        app.url.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request()?;
    if !b.cookies.is_empty() {
        req.headers_mut()
            .insert("cookie", b.cookie_header().parse()?);
    }
    let mut ws = tokio_tungstenite::connect_async(req).await?.0;
    crate::helpers::until_ready(&mut ws).await?;
    Ok(ws)
}

#[tokio::test]
async fn a_consent_tier_event_never_reaches_another_viewers_socket() -> Result<()> {
    use sev::web::consent::{ConsentState, consent_state};
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let (mut moddy, mut claimer, mut viewer) = (Browser::new()?, Browser::new()?, Browser::new()?);
    sign_in(&app, &sim, &mut moddy, "moddy").await?;
    sign_in(&app, &sim, &mut claimer, "viewer1").await?;
    sign_in(&app, &sim, &mut viewer, "viewer2").await?;
    let home = viewer.get(&format!("{}/", app.url)).await?;
    let token = csrf(&home.body)?;
    viewer
        .post(
            &format!("{}/favorites", app.url),
            &[("login", "favstreamer"), ("csrf", &token)],
        )
        .await?;
    let page = moddy.get(&format!("{}/s/favstreamer", app.url)).await?;
    ensure!(page.body.contains("Turn on broadcaster mode"));

    // A moderator asks only for what a moderator can grant; viewer1 claims to moderate too.
    let scope = broadcaster_mode(&app, &sim, &mut moddy, "moddy").await?;
    ensure!(
        scope.contains("moderator:read:followers") && !scope.contains("channel:read:polls"),
        "{scope}"
    );
    broadcaster_mode(&app, &sim, &mut claimer, "viewer1").await?;
    eventually("Twitch confirms moddy", || async {
        Ok(consent_state(&app.state, "1006", "4242").await? == ConsentState::On)
    })
    .await?;
    eventually("Twitch refuses viewer1's claim", || async {
        Ok(matches!(consent_state(&app.state, "1001", "4242").await?, ConsentState::Pending(why) if why.contains("did not confirm")))
    })
    .await?;
    let page = claimer.get(&format!("{}/s/favstreamer", app.url)).await?;
    ensure!(
        page.body
            .contains("Twitch did not confirm that you moderate this channel")
    );
    ensure!(
        page.body
            .contains("<strong>Broadcaster</strong> <span class=\"state\">not active</span>")
    );
    let page = moddy.get(&format!("{}/s/favstreamer", app.url)).await?;
    ensure!(
        page.body
            .contains("<strong>Broadcaster</strong> <span class=\"state\">active</span>")
    );

    let mut sockets = vec![
        ("moddy", socket(&app, &moddy).await?),
        ("viewer1", socket(&app, &claimer).await?),
        ("viewer2", socket(&app, &viewer).await?),
        ("anonymous", socket(&app, &Browser::new()?).await?),
    ];
    sim.trigger(
        json!({"type": "channel.follow", "broadcaster": "favstreamer", "user": "viewer3"}),
    )?;
    sim.trigger(json!({"type": "channel.update", "broadcaster": "favstreamer", "title": "After the follow"}))?;
    for (who, ws) in &mut sockets {
        let first = crate::helpers::next(ws).await?;
        if *who == "moddy" {
            ensure!(
                first["event"]["kind"] == "follow",
                "the moderator sees the follow: {first}"
            );
            let second = crate::helpers::next(ws).await?;
            ensure!(second["event"]["kind"] == "channel.update");
        } else {
            // Events arrive in log order: had the follow reached this socket, it would be first.
            ensure!(
                first["event"]["kind"] == "channel.update",
                "{who} never sees the follow: {first}"
            );
        }
    }
    for (b, sees) in [(&moddy, true), (&claimer, false), (&viewer, false)] {
        let body = b
            .http
            .get(format!("{}/api/v1/streamers/favstreamer/events", app.url))
            .header("cookie", b.cookie_header())
            .send()
            .await?
            .text()
            .await?;
        ensure!(
            body.contains("\"kind\":\"follow\"") == sees,
            "history: {body}"
        );
    }

    // Broadcaster mode off while moddy's socket stays open: no more consent events on it.
    let page = moddy.get(&format!("{}/s/favstreamer", app.url)).await?;
    let token = csrf(&page.body)?;
    let res = moddy
        .post(
            &format!("{}/s/favstreamer/broadcaster-mode/off", app.url),
            &[("csrf", &token)],
        )
        .await?;
    ensure!(res.status == StatusCode::SEE_OTHER);
    sim.trigger(
        json!({"type": "channel.follow", "broadcaster": "favstreamer", "user": "viewer4"}),
    )?;
    sim.trigger(json!({"type": "channel.update", "broadcaster": "favstreamer", "title": "After turning it off"}))?;
    let (_, ws) = &mut sockets[0];
    let next = crate::helpers::next(ws).await?;
    ensure!(
        next["event"]["kind"] == "channel.update",
        "the open socket stops showing consent events at once: {next}"
    );
    app.stop().await
}

#[tokio::test]
async fn revoking_sev_on_twitch_signs_the_user_out_at_once() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let (mut laptop, mut friend) = (Browser::new()?, Browser::new()?);
    sign_in(&app, &sim, &mut laptop, "viewer1").await?;
    sign_in(&app, &sim, &mut friend, "viewer2").await?;
    eventually(
        "the app's user.authorization.revoke subscription",
        || async {
            Ok(sim
                .all_subscriptions()
                .await?
                .iter()
                .any(|s| s["type"] == "user.authorization.revoke" && s["status"] == "enabled"))
        },
    )
    .await?;
    let res = reqwest::Client::new()
        .post(sim.base.join("/_sim/users/viewer1/revoke-authorization")?)
        .send()
        .await?;
    ensure!(res.status().is_success());
    eventually(
        "viewer1's session ends without waiting for validation",
        || async { Ok(stored_session(&app, &laptop).await?.is_none()) },
    )
    .await?;
    ensure!(
        stored_session(&app, &friend).await?.is_some(),
        "others stay signed in"
    );
    let home = laptop.get(&format!("{}/", app.url)).await?;
    ensure!(home.body.contains("Sign in with Twitch"));
    app.stop().await
}

#[tokio::test]
async fn a_fan_of_many_channels_reads_them_all_on_one_session() -> Result<()> {
    let (app, sim) = spawn_app_with_sim(sev_sim::SimConfig::default()).await?;
    let mut b = Browser::new()?;
    sign_in(&app, &sim, &mut b, "viewer1").await?;
    let home = b.get(&format!("{}/", app.url)).await?;
    let token = csrf(&home.body)?;
    let channels = [
        "favstreamer",
        "speedrunsam",
        "cozycarla",
        "retrorick",
        "pixelpia",
    ];
    for login in channels {
        b.post(
            &format!("{}/favorites", app.url),
            &[("login", login), ("csrf", &token)],
        )
        .await?;
    }
    // Twitch allows a user 3 WebSocket sessions: five channels must not need five.
    let chat_subs = || async {
        Ok::<_, anyhow::Error>(
            sim.subscriptions()
                .await?
                .into_iter()
                .filter(|s| s["transport"]["method"] == "websocket" && s["status"] == "enabled")
                .collect::<Vec<_>>(),
        )
    };
    eventually("chat subscriptions for all five", || async {
        Ok(chat_subs().await?.len() == 2 * channels.len())
    })
    .await?;
    let sessions: std::collections::BTreeSet<String> = chat_subs()
        .await?
        .iter()
        .filter_map(|s| s["transport"]["session_id"].as_str().map(str::to_owned))
        .collect();
    ensure!(sessions.len() == 1, "one session: {sessions:?}");
    sim.trigger(json!({"type": "channel.chat.notification", "broadcaster": "pixelpia", "user": "viewer3", "notice_type": "sub"}))?;
    // Removing a channel deletes its chat subscriptions: the session keeps room for the rest.
    b.post(
        &format!("{}/favorites/retrorick/remove", app.url),
        &[("csrf", &token)],
    )
    .await?;
    eventually("retrorick's chat subscriptions deleted", || async {
        Ok(chat_subs().await?.len() == 2 * (channels.len() - 1))
    })
    .await?;
    eventually("pixelpia's sub stored", || async {
        let v: serde_json::Value =
            reqwest::get(format!("{}/api/v1/streamers/pixelpia/events", app.url))
                .await?
                .json()
                .await?;
        Ok(v["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "sub")))
    })
    .await?;
    app.stop().await
}
