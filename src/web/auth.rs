//! Sign-in, callback, sign-out. The OIDC protocol work is in `auth::oidc`.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tower_sessions::Session;

use crate::audit::{Action, Actor, NewEvent, Outcome, RequestMeta};
use crate::auth::oidc::constant_time_eq;
use crate::auth::session::{self, AGENT_KEY, CSRF_KEY, PENDING_LOGIN_KEY, PendingLogin};
use crate::auth::{random_urlsafe, safe_return_to};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::layout::PageCtx;

/// A sign-in must come back within this many seconds.
const PENDING_LIFETIME: i64 = 600;
/// Sign-ins started in several tabs at once that are remembered.
const MAX_PENDING: usize = 5;

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let return_to = safe_return_to(query.return_to.as_deref());
    if session::agent(&session).await?.is_some() {
        return Ok(Redirect::to(&return_to).into_response());
    }
    let (url, pending) = state
        .oidc
        .begin(return_to)
        .await
        .map_err(|e| AppError::Upstream(e.to_string()))?;
    let mut pendings: Vec<PendingLogin> = session.get(PENDING_LOGIN_KEY).await?.unwrap_or_default();
    pendings.push(pending);
    if pendings.len() > MAX_PENDING {
        pendings.remove(0);
    }
    session.insert(PENDING_LOGIN_KEY, pendings).await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn sign_in_failed(
    state: &AppState,
    meta: &RequestMeta,
    detail: String,
    shown: &str,
) -> AppError {
    let event = NewEvent::new(
        Action::SignIn,
        Outcome::Failure,
        Actor::default(),
        meta.clone(),
    )
    .detail(detail);
    // Anyone can call the callback: repeats are counted, not written one by one.
    let _ = state.audit.record_anonymous_failure(event).await;
    AppError::SignIn(shown.to_string())
}

pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        // Fixed words on the page: the callback URL is anyone's to craft.
        let shown = match error.as_str() {
            "access_denied" => {
                "The identity provider did not sign you in (access_denied): you may not be assigned to the portal, or the sign-in was cancelled."
            }
            "login_required" | "interaction_required" | "consent_required" => {
                "The identity provider needs you to sign in again."
            }
            "temporarily_unavailable" | "server_error" => {
                "The identity provider could not complete the sign-in right now. Try again in a moment."
            }
            _ => "The identity provider returned an error instead of signing you in.",
        };
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        let detail: String = description.chars().take(300).collect();
        return Err(sign_in_failed(
            &state,
            &meta,
            format!("provider error {code}: {detail}"),
            shown,
        )
        .await);
    }
    let mut pendings: Vec<PendingLogin> = session.get(PENDING_LOGIN_KEY).await?.unwrap_or_default();
    let sent_state = query.state.unwrap_or_default();
    let position = pendings
        .iter()
        .position(|p| !sent_state.is_empty() && constant_time_eq(&p.state, &sent_state));
    let Some(position) = position else {
        return Err(sign_in_failed(
            &state,
            &meta,
            "state mismatch: no sign-in with this state was started in this session".into(),
            "This sign-in response does not belong to a sign-in started in this browser (state mismatch), so it was ignored.",
        )
        .await);
    };
    let pending = pendings.remove(position);
    session.insert(PENDING_LOGIN_KEY, &pendings).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now - pending.started_at > PENDING_LIFETIME {
        return Err(sign_in_failed(
            &state,
            &meta,
            "sign-in took too long".into(),
            "The sign-in took too long and expired.",
        )
        .await);
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(sign_in_failed(
            &state,
            &meta,
            "no code in the callback".into(),
            "The identity provider sent no authorization code.",
        )
        .await);
    };
    let signed_in = match state.oidc.complete(&pending, code).await {
        Ok(s) => s,
        Err(e) => {
            let detail = e.to_string();
            return Err(sign_in_failed(
                &state,
                &meta,
                detail.clone(),
                &format!("Sign-in could not be completed: {detail}."),
            )
            .await);
        }
    };
    let agent = signed_in.agent;
    // A new session id at privilege change (session fixation).
    session.cycle_id().await?;
    session
        .remove::<Vec<PendingLogin>>(PENDING_LOGIN_KEY)
        .await?;
    session.insert(CSRF_KEY, random_urlsafe(32)).await?;
    session.insert(AGENT_KEY, &agent).await?;
    let actor = Actor {
        sub: Some(agent.sub.clone()),
        login: Some(agent.login.clone()),
        name: Some(agent.name.clone()),
        client_id: None,
    };
    let event =
        NewEvent::new(Action::SignIn, Outcome::Success, actor, meta.clone()).detail(format!(
            "groups: {}; scopes: {}",
            agent.groups.iter().cloned().collect::<Vec<_>>().join(", "),
            agent.scopes.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    if let Err(e) = state.audit.record(event).await {
        // Never let an unaudited sign-in through.
        session.flush().await?;
        return Err(AppError::Internal(e.context("recording the sign-in")));
    }
    tracing::info!(request_id = ?meta.request_id, sub = ?agent.sub, "agent signed in");
    Ok(Redirect::to(&pending.return_to).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
) -> Result<Response, AppError> {
    let agent = session::agent(&session).await?;
    session.flush().await?;
    let Some(agent) = agent else {
        return Ok(Redirect::to(&state.config.oidc.post_logout_path).into_response());
    };
    let actor = Actor {
        sub: Some(agent.sub.clone()),
        login: Some(agent.login.clone()),
        name: Some(agent.name.clone()),
        client_id: None,
    };
    let _ = state
        .audit
        .record(NewEvent::new(
            Action::SignOut,
            Outcome::Success,
            actor,
            meta,
        ))
        .await;
    let target = state
        .oidc
        .end_session_url(agent.tokens.id_token.expose_secret())
        .await
        .map(|u| u.to_string())
        .unwrap_or_else(|| state.config.oidc.post_logout_path.clone());
    Ok(Redirect::to(&target).into_response())
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    ctx: PageCtx,
}

pub async fn signed_out(meta: RequestMeta) -> Result<Html<String>, AppError> {
    Ok(Html(
        SignedOutPage {
            ctx: PageCtx::anonymous(&meta.request_id),
        }
        .render()?,
    ))
}
