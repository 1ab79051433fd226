//! Extractors that enforce authentication and the policy. Handlers never check
//! permissions with `if`: they ask for `Agent` or `Require<perm::X>`.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use tower_sessions::Session;

use super::oidc::Oidc;
use super::policy::{Permission, PermissionMarker, Policy};
use super::principal::Principal;
use super::session::{self, AGENT_KEY, AgentSession, SessionConfig};
use crate::audit::{Action, Actor, AuditStore, NewEvent, Outcome, RequestMeta};
use crate::error::AppError;

/// Seconds before expiry at which the access token is refreshed.
const REFRESH_MARGIN: i64 = 30;

/// Request id, client address and user agent, for the audit trail and error pages.
impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(request_meta(parts))
    }
}

pub fn request_meta(parts: &Parts) -> RequestMeta {
    RequestMeta {
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string(),
        client_ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string()),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// A signed-in agent: the session, its typed data and the request's `Principal`.
pub struct Agent {
    pub data: AgentSession,
    pub session: Session,
    pub principal: Principal,
}

impl Agent {
    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.principal.can(permission)
    }

    pub fn meta(&self) -> &RequestMeta {
        &self.principal.meta
    }
}

/// What an authenticated front door yields: the browser's `Agent`, the API's service
/// client. `Require<P, A>` checks the permission on it, whichever it is.
pub trait Authenticated: Send + Sync + 'static {
    fn principal(&self) -> &Principal;
}

impl Authenticated for Agent {
    fn principal(&self) -> &Principal {
        &self.principal
    }
}

pub async fn session_of<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Session, AppError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))
}

impl<S> FromRequestParts<S> for Agent
where
    S: Send + Sync,
    Arc<SessionConfig>: FromRef<S>,
    Arc<Policy>: FromRef<S>,
    Arc<Oidc>: FromRef<S>,
    crate::cluster::Shared: FromRef<S>,
{
    type Rejection = AppError;

    #[tracing::instrument(name = "agent", skip_all, fields(request_id))]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let session = session_of(parts, state).await?;
        let meta = request_meta(parts);
        tracing::Span::current().record("request_id", meta.request_id.as_str());
        let return_to = (parts.method == Method::GET)
            .then(|| parts.uri.path_and_query().map(|pq| pq.to_string()))
            .flatten();
        // `require_session` has read it already on routes behind sign-in: read it once.
        let loaded = match parts.extensions.remove::<SignedIn>() {
            Some(SignedIn(agent)) => Some(agent),
            None => session::agent(&session).await?,
        };
        let Some(mut agent) = loaded else {
            return Err(AppError::Unauthenticated { return_to });
        };
        let config = Arc::<SessionConfig>::from_ref(state);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let absolute = config.absolute_timeout_minutes as i64 * 60;
        if now - agent.signed_in_at >= absolute {
            tracing::info!(request_id = %meta.request_id, "session reached its absolute lifetime");
            session.flush().await?;
            return Err(AppError::Unauthenticated { return_to });
        }
        if agent.access_expires_at - REFRESH_MARGIN <= now {
            match Arc::<Oidc>::from_ref(state).refresh(&agent).await {
                Ok(updated) => {
                    session.insert(AGENT_KEY, &updated).await?;
                    agent = updated;
                }
                Err(e) => {
                    tracing::info!(request_id = %meta.request_id, error = %e, "token refresh failed; session ended");
                    session.flush().await?;
                    return Err(AppError::Unauthenticated { return_to });
                }
            }
        }
        let principal = Principal::agent(&agent, &Arc::<Policy>::from_ref(state), meta);
        within_limit(
            &principal,
            &config,
            &crate::cluster::Shared::from_ref(state),
        )
        .await?;
        crate::okta::budget::set_requester(&principal.subject);
        Ok(Agent {
            data: agent,
            session,
            principal,
        })
    }
}

/// Takes one request from the agent's `session.agent_requests_per_minute` (shared by all
/// instances through `[cluster]`), or refuses with 429 and when to try again.
async fn within_limit(
    principal: &Principal,
    config: &SessionConfig,
    shared: &crate::cluster::Shared,
) -> Result<(), AppError> {
    let per_minute = config.agent_requests_per_minute;
    if per_minute == 0 {
        return Ok(());
    }
    let quota = crate::cluster::Quota::per_minute(per_minute).with_burst((per_minute / 4).max(1));
    match shared
        .check("agent.requests", &principal.subject, quota)
        .await
    {
        Ok(_) => Ok(()),
        Err(limited) => {
            crate::metrics::rate_limited("agent");
            let wait = limited.retry_after.as_secs().max(1);
            tracing::warn!(subject = ?principal.subject, wait, "agent over the request limit");
            Err(AppError::rejected(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many requests from your account — try again in {wait} s."),
            ))
        }
    }
}

/// A principal (by default a signed-in agent) who holds permission `P`; anyone else gets a
/// 403 (recorded in the audit trail) or is sent to sign in.
pub struct Require<P, A = Agent>(pub A, PhantomData<P>);

impl<P, A> std::ops::Deref for Require<P, A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.0
    }
}

impl<P, A, S> FromRequestParts<S> for Require<P, A>
where
    P: PermissionMarker,
    A: Authenticated + FromRequestParts<S, Rejection = AppError>,
    S: Send + Sync,
    Arc<Policy>: FromRef<S>,
    AuditStore: FromRef<S>,
{
    type Rejection = AppError;

    #[tracing::instrument(name = "require", skip_all, fields(permission = P::PERMISSION.as_str()))]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let authenticated = A::from_request_parts(parts, state).await?;
        let principal = authenticated.principal();
        if principal.can(P::PERMISSION) {
            return Ok(Require(authenticated, PhantomData));
        }
        let decision = principal.decide(&Arc::<Policy>::from_ref(state), P::PERMISSION);
        let event = NewEvent::new(
            Action::AccessDenied,
            Outcome::Denied,
            principal.actor(),
            principal.meta.clone(),
        )
        .permission(P::PERMISSION.as_str())
        .detail(format!(
            "{} {}: {}",
            parts.method,
            parts.uri.path(),
            decision.explanation()
        ));
        // A denial is refused whether or not it could be recorded; a failed write is logged.
        let _ = AuditStore::from_ref(state).record(event).await;
        Err(AppError::Forbidden(Box::new(decision.into())))
    }
}

/// The browser router's backstop (a `route_layer`): a request to a signed-in route without an
/// agent in its session goes to sign-in before any handler runs, even a handler that forgot to
/// take an [`Agent`]. Handlers still verify the session fully through their extractor.
/// The session's agent as `require_session` read it, for the `Agent` extractor.
#[derive(Clone)]
struct SignedIn(AgentSession);

pub async fn require_session(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, AppError> {
    let (mut parts, body) = request.into_parts();
    let session = session_of(&mut parts, &()).await?;
    let Some(agent) = session::agent(&session).await? else {
        let return_to = (parts.method == Method::GET)
            .then(|| parts.uri.path_and_query().map(|pq| pq.to_string()))
            .flatten();
        return Err(AppError::Unauthenticated { return_to });
    };
    parts.extensions.insert(SignedIn(agent));
    Ok(next
        .run(axum::extract::Request::from_parts(parts, body))
        .await)
}
