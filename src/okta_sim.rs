//! `okta_sim`: a local Okta for the demo and the tests.
//!
//! It serves a custom authorization server at `{base}/oauth2/default` that answers as Okta
//! does (OKTA-FACTS.md §10): discovery, authorize with a sign-in page, token (authorization
//! code with PKCE, refresh token, client credentials), keys, userinfo, logout, revoke and
//! introspect. Every response carries `X-Okta-Request-Id`.

pub mod keys;
pub mod oidc;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use store::{
    AccessTokenTamper, DEMO_ACCOUNTS, DEMO_PASSWORD, IdTokenTamper, SimClient, Store, UserStatus,
};

use keys::KeyRing;

/// The OAuth client the portal signs agents in with, in the demo.
pub const PORTAL_CLIENT_ID: &str = "0oaPortalDemoClient1";
pub const PORTAL_CLIENT_SECRET: &str = "demo-portal-client-secret-not-for-production";
/// The audience of access tokens minted by the demo authorization server.
pub const AUDIENCE: &str = "api://admin-portal";
pub const AUTH_SERVER_ID: &str = "default";

pub struct SimOptions {
    /// How many end users to seed besides the demo accounts.
    pub end_users: usize,
    pub clients: Vec<SimClient>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            end_users: 400,
            clients: Vec::new(),
        }
    }
}

pub struct SimInner {
    pub base_url: String,
    pub issuer: String,
    store: Mutex<Store>,
    keys: RwLock<KeyRing>,
}

/// A handle on the simulator's state, shared with its handlers and with tests.
#[derive(Clone)]
pub struct SimState(pub Arc<SimInner>);

impl SimState {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock would be a simulator bug; keep serving anyway.
        self.0.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn keys(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.0.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn keys_mut(&self) -> RwLockWriteGuard<'_, KeyRing> {
        self.0.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// Rotates the signing key (the new key is published in the JWKS at once).
    pub fn rotate_keys(&self) {
        self.keys_mut().rotate();
    }

    pub fn register_client(&self, client: SimClient) {
        self.store().clients.insert(client.id.clone(), client);
    }

    /// Makes the next ID token defective in the given way.
    pub fn tamper_next_id_token(&self, tamper: IdTokenTamper) {
        self.store().id_token_tamper = Some(tamper);
    }

    pub fn tamper_next_access_token(&self, tamper: AccessTokenTamper) {
        self.store().access_token_tamper = Some(tamper);
    }

    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.store().access_token_ttl = ttl;
    }

    /// Revokes every refresh token (as an admin clearing a user's tokens would).
    pub fn revoke_all_refresh_tokens(&self) {
        for grant in self.store().refresh_tokens.values_mut() {
            grant.revoked = true;
        }
    }

    pub fn token_calls(&self, grant_type: &str) -> u32 {
        self.store()
            .token_calls
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }
}

/// The portal's client registration for a portal reachable at `portal_base`.
pub fn portal_client(portal_base: &str) -> SimClient {
    let base = portal_base.trim_end_matches('/');
    SimClient {
        id: PORTAL_CLIENT_ID.to_string(),
        secret: PORTAL_CLIENT_SECRET.to_string(),
        name: "Admin Portal".to_string(),
        redirect_uris: vec![format!("{base}/auth/callback")],
        post_logout_redirect_uris: vec![format!("{base}/signed-out")],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        service_scopes: vec![],
    }
}

/// The two service clients of the JSON API (customer-facing app and internal support app).
pub fn service_clients() -> Vec<SimClient> {
    vec![
        SimClient {
            id: "0oaSupportAppClient1".into(),
            secret: "demo-support-app-secret".into(),
            name: "Internal support app".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            service_scopes: vec![
                "admin.users.read".into(),
                "admin.users.lifecycle".into(),
                "admin.factors.read".into(),
                "admin.factors.manage".into(),
            ],
        },
        SimClient {
            id: "0oaCustomerAppClient".into(),
            secret: "demo-customer-app-secret".into(),
            name: "Customer-facing app".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            service_scopes: vec!["admin.users.register".into()],
        },
    ]
}

/// A running simulator.
pub struct RunningSim {
    pub state: SimState,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    pub fn base_url(&self) -> &str {
        self.state.base_url()
    }

    pub fn issuer(&self) -> &str {
        self.state.issuer()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` (port 0 for any free port) and serves the simulator in the background.
pub async fn spawn(addr: SocketAddr, options: SimOptions) -> anyhow::Result<RunningSim> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let issuer = format!("{base_url}/oauth2/{AUTH_SERVER_ID}");
    let mut store = store::seed(time::OffsetDateTime::now_utc(), options.end_users);
    for client in service_clients().into_iter().chain(options.clients) {
        store.clients.insert(client.id.clone(), client);
    }
    let state = SimState(Arc::new(SimInner {
        base_url,
        issuer,
        store: Mutex::new(store),
        keys: RwLock::new(KeyRing::load()?),
    }));
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "okta simulator stopped");
        }
    });
    Ok(RunningSim {
        state,
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}

pub fn router(state: SimState) -> Router {
    Router::new()
        .nest("/oauth2/default", oidc::routes())
        .layer(axum::middleware::from_fn(okta_headers))
        .with_state(state)
}

/// Adds `X-Okta-Request-Id` to every response, as Okta does.
async fn okta_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id()) {
        response.headers_mut().insert("x-okta-request-id", value);
    }
    response
}

/// An Okta-style opaque request id.
pub fn request_id() -> String {
    random_token(25)
}

/// A random URL-safe token of `len` characters.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
