//! The one outbound HTTP client and the TLS provider it needs.

use std::time::Duration;

pub const USER_AGENT: &str = concat!("admin-portal/", env!("CARGO_PKG_VERSION"));

/// Installs the TLS crypto provider once per process.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The one HTTP client for outbound calls: timeouts, no redirects, our user agent.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    init_tls();
    Ok(reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}
