//! The confirm-and-do actions on one user (lifecycle, delete, clear sessions): a GET
//! confirmation page that names the user and the consequence, and a POST that hands the
//! reason and ticket to the operations layer, which guards, calls Okta and audits.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;

use super::outcome::{self, Failed};
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::{PermissionMarker, perm};
use crate::error::AppError;
use crate::okta::models::User;
use crate::ops::lifecycle::UserAction as ActionInput;
use crate::ops::{Done, Op, UserRef, WhyErrors};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::layout::PageCtx;

/// Links an action marker type to its operation and its permission marker, so that every
/// route is guarded by `Require<A::Perm>` at the front door.
pub trait UserAction: Send + Sync + 'static {
    const OP: Op;
    type Perm: PermissionMarker;
}

macro_rules! user_actions {
    ($($marker:ident => $op:ident, $perm:ident;)*) => {
        $(
            pub struct $marker;
            impl UserAction for $marker {
                const OP: Op = Op::$op;
                type Perm = perm::$perm;
            }
        )*
        /// Registers the confirmation and the POST of every action.
        pub fn routes() -> axum::Router<AppState> {
            use axum::routing::get;
            axum::Router::new()
                $(.route(
                    &format!("/users/{{id}}/{}", Op::$op.slug()),
                    get(confirm::<$marker>).post(perform::<$marker>),
                ))*
        }
    };
}

user_actions! {
    ActivateAction => Activate, UsersReactivate;
    ReactivateAction => Reactivate, UsersReactivate;
    DeactivateAction => Deactivate, UsersDeactivate;
    SuspendAction => Suspend, UsersSuspend;
    UnsuspendAction => Unsuspend, UsersUnsuspend;
    UnlockAction => Unlock, UsersUnlock;
    ResetPasswordAction => ResetPassword, UsersResetPassword;
    ExpirePasswordAction => ExpirePassword, UsersExpirePassword;
    ClearSessionsAction => ClearSessions, UsersSessions;
    DeleteAction => Delete, UsersDelete;
}

#[derive(Template)]
#[template(path = "users/confirm.html")]
struct ConfirmPage {
    ctx: PageCtx,
    kind: Op,
    user: User,
    refusal: Option<String>,
    why: WhyForm,
    errors: WhyErrors,
    send_email: bool,
    revoke_tokens: bool,
    failure: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "users/action_done.html")]
struct OneTimeLinkPage {
    ctx: PageCtx,
    kind: Op,
    user: User,
    link_label: &'static str,
    link: String,
}

/// What the agent typed, kept for a re-render.
struct Typed {
    why: WhyForm,
    errors: WhyErrors,
    send_email: bool,
    revoke_tokens: bool,
}

impl Typed {
    fn from_form(form: &FormData) -> Typed {
        Typed {
            why: WhyForm::from_form(form),
            errors: WhyErrors::default(),
            send_email: form.checked("send_email"),
            revoke_tokens: form.checked("revoke_tokens"),
        }
    }
}

async fn render(
    agent: &Agent,
    op: Op,
    user: User,
    typed: Typed,
    failed: Failed,
) -> Result<Response, AppError> {
    let page = ConfirmPage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        kind: op,
        user,
        refusal: failed.refusal,
        why: typed.why,
        errors: typed.errors,
        send_email: typed.send_email,
        revoke_tokens: typed.revoke_tokens,
        failure: failed.failure,
    };
    Ok((failed.status, Html(page.render()?)).into_response())
}

async fn confirm<A: UserAction>(
    State(state): State<AppState>,
    agent: Require<A::Perm>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (user, groups) = state.ops.read_user(&outcome::user_ref(&id)?).await?;
    let refusal = state.ops.preview(&agent.principal, A::OP, &user, &groups);
    let typed = Typed {
        send_email: true,
        ..Typed::from_form(&FormData(Vec::new()))
    };
    let shown = Failed {
        status: StatusCode::OK,
        refusal: refusal.map(|r| r.message()),
        failure: None,
    };
    render(&agent, A::OP, user, typed, shown).await
}

async fn perform<A: UserAction>(
    State(state): State<AppState>,
    agent: Require<A::Perm>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let user = outcome::user_ref(&id)?;
    let mut typed = Typed::from_form(&form);
    let why = match typed.why.check(&state.ops) {
        Ok(why) => why,
        Err(errors) => {
            typed.errors = errors;
            return invalid(&state, &agent, A::OP, &user, typed).await;
        }
    };
    let input = ActionInput {
        user,
        send_email: typed.send_email,
        revoke_tokens: typed.revoke_tokens,
    };
    match state
        .ops
        .user_action(&agent.principal, A::OP, &input, &why)
        .await
    {
        Ok(done) => finished(&agent, A::OP, done).await,
        Err(e) => {
            let (failed, user) = outcome::for_form(e)?;
            render(&agent, A::OP, user, typed, failed).await
        }
    }
}

/// The reason or ticket was not accepted: 422 with the form as typed (nothing was recorded).
async fn invalid(
    state: &AppState,
    agent: &Agent,
    op: Op,
    user: &UserRef,
    typed: Typed,
) -> Result<Response, AppError> {
    let (user, _) = state.ops.read_user(user).await?;
    let failed = Failed::none(StatusCode::UNPROCESSABLE_ENTITY);
    render(agent, op, user, typed, failed).await
}

async fn finished(agent: &Agent, op: Op, done: Done) -> Result<Response, AppError> {
    let Some(user) = done.before else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "a user action without its user"
        )));
    };
    let message = format!("{} was {}.", user.display_name(), op.done());
    if let Some(link) = done.one_time_link {
        // Shown once, on this response only: never stored, never logged.
        outcome::warn_if_unrecorded(agent, done.recorded).await?;
        let page = OneTimeLinkPage {
            ctx: PageCtx::for_agent(agent, "users").await?,
            kind: op,
            link_label: link.label,
            link: link.url.expose_secret().to_string(),
            user,
        };
        return Ok(Html(page.render()?).into_response());
    }
    outcome::flash_done(agent, done.recorded, message).await?;
    let target = match op {
        Op::Delete => "/users".to_string(),
        _ => format!("/users/{}", user.id),
    };
    Ok(Redirect::to(&target).into_response())
}
