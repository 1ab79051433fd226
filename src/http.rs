//! The one outbound HTTP client and the TLS provider it needs.

use std::net::IpAddr;
use std::time::Duration;

use http::HeaderMap;

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

/// The end user's address: the peer, or (from a trusted proxy) the rightmost address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}
