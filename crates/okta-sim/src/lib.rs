//! `okta_sim`: a local Okta for the demo and the tests.
//!
//! It serves a custom authorization server at `{base}/oauth2/default` that answers as Okta
//! does (OKTA-FACTS.md §10): discovery, authorize with a sign-in page, token (authorization
//! code with PKCE, refresh token, client credentials), keys, userinfo, logout, revoke and
//! introspect. Every response carries `X-Okta-Request-Id`.
//!
//! It also serves the org authorization server (`{base}/oauth2/v1/token` and `/keys`, OAuth
//! 2.0 for Okta with `private_key_jwt` service apps) and the Management API the portal uses
//! (`/api/v1/users`, lifecycle operations, groups, System Log), authenticated by SSWS API
//! tokens or org access tokens, with Okta's rate-limit headers, errors and Link paging.
//! Tests can inject faults ([`Fault`]), lower rate limits, and observe requests and events.
//!
//! Rate-limit buckets (for [`SimState::set_rate_limit`]), default 600 requests per 60 s:
//! `GET /api/v1/users`, `POST /api/v1/users`, `GET /api/v1/users/{id}` (also `/groups`),
//! `POST /api/v1/users/{id}`, `PUT /api/v1/users/{id}`, `DELETE /api/v1/users/{id}`,
//! `POST /api/v1/users/{id}/lifecycle` (every lifecycle operation),
//! `DELETE /api/v1/users/{id}/sessions`, `GET /api/v1/users/{id}/factors` (every factor
//! read), `POST /api/v1/users/{id}/factors` (enroll, activate, resend, verify),
//! `DELETE /api/v1/users/{id}/factors` (unenroll), `GET /api/v1/groups` (every group read),
//! `PUT /api/v1/groups/{id}/users/{userId}`, `DELETE /api/v1/groups/{id}/users/{userId}`,
//! `GET /api/v1/logs`, and `{METHOD} /api/v1` for anything else.
//!
//! The Factors API ([`factors`]) enrolls `sms`, `call`, `email`, `token:software:totp`
//! (Okta Verify and Google Authenticator) and `push`. Passcodes it "sends" land in the
//! outbox ([`outbox`]): [`SimState::outbox`], [`SimState::last_passcode`], and the
//! developer pages `GET {base}/dev/outbox` (HTML) and `GET {base}/dev/outbox.json`, which
//! need no authentication.

// Unit tests may unwrap; the simulator itself may not (workspace lints).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod dpop;
pub mod expr;
pub mod factors;
pub mod groups;
pub mod keys;
pub mod knobs;
pub mod links;
pub mod oidc;
pub mod org_as;
pub mod outbox;
pub mod store;
pub mod syslog;
pub mod users;
pub mod xsrf;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use api::{
    API_ADMIN_ID, API_ADMIN_LOGIN, DEFAULT_RATE_LIMIT, DpopTamper, Fault, FaultKind,
    RecordedRequest,
};
pub use factors::{FactorStatus, FactorType, SimFactor};
pub use org_as::{SERVICE_APP_CLIENT_ID, SERVICE_APP_KEY_PEM, SERVICE_APP_KID, SERVICE_APP_SCOPES};
pub use outbox::{Channel, OutboxMessage};
pub use store::{
    AccessTokenTamper, DEMO_ACCOUNTS, DEMO_PASSWORD, IdTokenTamper, ServiceApp, SimClient, SimUser,
    Store, UserStatus,
};

use keys::KeyRing;
pub use knobs::Knobs;

/// The OAuth client the portal signs agents in with, in the demo.
pub const PORTAL_CLIENT_ID: &str = "0oaPortalDemoClient1";
pub const PORTAL_CLIENT_SECRET: &str = "demo-portal-client-secret-not-for-production";
/// The audience of access tokens minted by the demo authorization server.
pub const AUDIENCE: &str = "api://admin-portal";
pub const AUTH_SERVER_ID: &str = "default";
/// The SSWS API token the simulator accepts by default.
pub const DEMO_API_TOKEN: &str = "demo-ssws-token";

