//! What the trail records: the event to append, and the record as read back.

use serde::Serialize;

/// What was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    SignIn,
    SignOut,
    AccessDenied,
    UserCreate,
    UserActivate,
    UserReactivate,
    UserDeactivate,
    UserSuspend,
    UserUnsuspend,
    UserUnlock,
    UserResetPassword,
    UserExpirePassword,
    UserDelete,
    AuditExport,
    FactorEnroll,
    FactorActivate,
    FactorResend,
    FactorReset,
    FactorResetAll,
    UserClearSessions,
    UserUpdateProfile,
    UserGroupAdd,
    UserGroupRemove,
    UserRegister,
    UserRecover,
    VelocityLift,
}

impl Action {
    pub const ALL: [Action; 26] = [
        Action::SignIn,
        Action::SignOut,
        Action::AccessDenied,
        Action::UserCreate,
        Action::UserActivate,
        Action::UserReactivate,
        Action::UserDeactivate,
        Action::UserSuspend,
        Action::UserUnsuspend,
        Action::UserUnlock,
        Action::UserResetPassword,
        Action::UserExpirePassword,
        Action::UserDelete,
        Action::AuditExport,
        Action::FactorEnroll,
        Action::FactorActivate,
        Action::FactorResend,
        Action::FactorReset,
        Action::FactorResetAll,
        Action::UserClearSessions,
        Action::UserUpdateProfile,
        Action::UserGroupAdd,
        Action::UserGroupRemove,
        Action::UserRegister,
        Action::UserRecover,
        Action::VelocityLift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "auth.sign_in",
            Action::SignOut => "auth.sign_out",
            Action::AccessDenied => "policy.denied",
            Action::UserCreate => "user.create",
            Action::UserActivate => "user.activate",
            Action::UserReactivate => "user.reactivate",
            Action::UserDeactivate => "user.deactivate",
            Action::UserSuspend => "user.suspend",
            Action::UserUnsuspend => "user.unsuspend",
            Action::UserUnlock => "user.unlock",
            Action::UserResetPassword => "user.reset_password",
            Action::UserExpirePassword => "user.expire_password",
            Action::UserDelete => "user.delete",
            Action::AuditExport => "audit.export",
            Action::FactorEnroll => "factors.enroll",
            Action::FactorActivate => "factors.activate",
            Action::FactorResend => "factors.resend",
            Action::FactorReset => "factors.reset",
            Action::FactorResetAll => "factors.reset_all",
            Action::UserClearSessions => "user.clear_sessions",
            Action::UserUpdateProfile => "user.update_profile",
            Action::UserGroupAdd => "user.group_add",
            Action::UserGroupRemove => "user.group_remove",
            Action::UserRegister => "user.register",
            Action::UserRecover => "user.recover",
            Action::VelocityLift => "velocity.lift",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
    /// The portal stopped while the change was being sent to Okta (see `audit::unfinished`).
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The person (or service) acting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub sub: Option<String>,
    pub login: Option<String>,
    pub name: Option<String>,
    /// The OAuth client the actor came through: a service client's id (`cid`); none for
    /// people signed in to the portal.
    pub client_id: Option<String>,
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub action: Action,
    pub outcome: Outcome,
    pub actor: Actor,
    pub meta: RequestMeta,
    pub permission: Option<String>,
    pub detail: Option<String>,
    pub target: Option<Target>,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub okta_request_id: Option<String>,
    pub okta_error_code: Option<String>,
    pub status_before: Option<String>,
    pub status_after: Option<String>,
}

/// The user acted upon: id and a snapshot of login and name at the time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    pub id: Option<String>,
    pub login: Option<String>,
    pub name: Option<String>,
}

impl NewEvent {
    pub fn new(action: Action, outcome: Outcome, actor: Actor, meta: RequestMeta) -> NewEvent {
        NewEvent {
            action,
            outcome,
            actor,
            meta,
            permission: None,
            detail: None,
            target: None,
            reason: None,
            ticket: None,
            okta_request_id: None,
            okta_error_code: None,
            status_before: None,
            status_after: None,
        }
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn why(mut self, reason: Option<String>, ticket: Option<String>) -> Self {
        self.reason = reason;
        self.ticket = ticket;
        self
    }

    pub fn okta(mut self, request_id: Option<String>, error_code: Option<String>) -> Self {
        self.okta_request_id = request_id;
        self.okta_error_code = error_code;
        self
    }

    pub fn statuses(mut self, before: Option<String>, after: Option<String>) -> Self {
        self.status_before = before;
        self.status_after = after;
        self
    }

    pub fn permission(mut self, permission: impl Into<String>) -> Self {
        self.permission = Some(permission.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A stored record, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub occurred_at: String,
    pub request_id: String,
    pub action: String,
    pub outcome: String,
    pub actor_sub: Option<String>,
    pub actor_login: Option<String>,
    pub actor_name: Option<String>,
    pub client_id: Option<String>,
    pub permission: Option<String>,
    pub target_id: Option<String>,
    pub target_login: Option<String>,
    pub target_name: Option<String>,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub detail: Option<String>,
    pub okta_request_id: Option<String>,
    pub okta_error_code: Option<String>,
    pub status_before: Option<String>,
    pub status_after: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}
