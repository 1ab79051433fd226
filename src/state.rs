//! Application state, built once at start-up and passed to every handler.

use std::sync::Arc;

use url::Url;

use crate::audit::AuditStore;
use crate::auth::oidc::Oidc;
use crate::auth::policy::Policy;
use crate::auth::session::SessionConfig;
use crate::config::Config;
use crate::db::Database;
use crate::okta::OktaClient;
use crate::ops::Ops;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// `[session]`, for the extractors.
    pub session: Arc<SessionConfig>,
    pub policy: Arc<Policy>,
    pub oidc: Arc<Oidc>,
    pub okta: Arc<OktaClient>,
    pub audit: AuditStore,
    /// Every change to Okta goes through here.
    pub ops: Arc<Ops>,
    pub db: Database,
    /// The URL people use to reach the portal.
    pub public_base: Url,
    /// What the instances share (Redis), or this instance's own limits.
    pub shared: crate::cluster::Shared,
    /// Live searches, so that an agent's newer keystroke cancels the older search.
    pub live_searches: Arc<crate::supersede::Supersede>,
}

macro_rules! substates {
    ($($field:ident: $ty:ty,)*) => {
        $(impl axum::extract::FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> $ty {
                state.$field.clone()
            }
        })*
    };
}

// The parts extractors and operations need, so they do not depend on the whole state.
substates! {
    config: Arc<Config>,
    session: Arc<SessionConfig>,
    policy: Arc<Policy>,
    oidc: Arc<Oidc>,
    okta: Arc<OktaClient>,
    audit: AuditStore,
    ops: Arc<Ops>,
    shared: crate::cluster::Shared,
}
