//! Lifecycle actions: each a GET confirmation page that names the user and the consequence,
//! and a POST that requires a reason (and accepts a ticket), refuses protected and self
//! targets, calls Okta, and writes one audit record whatever happens.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::audit::{Action, NewEvent, Outcome, Target};
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::{Permission, PermissionMarker, perm};
use crate::auth::session::{self, FlashKind};
use crate::error::{AppError, okta_status};
use crate::okta::models::{Group, User, UserStatus};
use crate::okta::users::Lifecycle;
use crate::okta::{OktaError, OktaErrorKind};
use crate::state::AppState;
use crate::web::forms::{FormData, Why, WhyErrors};
use crate::web::layout::PageCtx;

/// One lifecycle action as the portal offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Activate,
    Reactivate,
    Deactivate,
    Suspend,
    Unsuspend,
    Unlock,
    ResetPassword,
    ExpirePassword,
    Delete,
}

impl ActionKind {
    pub const ALL: [ActionKind; 9] = [
        ActionKind::Activate,
        ActionKind::Reactivate,
        ActionKind::Unlock,
        ActionKind::ResetPassword,
        ActionKind::ExpirePassword,
        ActionKind::Suspend,
        ActionKind::Unsuspend,
        ActionKind::Deactivate,
        ActionKind::Delete,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            ActionKind::Activate => "activate",
            ActionKind::Reactivate => "reactivate",
            ActionKind::Deactivate => "deactivate",
            ActionKind::Suspend => "suspend",
            ActionKind::Unsuspend => "unsuspend",
            ActionKind::Unlock => "unlock",
            ActionKind::ResetPassword => "reset-password",
            ActionKind::ExpirePassword => "expire-password",
            ActionKind::Delete => "delete",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Activate => "Activate",
            ActionKind::Reactivate => "Resend activation",
            ActionKind::Deactivate => "Deactivate",
            ActionKind::Suspend => "Suspend",
            ActionKind::Unsuspend => "Unsuspend",
            ActionKind::Unlock => "Unlock",
            ActionKind::ResetPassword => "Reset password",
            ActionKind::ExpirePassword => "Expire password",
            ActionKind::Delete => "Delete permanently",
        }
    }

    /// Past tense, for the confirmation message.
    pub fn done(self) -> &'static str {
        match self {
            ActionKind::Activate => "activated",
            ActionKind::Reactivate => "sent a new activation",
            ActionKind::Deactivate => "deactivated",
            ActionKind::Suspend => "suspended",
            ActionKind::Unsuspend => "unsuspended",
            ActionKind::Unlock => "unlocked",
            ActionKind::ResetPassword => "put into password reset",
            ActionKind::ExpirePassword => "given an expired password",
            ActionKind::Delete => "deleted permanently",
        }
    }

    /// What happens to the person.
    pub fn consequence(self) -> &'static str {
        match self {
            ActionKind::Activate => {
                "Starts activation: the user receives (or you receive) a one-time activation link, and becomes Active once they set up their account."
            }
            ActionKind::Reactivate => {
                "Issues a new activation link; the previous one stops working."
            }
            ActionKind::Deactivate => {
                "Signs the user out everywhere and removes all app access. They cannot sign in until reactivated."
            }
            ActionKind::Suspend => {
                "Blocks sign-in until unsuspended. Apps and group memberships are kept."
            }
            ActionKind::Unsuspend => "Lets the user sign in again.",
            ActionKind::Unlock => "Lets the user sign in again with their current password.",
            ActionKind::ResetPassword => {
                "The current password stops working. The user must set a new one through a one-time reset link before signing in."
            }
            ActionKind::ExpirePassword => {
                "The user must choose a new password the next time they sign in."
            }
            ActionKind::Delete => "Removes the user from Okta for good. This cannot be undone.",
        }
    }

    pub fn permission(self) -> Permission {
        match self {
            ActionKind::Activate | ActionKind::Reactivate => Permission::UsersReactivate,
            ActionKind::Deactivate => Permission::UsersDeactivate,
            ActionKind::Suspend => Permission::UsersSuspend,
            ActionKind::Unsuspend => Permission::UsersUnsuspend,
            ActionKind::Unlock => Permission::UsersUnlock,
            ActionKind::ResetPassword => Permission::UsersResetPassword,
            ActionKind::ExpirePassword => Permission::UsersExpirePassword,
            ActionKind::Delete => Permission::UsersDelete,
        }
    }

    fn audit_action(self) -> Action {
        match self {
            ActionKind::Activate => Action::UserActivate,
            ActionKind::Reactivate => Action::UserReactivate,
            ActionKind::Deactivate => Action::UserDeactivate,
            ActionKind::Suspend => Action::UserSuspend,
            ActionKind::Unsuspend => Action::UserUnsuspend,
            ActionKind::Unlock => Action::UserUnlock,
            ActionKind::ResetPassword => Action::UserResetPassword,
            ActionKind::ExpirePassword => Action::UserExpirePassword,
            ActionKind::Delete => Action::UserDelete,
        }
    }

    /// Whether Okta offers this for the user: its `_links`, and for delete the rule that
    /// only a DEPROVISIONED user is offered (the first DELETE would only deactivate).
    pub fn offered_by_okta(self, user: &User) -> bool {
        match self {
            ActionKind::Activate => user.has_link("activate"),
            ActionKind::Reactivate => user.has_link("reactivate"),
            ActionKind::Deactivate => user.has_link("deactivate"),
            ActionKind::Suspend => user.has_link("suspend"),
            ActionKind::Unsuspend => user.has_link("unsuspend"),
            ActionKind::Unlock => user.has_link("unlock"),
            ActionKind::ResetPassword => user.has_link("resetPassword"),
            ActionKind::ExpirePassword => user.has_link("expirePassword"),
            ActionKind::Delete => user.status == UserStatus::Deprovisioned,
        }
    }

    /// Whether the agent may choose between emailing the user and seeing a one-time link.
    pub fn offers_email_choice(self) -> bool {
        matches!(
            self,
            ActionKind::Activate | ActionKind::Reactivate | ActionKind::ResetPassword
        )
    }

    pub fn destructive(self) -> bool {
        matches!(
            self,
            ActionKind::Deactivate | ActionKind::Delete | ActionKind::Suspend
        )
    }
}