pub struct SimOptions {
    /// How many end users to seed besides the demo accounts.
    pub end_users: usize,
    pub clients: Vec<SimClient>,
    /// SSWS tokens accepted by the Management API (`Authorization: SSWS {token}`).
    pub api_tokens: Vec<String>,
    /// Service apps of the org authorization server (OAuth 2.0 for Okta).
    pub service_apps: Vec<ServiceApp>,
    /// Added latency, rate limits and faults (the command line's `--latency-ms`,
    /// `--rate-limit`, `--fault`).
    pub knobs: Knobs,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            end_users: 400,
            clients: Vec::new(),
            api_tokens: vec![DEMO_API_TOKEN.into()],
            // The key is embedded and checked by a unit test; deriving it cannot fail.
            service_apps: org_as::demo_service_app().into_iter().collect(),
            knobs: Knobs::default(),
        }
    }
}

pub struct SimInner {
    pub base_url: String,
    pub issuer: String,
    store: Mutex<Store>,
    keys: RwLock<KeyRing>,
    ops: Mutex<api::Ops>,
    stopping: watch::Sender<bool>,
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
    /// Lets a registered client authenticate by `private_key_jwt` with this public JWK.
    pub fn register_client_key(&self, client_id: &str, public_jwk: Value) {
        self.store()
            .client_keys
            .insert(client_id.to_string(), public_jwk);
    }

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

