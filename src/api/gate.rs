//! The API's front door: a bearer token (never a cookie) verified by the shared verifier,
//! the client looked up in the registry, its rate limit applied, and the [`Service`]
//! principal handed to the handlers (`Require<P, Service>`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::problem::ApiProblem;
use super::{ApiClient, ApiState};
use crate::auth::extract::{Authenticated, request_meta};
use crate::auth::oidc::Oidc;
use crate::auth::policy::Permission;
use crate::auth::principal::Principal;
use crate::auth::tokens::{self, Expect, KeyCache, TokenError};
use crate::cluster::{Quota, Shared};
use crate::error::{AppError, ErrorReport};

/// An authenticated service client.
#[derive(Debug, Clone)]
pub struct Service {
    pub principal: Principal,
}

impl Authenticated for Service {
    fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Put in the request by [`gate`]; a route without the gate has no service.
impl<S: Send + Sync> FromRequestParts<S> for Service {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Service>()
            .cloned()
            .ok_or(AppError::Unauthenticated { return_to: None })
    }
}

/// Where the API's keys come from: the sign-in issuer's cache when the API trusts the same
/// issuer (one JWKS cache for both), or a cache of its own.
pub enum Keys {
    SignIn(Arc<Oidc>),
    Own(KeyCache),
}

/// Verifies bearer tokens for the API.
pub struct Verifier {
    pub keys: Keys,
    pub expect: Expect,
}

impl Verifier {
    pub async fn verify(&self, token: &str) -> Result<HashMap<String, Value>, TokenError> {
        match &self.keys {
            Keys::SignIn(oidc) => {
                let keys = oidc.keys().await?;
                tokens::verify(keys, |seen| oidc.refetch_keys(seen), token, &self.expect).await
            }
            Keys::Own(cache) => {
                let keys = cache.keys().await?;
                let refetch = |seen| cache.refetch(Some(seen));
                tokens::verify(keys, refetch, token, &self.expect).await
            }
        }
    }
}

/// The clients' rate limits, shared by every instance through `[cluster]` (per instance
/// without Redis; see the README).
pub struct Limits {
    pub shared: Shared,
}

/// What a client has left, for the `RateLimit` headers.
pub struct Budget {
    pub per_minute: u32,
    pub remaining: u32,
    pub reset_seconds: u64,
}

fn ceil_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Limits {
    /// Takes one request from the client's budget, or says how long to wait.
    pub async fn check(&self, client: &ApiClient) -> Result<Budget, (Budget, u64)> {
        let rpm = client.requests_per_minute.max(1);
        let quota = Quota::per_minute(rpm).with_burst(client.burst.max(1));
        match self.shared.check("api.client", &client.id, quota).await {
            Ok(allowed) => Ok(Budget {
                per_minute: rpm,
                remaining: allowed.remaining,
                reset_seconds: ceil_seconds(quota.full_again(allowed.remaining)),
            }),
            Err(limited) => {
                crate::metrics::rate_limited("client");
                let wait = ceil_seconds(limited.retry_after);
                let budget = Budget {
                    per_minute: rpm,
                    remaining: 0,
                    reset_seconds: wait,
                };
                Err((budget, wait.max(1)))
            }
        }
    }
}

fn rate_headers(headers: &mut axum::http::HeaderMap, budget: &Budget) {
    let policy = format!("\"per-client\";q={};w=60", budget.per_minute);
    let now = format!(
        "\"per-client\";r={};t={}",
        budget.remaining, budget.reset_seconds
    );
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", now)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiProblem> {
    let value = parts.headers.get(header::AUTHORIZATION);
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return Err(ApiProblem::unauthenticated(
            "missing_token",
            "Send an access token: Authorization: Bearer <token>.",
        ));
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiProblem::unauthenticated(
            "invalid_token",
            "The Authorization header must be: Bearer <token>.",
        )),
    }
}

fn claim_set(value: Option<&Value>) -> Option<BTreeSet<String>> {
    match value? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        _ => None,
    }
}