/// Links an action marker type to its kind and its permission marker, so that every route
/// is guarded by `Require<A::Perm>`.
pub trait UserAction: Send + Sync + 'static {
    const KIND: ActionKind;
    type Perm: PermissionMarker;
}

macro_rules! user_actions {
    ($($marker:ident => $kind:ident, $perm:ident;)*) => {
        $(
            pub struct $marker;
            impl UserAction for $marker {
                const KIND: ActionKind = ActionKind::$kind;
                type Perm = perm::$perm;
            }
        )*
        /// Registers the confirmation and the POST of every action.
        pub fn routes() -> axum::Router<AppState> {
            use axum::routing::get;
            axum::Router::new()
                $(.route(
                    &format!("/users/{{id}}/{}", ActionKind::$kind.slug()),
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
    DeleteAction => Delete, UsersDelete;
}

/// Why an agent may not act on this user at all, if so.
pub fn refusal(agent: &Agent, state: &AppState, user: &User, groups: &[Group]) -> Option<String> {
    let own =
        agent.data.sub == user.id || agent.data.login.eq_ignore_ascii_case(&user.profile.login);
    if own {
        return Some(
            "This is your own account: agents may not change their own account in the portal."
                .into(),
        );
    }
    // Configured protected groups, and every group the portal's policy grants something to:
    // an agent must not be able to take over another agent's or a manager's account.
    let privileged = state.policy.privileged_groups();
    let protected: Vec<&str> = groups
        .iter()
        .map(|g| g.profile.name.as_str())
        .filter(|name| {
            state
                .config
                .users
                .protected_groups
                .iter()
                .any(|p| p == name)
                || privileged.contains(*name)
        })
        .collect();
    if !protected.is_empty() && !agent.can(Permission::UsersProtected) {
        return Some(format!(
            "This user is protected (member of {}). Changing them needs the permission users.protected.",
            protected.join(", ")
        ));
    }
    None
}

pub fn target_of(user: &User) -> Target {
    Target {
        id: Some(user.id.clone()),
        login: Some(user.profile.login.clone()),
        name: Some(user.display_name()),
    }
}

#[derive(Template)]
#[template(path = "users/confirm.html")]
struct ConfirmPage {
    ctx: PageCtx,
    kind: ActionKind,
    user: User,
    refusal: Option<String>,
    why: Why,
    errors: WhyErrors,
    send_email: bool,
    failure: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "users/action_done.html")]
struct OneTimeLinkPage {
    ctx: PageCtx,
    kind: ActionKind,
    user: User,
    link_label: &'static str,
    link: String,
}

/// The user and their groups, fetched concurrently.
pub async fn load(state: &AppState, id: &str) -> Result<(User, Vec<Group>), OktaError> {
    let (user, groups) = tokio::join!(state.okta.get_user(id), state.okta.user_groups(id));
    Ok((user?, groups?))
}

async fn confirm<A: UserAction>(
    State(state): State<AppState>,
    agent: Require<A::Perm>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (user, groups) = load(&state, &id).await?;
    let refusal = refusal(&agent, &state, &user, &groups).or_else(|| not_offered(A::KIND, &user));
    let page = ConfirmPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        kind: A::KIND,
        user,
        refusal,
        why: Why::default(),
        errors: WhyErrors::default(),
        send_email: true,
        failure: None,
    };
    Ok(Html(page.render()?).into_response())
}

fn not_offered(kind: ActionKind, user: &User) -> Option<String> {
    (!kind.offered_by_okta(user)).then(|| match kind {
        ActionKind::Delete => {
            "Only deactivated users can be deleted. Deactivate the user first.".to_string()
        }
        _ => format!(
            "Okta does not offer “{}” for a user who is {}.",
            kind.label(),
            user.status.label().to_lowercase()
        ),
    })
}

async fn perform<A: UserAction>(
    State(state): State<AppState>,
    agent: Require<A::Perm>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let kind = A::KIND;
    let why = Why::from_form(&form);
    let send_email = form.checked("send_email");
    let errors = why.validate(&state);
    let (user, groups) = match load(&state, &id).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let event = NewEvent::new(
                kind.audit_action(),
                Outcome::Failure,
                agent.actor(),
                agent.meta().clone(),
            )
            .permission(kind.permission().as_str())
            .target(Target {
                id: Some(id.clone()),
                ..Target::default()
            })
            .why(
                Some(why.reason.clone()).filter(|r| !r.is_empty()),
                why.ticket_opt(),
            )
            .okta(e.request_id.clone(), e.code.clone())
            .detail(format!("reading the user failed: {}", e.summary));
            state.audit.record(event).await?;
            return Err(AppError::Okta(e));
        }
    };
    let base_event = |outcome: Outcome| {
        NewEvent::new(
            kind.audit_action(),
            outcome,
            agent.actor(),
            agent.meta().clone(),
        )
        .permission(kind.permission().as_str())
        .target(target_of(&user))
        .why(
            Some(why.reason.clone()).filter(|r| !r.is_empty()),
            why.ticket_opt(),
        )
    };
    if let Some(reason) = refusal(&agent, &state, &user, &groups) {
        let event = base_event(Outcome::Denied).detail(reason.clone()).statuses(
            Some(user.status.as_str().into()),
            Some(user.status.as_str().into()),
        );
        state.audit.record(event).await?;
        let page = ConfirmPage {
            ctx: PageCtx::for_agent(&agent, &state, "users").await?,
            kind,
            user,
            refusal: Some(reason),
            why,
            errors,
            send_email,
            failure: None,
        };
        return Ok((axum::http::StatusCode::FORBIDDEN, Html(page.render()?)).into_response());
    }
    if errors.any() {
        let page = ConfirmPage {
            ctx: PageCtx::for_agent(&agent, &state, "users").await?,
            kind,
            user,
            refusal: None,
            why,
            errors,
            send_email,
            failure: None,
        };
        return Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Html(page.render()?),
        )
            .into_response());
    }
    if kind == ActionKind::Delete && user.status != UserStatus::Deprovisioned {
        // The first DELETE would only deactivate; the portal offers delete for
        // deactivated users only, so nothing is sent to Okta.
        let reason =
            "Only deactivated users can be deleted. Deactivate the user first.".to_string();
        let event = base_event(Outcome::Denied).detail(reason.clone()).statuses(
            Some(user.status.as_str().into()),
            Some(user.status.as_str().into()),
        );
        state.audit.record(event).await?;
        return Err(AppError::Okta(OktaError::new(
            OktaErrorKind::NotAllowed,
            reason,
        )));
    }
    let before = user.status;
    let result = call_okta(&state, kind, &user.id, send_email).await;
    match result {
        Ok(done) => {
            let after = if kind == ActionKind::Delete {
                "DELETED".to_string()
            } else {
                match state.okta.get_user(&user.id).await {
                    Ok(u) => u.status.as_str().to_string(),
                    Err(_) => "UNKNOWN".to_string(),
                }
            };
            let event = base_event(Outcome::Success)
                .okta(done.request_id.clone(), None)
                .statuses(Some(before.as_str().into()), Some(after));
            let recorded = state.audit.record(event).await;
            if recorded.is_err() {
                session::push_flash(
                    &agent.session,
                    FlashKind::Warning,
                    format!(
                        "The action succeeded but could not be written to the audit trail. Tell an administrator (request id {}).",
                        agent.meta().request_id
                    ),
                )
                .await?;
            }
            if let Some((label, link)) = done.one_time_link {
                // Shown once, on this response only: never stored, never logged.
                let page = OneTimeLinkPage {
                    ctx: PageCtx::for_agent(&agent, &state, "users").await?,
                    kind,
                    user,
                    link_label: label,
                    link,
                };
                return Ok(Html(page.render()?).into_response());
            }
            session::push_flash(
                &agent.session,
                FlashKind::Success,
                format!("{} was {}.", user.display_name(), kind.done()),
            )
            .await?;
            let target = if kind == ActionKind::Delete {
                "/users".to_string()
            } else {
                format!("/users/{}", user.id)
            };
            Ok(Redirect::to(&target).into_response())
        }
        Err(e) => {
            let event = base_event(Outcome::Failure)
                .okta(e.request_id.clone(), e.code.clone())
                .detail(e.summary.clone())
                .statuses(Some(before.as_str().into()), Some(before.as_str().into()));
            state.audit.record(event).await?;
            let status = okta_status(e.kind);
            let page = ConfirmPage {
                ctx: PageCtx::for_agent(&agent, &state, "users").await?,
                kind,
                user,
                refusal: None,
                why,
                errors,
                send_email,
                failure: Some(crate::web::users::search::okta_failure(&e)),
            };
            Ok((status, Html(page.render()?)).into_response())
        }
    }
}