    pub(crate) fn ops(&self) -> MutexGuard<'_, api::Ops> {
        self.0.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps, unless the simulator stops first (then returns false).
    pub(crate) async fn sleep_unless_stopped(&self, duration: Duration) -> bool {
        let mut stopping = self.0.stopping.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = stopping.wait_for(|s| *s) => false,
        }
    }

    fn stop_sleepers(&self) {
        self.0.stopping.send_replace(true);
    }

    /// Sets the ceiling of a rate-limit bucket per 60-second window and starts a fresh
    /// window. Buckets are named `"{METHOD} {path template}"`, e.g. `GET /api/v1/users`,
    /// `POST /api/v1/users/{id}/lifecycle`, `GET /api/v1/logs` (see the module docs).
    pub fn set_rate_limit(&self, bucket: &str, limit: u32) {
        self.ops().rate_limits.set(bucket, limit);
    }

    /// Sets the ceiling of every bucket without its own limit (default 600).
    /// How many requests the simulator refused with 429 because their bucket was spent.
    pub fn rate_limited_answers(&self) -> u64 {
        self.ops().rate_limits.refused
    }

    pub fn set_default_rate_limit(&self, limit: u32) {
        self.ops().rate_limits.set_default(limit);
    }

    /// The rate-limit bucket a request falls into.
    pub fn rate_limit_bucket(method: &str, path: &str) -> String {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
        api::bucket_for(&method, path)
    }

    /// Makes the next `fault.count` matching requests fail (before any handler runs).
    pub fn inject_fault(&self, fault: Fault) {
        self.ops().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.ops().faults.clear();
    }

    /// How many requests with this method (`"*"` for any) and a path starting with
    /// `path_prefix` the simulator has received.
    pub fn request_count(&self, method: &str, path_prefix: &str) -> usize {
        self.ops().request_count(method, path_prefix)
    }

    /// The headers of the last matching request (e.g. to read `X-Okta-Retry-For`).
    pub fn last_request_headers(&self, method: &str, path_prefix: &str) -> Option<HeaderMap> {
        self.ops()
            .matching(method, path_prefix)
            .pop()
            .map(|r| r.headers)
    }

    /// The matching requests, oldest first (the last 5000 requests are kept).
    pub fn requests(&self, method: &str, path_prefix: &str) -> Vec<RecordedRequest> {
        self.ops().matching(method, path_prefix)
    }

    /// A user by id, login or unambiguous short name.
    pub fn user(&self, id_or_login: &str) -> Option<SimUser> {
        self.store().find_user(id_or_login).cloned()
    }

    /// Puts a user into a status directly (no System Log event). False if unknown.
    pub fn set_user_status(&self, id_or_login: &str, status: UserStatus) -> bool {
        let mut store = self.store();
        let Some(id) = store.find_user(id_or_login).map(|u| u.id.clone()) else {
            return false;
        };
        let Some(user) = store.users.get_mut(&id) else {
            return false;
        };
        let now = time::OffsetDateTime::now_utc();
        if user.status != status {
            user.status = status;
            user.status_changed = Some(now);
        }
        if status != UserStatus::Staged && user.activated.is_none() {
            user.activated = Some(now);
        }
        user.last_updated = now;
        true
    }

    /// Every System Log event, oldest first.
    pub fn log_events(&self) -> Vec<Value> {
        self.store().log.iter().map(|e| e.event.clone()).collect()
    }

    pub fn add_api_token(&self, token: &str) {
        self.store().api_tokens.push(token.to_string());
    }

    /// Revokes an SSWS token: later calls with it get 401 `E0000011`.
    pub fn revoke_api_token(&self, token: &str) {
        self.store().api_tokens.retain(|t| t != token);
    }

    pub fn register_service_app(&self, app: ServiceApp) {
        self.store().service_apps.insert(app.client_id.clone(), app);
    }

    /// Turns "Require DPoP" on or off for a service app (false if there is no such app).
    pub fn set_service_app_dpop(&self, client_id: &str, bound: bool) -> bool {
        match self.store().service_apps.get_mut(client_id) {
            Some(app) => {
                app.dpop_bound_access_tokens = bound;
                true
            }
            None => false,
        }
    }

    /// The DPoP nonce the org hands out now.
    pub fn dpop_nonce(&self) -> String {
        self.store().dpop.nonce.clone()
    }

    /// Renews the DPoP nonce; the one before stays valid, older ones become stale.
    pub fn rotate_dpop_nonce(&self) {
        self.store().dpop.rotate();
    }

    /// Makes the Management API ask for a DPoP nonce too (401 `use_dpop_nonce`).
    pub fn require_api_dpop_nonce(&self, required: bool) {
        self.store().dpop.api_requires_nonce = required;
    }

    /// Every passcode sent by sms, call or email, oldest first.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.store().outbox.clone()
    }

    /// The last passcode sent for a factor (enrollment, resend or verify challenge).
    pub fn last_passcode(&self, factor_id: &str) -> Option<String> {
        self.store()
            .outbox
            .iter()
            .rev()
            .find(|m| m.factor_id == factor_id)
            .map(|m| m.code.clone())
    }

    /// The factors a user (by id) has enrolled, pending or active, in enrollment order.
    pub fn factors(&self, user_id: &str) -> Vec<SimFactor> {
        self.store()
            .factors
            .iter()
            .filter(|f| f.user_id == user_id)
            .cloned()
            .collect()
    }

    /// One factor by id.
    pub fn factor(&self, factor_id: &str) -> Option<SimFactor> {
        self.store()
            .factors
            .iter()
            .find(|f| f.id == factor_id)
            .cloned()
    }

    /// The shared secret (base32) of a `token:software:totp` factor.
    pub fn totp_secret(&self, factor_id: &str) -> Option<String> {
        self.factor(factor_id)?.totp_secret_base32()
    }

    /// The simulated Okta Verify app approves the pending push of a factor: a pending
    /// activation becomes `ACTIVE`, or the newest waiting verification `SUCCESS`. False if
    /// nothing was waiting.
    pub fn approve_push(&self, factor_id: &str) -> bool {
        factors::answer_push(self, factor_id, true)
    }

    /// The simulated Okta Verify app declines the pending push of a factor (a pending
    /// activation times out; a waiting verification becomes `REJECTED`).
    pub fn reject_push(&self, factor_id: &str) -> bool {
        factors::answer_push(self, factor_id, false)
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

/// The internal customer-support app's client (client_credentials).
pub const SUPPORT_APP_CLIENT_ID: &str = "0oaSupportAppClient1";
pub const SUPPORT_APP_SECRET: &str = "demo-support-app-secret";
/// The internet-facing customer app's client (the registration edge).
pub const CUSTOMER_APP_CLIENT_ID: &str = "0oaCustomerAppClient";
pub const CUSTOMER_APP_SECRET: &str = "demo-customer-app-secret";
/// What the authorization server's access policy lets the support app ask for.
pub const SUPPORT_APP_SCOPES: &[&str] = &[
    "admin.users.read",
    "admin.users.create",
    "admin.users.lifecycle",
    "admin.users.profile",
    "admin.users.groups",
    "admin.users.sessions",
    "admin.factors.read",
    "admin.factors.manage",
];
/// What the customer app may ask for: register and recover, nothing else.
pub const CUSTOMER_APP_SCOPES: &[&str] = &["admin.users.register", "admin.users.recover"];

/// The two service clients of the JSON API, each with its access policy (grant type
/// client_credentials, the scopes listed); any other scope is refused with `invalid_scope`.
pub fn service_clients() -> Vec<SimClient> {
    let client = |id: &str, secret: &str, name: &str, scopes: &[&str]| SimClient {
        id: id.into(),
        secret: secret.into(),
        name: name.into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        service_scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        client(
            SUPPORT_APP_CLIENT_ID,
            SUPPORT_APP_SECRET,
            "Support app",
            SUPPORT_APP_SCOPES,
        ),
        client(
            CUSTOMER_APP_CLIENT_ID,
            CUSTOMER_APP_SECRET,
            "Customer app",
            CUSTOMER_APP_SCOPES,
        ),
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
        self.state.stop_sleepers();
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
        self.state.stop_sleepers();
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
    store.api_tokens = options.api_tokens;
    for app in options.service_apps {
        store.service_apps.insert(app.client_id.clone(), app);
    }
    let state = SimState(Arc::new(SimInner {
        base_url,
        issuer,
        store: Mutex::new(store),
        keys: RwLock::new(KeyRing::load()?),
        ops: Mutex::new(options.knobs.into_ops()),
        stopping: watch::Sender::new(false),
    }));
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
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
        .merge(org_as::routes())
        .merge(management_routes())
        .merge(dev_routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::gate,
        ))
        .layer(axum::middleware::from_fn(okta_headers))
        .with_state(state)
}

/// The Management API (`/api/v1/...`); [`api::gate`] authenticates every call.
fn management_routes() -> Router<SimState> {
    Router::new()
        .route(
            "/api/v1/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/api/v1/users/{id}",
            get(users::get_user)
                .post(users::update_user)
                .put(users::replace_user)
                .delete(users::delete_user),
        )
        .route("/api/v1/users/{id}/groups", get(users::user_groups))
        .route("/api/v1/users/{id}/lifecycle/{op}", post(users::lifecycle))
        .route(
            "/api/v1/users/{id}/sessions",
            axum::routing::delete(users::clear_sessions),
        )
        .route(
            "/api/v1/users/{id}/factors",
            get(factors::list_factors).post(factors::enroll),
        )
        .route("/api/v1/users/{id}/factors/catalog", get(factors::catalog))
        .route(
            "/api/v1/users/{id}/factors/questions",
            get(factors::questions),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}",
            get(factors::get_factor).delete(factors::unenroll),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/lifecycle/activate",
            post(factors::activate),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/lifecycle/activate/poll",
            post(factors::poll_activation),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/resend",
            post(factors::resend),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/verify",
            post(factors::verify),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/transactions/{transaction_id}",
            get(factors::transaction),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/qr/{token}",
            get(factors::qr_code),
        )
        .route("/api/v1/groups", get(groups::list_groups))
        .route("/api/v1/groups/{id}", get(groups::get_group))
        .route("/api/v1/groups/{id}/users", get(groups::group_users))
        .route(
            "/api/v1/groups/{id}/users/{user_id}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route("/api/v1/logs", get(syslog::list_logs))
}

/// The simulator's developer pages (no authentication): the outbox of sent passcodes and
/// the simulated Okta Verify device.
fn dev_routes() -> Router<SimState> {
    Router::new()
        .route("/dev/outbox", get(outbox::outbox_page))
        .route("/dev/outbox.json", get(outbox::outbox_json))
        .route("/dev/push/{factor_id}/approve", post(outbox::approve_push))
        .route("/dev/push/{factor_id}/reject", post(outbox::reject_push))
        .route(
            "/tokens/{token}/verify",
            get(links::activation_page).post(links::activate),
        )
        .route(
            "/signin/reset-password/{token}",
            get(links::reset_page).post(links::reset),
        )
}

/// Unknown paths: 404 (the gate gives Management API paths Okta's error body).
async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Adds `X-Okta-Request-Id` to every response, as Okta does. The id is chosen before the
/// handler runs (request extension [`api::RequestId`]) so that System Log events written
/// while handling the request carry the same id.
async fn okta_headers(mut request: Request, next: Next) -> Response {
    let id = request_id();
    request.extensions_mut().insert(api::RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
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

/// Runs the simulator alone on `addr` with the portal client registered for a portal at
/// `portal_url`, prints how to use it, and serves until `shutdown` completes.
pub async fn run_standalone(
    addr: SocketAddr,
    portal_url: &str,
    knobs: Knobs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let options = SimOptions {
        knobs,
        ..SimOptions::default()
    };
    let sim = spawn(addr, options).await?;
    sim.state.register_client(portal_client(portal_url));
    println!(
        "Okta simulator at {} (issuer {})",
        sim.base_url(),
        sim.issuer()
    );
    println!("Portal client: {PORTAL_CLIENT_ID} / {PORTAL_CLIENT_SECRET}");
    println!("Demo password: {DEMO_PASSWORD}");
    shutdown.await;
    sim.stop().await;
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