/// The client id and scopes of a verified client_credentials token.
fn client_claims(
    claims: &HashMap<String, Value>,
) -> Result<(String, BTreeSet<String>), ApiProblem> {
    let cid = claims.get("cid").and_then(Value::as_str);
    let scopes = claim_set(claims.get("scp"));
    let (Some(cid), Some(scopes)) = (cid, scopes) else {
        return Err(ApiProblem::unauthenticated(
            "invalid_token",
            "The token has no cid or scp claim.",
        ));
    };
    let sub = claims.get("sub").and_then(Value::as_str);
    if claims.contains_key("uid") || sub != Some(cid) {
        return Err(ApiProblem::unauthenticated(
            "not_a_service_token",
            "This is a person's token; the API accepts only service (client credentials) tokens.",
        ));
    }
    Ok((cid.to_string(), scopes))
}

fn token_problem(e: TokenError) -> ApiProblem {
    match e {
        TokenError::Expired => {
            ApiProblem::unauthenticated("token_expired", "The access token has expired.")
        }
        TokenError::Keys(detail) => {
            tracing::warn!(%detail, "API token keys unavailable");
            ApiProblem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_unavailable",
                "The authorization server's keys could not be loaded; try again.",
            )
        }
        other => ApiProblem::unauthenticated("invalid_token", other.to_string()),
    }
}

impl ApiState {
    async fn authenticate(&self, parts: &Parts) -> Result<(Principal, ApiClient), ApiProblem> {
        let token = bearer(parts)?;
        let claims = self
            .gate
            .verifier
            .verify(token)
            .await
            .map_err(token_problem)?;
        let (cid, scopes) = client_claims(&claims)?;
        let client = match self.gate.config.client(&cid) {
            Some(client) => client.clone(),
            None if self.gate.config.clients.is_empty() => ApiClient::unregistered(&cid),
            None => {
                return Err(ApiProblem::new(
                    StatusCode::FORBIDDEN,
                    "unknown_client",
                    "This client is not registered with the portal.",
                ));
            }
        };
        let meta = request_meta(parts);
        let principal = Principal::service(&cid, &client.name, scopes, &self.policy, meta);
        Ok((principal, client))
    }

    /// A 403 from `Require<P, Service>`, explained for this principal.
    fn forbidden(&self, report: &ErrorReport, principal: &Principal) -> ApiProblem {
        let permission = report
            .permission
            .as_ref()
            .and_then(|(p, _, _)| Permission::parse(p));
        match permission {
            Some(permission) => {
                super::problem::from_decision(&principal.decide(&self.policy, permission))
            }
            None => super::problem::from_report(report),
        }
    }
}

/// The 429 for a client over its rate limit, with `Retry-After` and the rate headers.
fn over_limit(budget: &Budget, wait: u64) -> Response {
    let problem = ApiProblem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "This client has used its {} requests per minute; retry after {wait} s.",
            budget.per_minute
        ),
    );
    let mut response = problem
        .header(header::RETRY_AFTER, wait.to_string())
        .into_response();
    rate_headers(response.headers_mut(), budget);
    response
}

/// The layer on every `/api/v1` route: authenticate, rate-limit, run, add the headers.
pub async fn gate(State(api): State<ApiState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let (principal, client) = match api.authenticate(&parts).await {
        Ok(found) => found,
        Err(problem) => return problem.into_response(),
    };
    let budget = match api.gate.limits.check(&client).await {
        Ok(budget) => budget,
        Err((budget, wait)) => return over_limit(&budget, wait),
    };
    parts.extensions.insert(Service {
        principal: principal.clone(),
    });
    crate::okta::budget::set_requester(&principal.subject);
    let on_behalf = principal.subject.clone();
    let run = next.run(Request::from_parts(parts, body));
    let mut response = crate::okta::client::ON_BEHALF_OF
        .scope(on_behalf, run)
        .await;
    if let Some(report) = response.extensions_mut().remove::<ErrorReport>() {
        let problem = match report.status {
            StatusCode::FORBIDDEN => api.forbidden(&report, &principal),
            _ => super::problem::from_report(&report),
        };
        response.extensions_mut().insert(problem);
    }
    rate_headers(response.headers_mut(), &budget);
    response
}
