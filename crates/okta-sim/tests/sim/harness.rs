//! A simulator on a loopback port with the portal client registered for a portal at
//! [`PORTAL_BASE`] (nothing listens there: the simulator only redirects browsers to it).

use std::net::SocketAddr;

use okta_sim::{RunningSim, SimOptions, SimState};

/// Where the registered portal client says the portal is.
pub const PORTAL_BASE: &str = "http://127.0.0.1:9";

/// Installs the rustls crypto provider the HTTP clients use (idempotent).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct SimApp {
    pub sim: RunningSim,
}

impl SimApp {
    pub async fn spawn() -> SimApp {
        init_tls();
        let sim = okta_sim::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SimOptions {
                end_users: 20,
                ..SimOptions::default()
            },
        )
        .await
        .expect("simulator starts");
        sim.state
            .register_client(okta_sim::portal_client(PORTAL_BASE));
        SimApp { sim }
    }

    pub fn sim(&self) -> &SimState {
        &self.sim.state
    }

    /// A URL of the (registered, not running) portal.
    pub fn url(&self, path: &str) -> String {
        format!("{PORTAL_BASE}{path}")
    }
}

pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Query parameter `name` of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
