//! Building and running the app: [`App::build`] connects everything and binds the listener
//! (port 0 works: read the port back), [`App::run_until_stopped`] serves until the shutdown
//! future completes, then drains.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sev_store::{EventLog, EventLogConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::events::Events;
use crate::metrics::{CountingListener, Metrics};
use crate::state::AppState;

/// How long in-flight requests may take to finish after shutdown begins. Together with the
/// steps after it, the process exits within 5 s of SIGINT/SIGTERM.
const DRAIN: Duration = Duration::from_secs(4);

pub struct App {
    listener: TcpListener,
    state: AppState,
    writer: JoinHandle<()>,
    eventsub_secret: SecretString,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;

        let store = sev_store::connect(config.database_url.expose_secret())
            .await
            .with_context(|| format!("opening the database {}", config.database_url_for_logs()))?;
        let bus = sev_bus::connect(
            config.redis_url.as_ref().map(|u| u.expose_secret()),
            sev_bus::RedisBusConfig::default(),
        )
        .await
        .context("connecting to the Redis bus")?;
        let eventsub_secret = match &config.eventsub_secret {
            Some(s) => s.clone(),
            None => crate::config::load_or_create_secret(&config.data_dir, "eventsub-secret")
                .context("loading the EventSub secret from the data dir")?,
        };

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let port = listener.local_addr()?.port();
        let public_url = match &config.public_url {
            Some(u) => u.clone(),
            None => Url::parse(&format!("http://localhost:{port}"))?,
        };

        let token_key = match &config.token_key {
            Some(k) => k.clone(),
            None => crate::config::load_or_create_secret(&config.data_dir, "token-key")
                .context("loading the token key from the data dir")?,
        };
        let web = Arc::new(crate::web::Web::new(&config, &public_url, &token_key)?);

        let metrics = Arc::new(Metrics::new());
        let (log, writer) = EventLog::start(store.clone(), EventLogConfig::default());
        let state = AppState {
            events: Events::new(log, bus, metrics.clone()),
            config: Arc::new(config),
            public_url,
            store,
            metrics,
            shutdown: CancellationToken::new(),
            eventsub_secret: eventsub_secret.clone(),
            subscriptions: Arc::default(),
            resubscribe: Arc::default(),
            chat_wake: Arc::default(),
            web,
            chat_readers: Arc::default(),
        };
        Ok(Self {
            listener,
            state,
            writer,
            eventsub_secret,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn public_url(&self) -> &Url {
        &self.state.public_url
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The secret that EventSub webhook signatures are checked with.
    pub fn eventsub_secret(&self) -> &SecretString {
        &self.eventsub_secret
    }

    /// Serves until `shutdown` completes or a supervised task fails, then stops accepting,
    /// gives in-flight requests [`DRAIN`] to finish, closes long-lived connections, flushes
    /// the event log and closes the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            mut writer,
            eventsub_secret: _,
        } = self;
        let token = state.shutdown.clone();
        let store = state.store.clone();
        let router = crate::routes::router(state.clone());
        let listener = CountingListener::new(listener, &state.metrics);
        let serve =
            axum::serve(listener, router).with_graceful_shutdown(token.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { serve.await });
        // The public tier's connector, when there is a Twitch to talk to.
        // The Twitch connections, when there is a Twitch to talk to and this instance may hold
        // them: leased work, spread over the instances (see `workers`).
        let workers = (state.config.twitch_workers && !state.config.twitch.client_id.is_empty())
            .then(|| tokio::spawn(crate::workers::run(state.clone())));
        let retention = tokio::spawn(crate::retention::run(state.clone()));
        drop(state);

        let mut failure = None;
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            () = token.cancelled() => tracing::info!("shutting down"),
            res = &mut server => failure = Some(format!("HTTP server stopped: {res:?}")),
            res = &mut writer => failure = Some(format!("event log writer stopped: {res:?}")),
        }
        if let Some(f) = &failure {
            tracing::error!("{f}");
        }
        token.cancel();

        if !server.is_finished() && tokio::time::timeout(DRAIN, &mut server).await.is_err() {
            tracing::warn!("requests still running after {DRAIN:?}; closing their connections");
            server.abort();
        }
        if let Some(w) = workers
            && tokio::time::timeout(Duration::from_millis(1500), w)
                .await
                .is_err()
        {
            tracing::warn!("the Twitch workers did not stop in time");
        }
        if tokio::time::timeout(Duration::from_millis(500), retention)
            .await
            .is_err()
        {
            tracing::warn!("the retention task did not stop in time");
        }
        // The router (and with it the last event-log handle) is gone: the writer drains what
        // was queued and stops.
        if !writer.is_finished()
            && tokio::time::timeout(Duration::from_millis(500), &mut writer)
                .await
                .is_err()
        {
            tracing::warn!("event log writer did not finish in time");
            writer.abort();
        }
        store.close().await;
        tracing::info!("stopped");
        match failure {
            Some(f) => Err(anyhow::anyhow!(f)),
            None => Ok(()),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    // The handlers are registered here, not on first poll: a SIGINT that arrives while the
    // app is still starting must stop it cleanly, not kill it.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async fn wait(s: Option<Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = wait(int) => {}
                () = wait(term) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