struct Done {
    request_id: Option<String>,
    one_time_link: Option<(&'static str, String)>,
}

async fn call_okta(
    state: &AppState,
    kind: ActionKind,
    id: &str,
    send_email: bool,
) -> Result<Done, OktaError> {
    let op = match kind {
        ActionKind::Delete => {
            let r = state.okta.delete_user(id).await?;
            return Ok(Done {
                request_id: r.request_id,
                one_time_link: None,
            });
        }
        ActionKind::Activate => Lifecycle::Activate,
        ActionKind::Reactivate => Lifecycle::Reactivate,
        ActionKind::Deactivate => Lifecycle::Deactivate,
        ActionKind::Suspend => Lifecycle::Suspend,
        ActionKind::Unsuspend => Lifecycle::Unsuspend,
        ActionKind::Unlock => Lifecycle::Unlock,
        ActionKind::ResetPassword => Lifecycle::ResetPassword,
        ActionKind::ExpirePassword => Lifecycle::ExpirePassword,
    };
    let send = kind.offers_email_choice().then_some(send_email);
    let r = state.okta.lifecycle(id, op, send).await?;
    let link = match (r.body.activation_url, r.body.reset_password_url) {
        (Some(url), _) => Some(("Activation link", url)),
        (None, Some(url)) => Some(("Password reset link", url)),
        _ => None,
    };
    Ok(Done {
        request_id: r.request_id,
        one_time_link: link,
    })
}
