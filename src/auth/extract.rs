//! Extractors that enforce authentication and the policy. Handlers never check
//! permissions with `if`: they ask for `Agent` or `Require<perm::X>`.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use tower_sessions::Session;

use super::policy::{Permission, PermissionMarker};
use super::session::{self, AGENT_KEY, AgentSession};
use crate::audit::{Action, Actor, NewEvent, Outcome, RequestMeta};
use crate::error::AppError;
use crate::state::AppState;

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

/// A signed-in agent with the permissions the policy grants them for this request.
pub struct Agent {
    pub data: AgentSession,
    pub granted: BTreeSet<Permission>,
    pub session: Session,
    pub meta: RequestMeta,
}

impl Agent {
    pub fn actor(&self) -> Actor {
        Actor {
            sub: Some(self.data.sub.clone()),
            login: Some(self.data.login.clone()),
            name: Some(self.data.name.clone()),
            client_id: None,
        }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.granted.contains(&permission)
    }
}

pub async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Session, AppError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = session_of(parts, state).await?;
        let meta = request_meta(parts);
        let return_to = (parts.method == Method::GET)
            .then(|| parts.uri.path_and_query().map(|pq| pq.to_string()))
            .flatten();
        let Some(mut agent) = session::agent(&session).await? else {
            return Err(AppError::Unauthenticated { return_to });
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let absolute = state.config.session.absolute_timeout_minutes as i64 * 60;
        if now - agent.signed_in_at >= absolute {
            tracing::info!(request_id = %meta.request_id, "session reached its absolute lifetime");
            session.flush().await?;
            return Err(AppError::Unauthenticated { return_to });
        }
        if agent.access_expires_at - REFRESH_MARGIN <= now {
            match state.oidc.refresh(&agent).await {
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
        let granted = state.policy.granted(&agent.scopes, &agent.groups);
        Ok(Agent {
            data: agent,
            granted,
            session,
            meta,
        })
    }
}

/// A signed-in agent who holds permission `P`; anyone else gets a 403 (recorded in the
/// audit trail) or is sent to sign in.
pub struct Require<P>(pub Agent, PhantomData<P>);

impl<P> std::ops::Deref for Require<P> {
    type Target = Agent;
    fn deref(&self) -> &Agent {
        &self.0
    }
}

impl<P: PermissionMarker> FromRequestParts<AppState> for Require<P> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let agent = Agent::from_request_parts(parts, state).await?;
        if agent.can(P::PERMISSION) {
            return Ok(Require(agent, PhantomData));
        }
        let decision = state
            .policy
            .decide(P::PERMISSION, &agent.data.scopes, &agent.data.groups);
        let event = NewEvent::new(
            Action::AccessDenied,
            Outcome::Denied,
            agent.actor(),
            agent.meta.clone(),
        )
        .permission(P::PERMISSION.as_str())
        .detail(format!(
            "{} {}: {}",
            parts.method,
            parts.uri.path(),
            decision.explanation()
        ));
        // A denial is refused whether or not it could be recorded; a failed write is logged.
        let _ = state.audit.record(event).await;
        Err(AppError::Forbidden(Box::new(decision)))
    }
}
