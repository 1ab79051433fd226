//! The public registration edge: `admin-portal registration --config FILE`.
//!
//! A separate, small process for self-registration and forgotten passwords. It holds no
//! Okta credential and no database: its only power is its own client_credentials token
//! (scopes `admin.users.register` and `admin.users.recover`), with which it calls
//! admin-portal's service API. It never builds `Ops`, the Okta client or a database pool.
//!
//! - [`config`]: the `[registration]` section (credentials for Okta or a database refused);
//! - `token`: its token, cached until shortly before expiry; `upstream`: the two API calls;
//! - `pow`: ALTCHA proof of work with replay protection; `abuse`: GCRA limits and slow-down;
//! - `submit`: one path for every submission; `web`, `pages`, `json`: the HTTP front.

pub mod config;

mod abuse;
mod context;
mod json;
mod pages;
mod pow;
mod submit;
mod token;
mod upstream;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;

pub use config::RegistrationConfig;
pub use pow::solve as solve_challenge;

/// Everything the handlers share.
pub(crate) struct EdgeState {
    pub config: RegistrationConfig,
    pub api: upstream::PortalApi,
    pub pow: pow::ProofOfWork,
    pub abuse: abuse::Abuse,
    pub public_base: String,
}

/// A bound, ready edge.
pub struct Edge {
    listener: TcpListener,
    router: axum::Router,
    base_url: String,
}

/// An edge serving in the background (tests, the demo).
pub struct RunningEdge {
    pub base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn http_client(config: &RegistrationConfig) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_seconds.unwrap_or(10)))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "admin-portal-registration/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()?)
}

fn random_key() -> SecretString {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Edge {
    pub async fn build(config: RegistrationConfig) -> anyhow::Result<Edge> {
        crate::startup::init_tls();
        let listener = TcpListener::bind(config.bind).await?;
        let bound = listener.local_addr()?;
        let http = http_client(&config)?;
        let tokens = token::TokenSource::new(http.clone(), &config)?;
        let api = upstream::PortalApi::new(http, &config.api_base_url, tokens);
        let key = config.pow_hmac_key.clone().unwrap_or_else(random_key);
        let ttl = Duration::from_secs(config.limits.pow_ttl_seconds);
        let public_base = config.public_base(bound);
        let shared = crate::cluster::Shared::connect(&config.cluster).await?;
        if config.metrics.enabled {
            // Installed now, so the limits' refusals are counted before the first scrape.
            let _ = crate::metrics::recorder();
        }
        let state = Arc::new(EdgeState {
            api,
            pow: pow::ProofOfWork::new(key, ttl, shared.clone()),
            abuse: abuse::Abuse::new(&config.limits, shared),
            public_base: public_base.clone(),
            config,
        });
        Ok(Edge {
            listener,
            router: web::router(state),
            base_url: format!("http://{bound}"),
        })
    }

    /// Where the edge listens (`http://{bound}`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }

    pub fn spawn(self) -> RunningEdge {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let base_url = self.base_url.clone();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = rx.await;
            };
            if let Err(e) = self.run_until_stopped(stopped).await {
                tracing::error!(error = %e, "the registration edge stopped");
            }
        });
        RunningEdge {
            base_url,
            shutdown: Some(tx),
            task,
        }
    }
}

impl RunningEdge {
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// `admin-portal registration --config FILE`: load, refuse forbidden credentials, serve.
pub async fn run(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = RegistrationConfig::load(path)
        .map_err(|problems| anyhow::anyhow!("configuration: {}", problems.join("; ")))?;
    let edge = Edge::build(config).await?;
    tracing::info!(url = %edge.base_url(), "registration edge listening");
    edge.run_until_stopped(crate::startup::shutdown_signal())
        .await
}
