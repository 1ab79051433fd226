//! The service API: JSON for other services under `/api/v1`, authenticated by their own
//! OAuth client (a client_credentials bearer token), authorized by the policy's `clients`
//! rules, and built on `ops/` like the browser pages: no guard and no audit call here.
//!
//! Layers, outermost first: [`problem::render`] (RFC 9457 bodies with the request id) →
//! [`gate::gate`] on `/v1` (bearer token, client registry, rate limit) → the handler, which
//! asks for `Require<perm::X, Service>` and calls one `Ops` method.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use url::Url;

use crate::audit::AuditStore;
use crate::auth::policy::Policy;
use crate::auth::tokens::{Expect, KeyCache};
use crate::db::Database;
use crate::ops::Ops;
use crate::state::AppState;

pub mod config;
pub mod docs;
pub mod dto;
pub mod factors;
pub mod gate;
pub mod idempotency;
pub mod problem;
pub mod public;
pub mod users;

pub use gate::Service;

pub use config::{
    ApiClient, ApiConfig, CUSTOMER_APP, DEFAULT_AUDIENCE, DEFAULT_SCOPE_PATTERN, SUPPORT_APP,
    demo_config, demo_rules, scope_problems,
};

/// What the API's handlers and its gate need.
#[derive(Clone)]
pub struct ApiState {
    pub ops: Arc<Ops>,
    pub policy: Arc<Policy>,
    pub audit: AuditStore,
    pub db: Database,
    pub public_base: Url,
    pub page_size: u32,
    pub gate: Arc<GateState>,
}

pub struct GateState {
    pub config: ApiConfig,
    pub verifier: gate::Verifier,
    pub limits: gate::Limits,
}

impl axum::extract::FromRef<ApiState> for Arc<Policy> {
    fn from_ref(state: &ApiState) -> Arc<Policy> {
        state.policy.clone()
    }
}

impl axum::extract::FromRef<ApiState> for AuditStore {
    fn from_ref(state: &ApiState) -> AuditStore {
        state.audit.clone()
    }
}

impl ApiState {
    pub fn new(state: &AppState) -> ApiState {
        let config = state.config.api.clone();
        let oidc = &state.config.oidc;
        let issuer = config.issuer.clone().unwrap_or_else(|| oidc.issuer.clone());
        let issuer = issuer.as_str().trim_end_matches('/').to_string();
        let keys = if issuer == oidc.issuer.as_str().trim_end_matches('/') {
            gate::Keys::SignIn(state.oidc.clone())
        } else {
            let ttl = Duration::from_secs(oidc.discovery_ttl_seconds);
            let http = crate::http::http_client().unwrap_or_else(|e| {
                tracing::error!(error = %e, "the API's HTTP client could not be configured; using defaults");
                reqwest::Client::new()
            });
            gate::Keys::Own(KeyCache::new(http, &issuer, ttl))
        };
        let expect = Expect {
            issuer,
            audience: config.audience.clone(),
            leeway_seconds: oidc.leeway_seconds,
        };
        ApiState {
            ops: state.ops.clone(),
            policy: state.policy.clone(),
            audit: state.audit.clone(),
            db: state.db.clone(),
            public_base: state.public_base.clone(),
            page_size: state.config.users.page_size,
            gate: Arc::new(GateState {
                config,
                verifier: gate::Verifier { keys, expect },
                limits: gate::Limits {
                    shared: state.shared.clone(),
                },
            }),
        }
    }
}

impl ApiState {
    /// The reason and ticket of a change, checked by the operations layer's rules.
    pub fn why(&self, reason: &str, ticket: &str) -> Result<crate::ops::Why, problem::ApiProblem> {
        crate::ops::Why::new(reason.trim(), ticket.trim(), self.ops.why_rules())
            .map_err(problem::ApiProblem::from)
    }
}

/// The `/api` router: `/v1/…` (authenticated), `/openapi.json` and `/docs` (public).
pub fn router(state: &AppState) -> Router<AppState> {
    let api = ApiState::new(state);
    let (v1, openapi) = docs::v1_router().split_for_parts();
    let v1 = v1.route_layer(from_fn_with_state(api.clone(), gate::gate));
    Router::new()
        .merge(v1)
        .merge(docs::routes(openapi))
        .fallback(problem::not_found)
        .layer(from_fn(problem::render))
        .with_state(api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::policy::RuleSpec;

    fn policy(rules: std::collections::BTreeMap<String, RuleSpec>) -> Policy {
        Policy::compile(Some(rules), &crate::config::default_scopes()).unwrap()
    }

    #[test]
    fn the_scope_convention_is_enforced() {
        assert!(scope_problems(&policy(demo_rules()), None).is_empty());
        let mut rules = demo_rules();
        rules.get_mut("users.recover").unwrap().scopes = vec!["Recover-Passwords".into()];
        let problems = scope_problems(&policy(rules.clone()), None);
        assert_eq!(
            problems,
            vec![format!(
                "policy: scope \"Recover-Passwords\" does not follow policy.scope_pattern {DEFAULT_SCOPE_PATTERN}"
            )]
        );
        assert!(scope_problems(&policy(rules.clone()), Some("^[A-Za-z.-]+$")).is_empty());
        assert!(
            scope_problems(&policy(rules), Some("("))
                .first()
                .unwrap()
                .contains("not a valid pattern")
        );
    }

    #[test]
    fn a_registry_must_know_every_client_the_policy_names() {
        let p = policy(demo_rules());
        assert!(demo_config().problems(&p, None).is_empty());
        // No registry: any client the policy names may call.
        assert!(ApiConfig::default().problems(&p, None).is_empty());
        let mut partial = demo_config();
        partial.clients.retain(|c| c.id == SUPPORT_APP);
        partial.clients.push(partial.clients[0].clone());
        partial.clients[0].burst = 0;
        let problems = partial.problems(&p, None);
        assert!(
            problems.contains(&format!(
                "policy: client \"{CUSTOMER_APP}\" is not in api.clients"
            )),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|m| m.contains("listed twice")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|m| m.contains("burst of at least 1")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_document_names_a_scope_and_the_errors_of_every_operation() {
        let doc = serde_json::to_value(docs::document()).unwrap();
        let round_trip: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(round_trip).unwrap(), doc);
        let pattern = regex::Regex::new(DEFAULT_SCOPE_PATTERN).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let scope = &op["security"][0]["bearer"][0];
                assert!(
                    scope.as_str().is_some_and(|s| pattern.is_match(s)),
                    "{method} {path}"
                );
                assert!(op["responses"].get("403").is_some(), "{method} {path}");
            }
        }
    }
}
