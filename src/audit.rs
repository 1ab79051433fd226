//! The audit trail: who did what to whom, when, why, and with what outcome.
//!
//! Append-only: the store only inserts (the schema refuses UPDATE and DELETE).

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::db::Database;

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
}

impl Action {
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// The person (or service) acting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub sub: Option<String>,
    pub login: Option<String>,
    pub name: Option<String>,
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
}

#[derive(Clone, Debug)]
pub struct AuditStore {
    db: Database,
}

const COLUMNS: &str = "occurred_at, request_id, action, outcome, actor_sub, actor_login, actor_name, \
     permission, detail, client_ip, user_agent, target_id, target_login, target_name, reason, ticket, \
     okta_request_id, okta_error_code, status_before, status_after";

const SELECT_SQLITE: &str = "SELECT id, occurred_at, request_id, action, outcome, actor_sub, actor_login, \
     actor_name, client_id, permission, target_id, target_login, target_name, reason, ticket, detail, \
     okta_request_id, okta_error_code, status_before, status_after, client_ip, user_agent FROM audit_events";

const SELECT_POSTGRES: &str = "SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS occurred_at, \
     request_id, action, outcome, actor_sub, actor_login, actor_name, client_id, permission, target_id, \
     target_login, target_name, reason, ticket, detail, okta_request_id, okta_error_code, status_before, \
     status_after, client_ip, user_agent FROM audit_events";

/// Longest text kept for free-form fields (user agent, detail).
const MAX_TEXT: usize = 1000;

fn clip(value: Option<String>) -> Option<String> {
    value.map(|v| {
        if v.len() <= MAX_TEXT {
            v
        } else {
            let mut end = MAX_TEXT;
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v[..end].to_string()
        }
    })
}

impl AuditStore {
    pub fn new(db: Database) -> AuditStore {
        AuditStore { db }
    }

    /// Appends one record. Callers decide what a failure means for their response; the
    /// failure is always logged here.
    pub async fn record(&self, event: NewEvent) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        let result = match &self.db {
            Database::Sqlite(pool) => {
                let occurred = now
                    .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
                    .unwrap_or(now)
                    .format(&Rfc3339)?;
                sqlx::query(&format!(
                    "INSERT INTO audit_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .bind(occurred)
                .bind(&event.meta.request_id)
                .bind(event.action.as_str())
                .bind(event.outcome.as_str())
                .bind(&event.actor.sub)
                .bind(&event.actor.login)
                .bind(&event.actor.name)
                .bind(&event.permission)
                .bind(clip(event.detail.clone()))
                .bind(&event.meta.client_ip)
                .bind(clip(event.meta.user_agent.clone()))
                .bind(event.target.as_ref().and_then(|t| t.id.clone()))
                .bind(event.target.as_ref().and_then(|t| t.login.clone()))
                .bind(event.target.as_ref().and_then(|t| t.name.clone()))
                .bind(clip(event.reason.clone()))
                .bind(&event.ticket)
                .bind(&event.okta_request_id)
                .bind(&event.okta_error_code)
                .bind(&event.status_before)
                .bind(&event.status_after)
                .execute(pool)
                .await
                .map(|_| ())
            }
            Database::Postgres(pool) => {
                sqlx::query(&format!(
                    "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
                ))
                .bind(now)
                .bind(&event.meta.request_id)
                .bind(event.action.as_str())
                .bind(event.outcome.as_str())
                .bind(&event.actor.sub)
                .bind(&event.actor.login)
                .bind(&event.actor.name)
                .bind(&event.permission)
                .bind(clip(event.detail.clone()))
                .bind(&event.meta.client_ip)
                .bind(clip(event.meta.user_agent.clone()))
                .bind(event.target.as_ref().and_then(|t| t.id.clone()))
                .bind(event.target.as_ref().and_then(|t| t.login.clone()))
                .bind(event.target.as_ref().and_then(|t| t.name.clone()))
                .bind(clip(event.reason.clone()))
                .bind(&event.ticket)
                .bind(&event.okta_request_id)
                .bind(&event.okta_error_code)
                .bind(&event.status_before)
                .bind(&event.status_after)
                .execute(pool)
                .await
                .map(|_| ())
            }
        };
        if let Err(e) = &result {
            tracing::error!(
                request_id = %event.meta.request_id,
                action = event.action.as_str(),
                error = %e,
                "audit write failed"
            );
        }
        result.map_err(Into::into)
    }

    /// The newest records first.
    pub async fn recent(&self, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as::<_, AuditRecord>(&format!(
                    "{SELECT_SQLITE} ORDER BY id DESC LIMIT ?"
                ))
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as::<_, AuditRecord>(&format!(
                    "{SELECT_POSTGRES} ORDER BY id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows)
    }

    /// The newest records about one target user.
    pub async fn by_target(&self, target_id: &str, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as::<_, AuditRecord>(&format!(
                    "{SELECT_SQLITE} WHERE target_id = ? ORDER BY id DESC LIMIT ?"
                ))
                .bind(target_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as::<_, AuditRecord>(&format!(
                    "{SELECT_POSTGRES} WHERE target_id = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(target_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows)
    }

    /// Records written while serving one request, oldest first.
    pub async fn by_request(&self, request_id: &str) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as::<_, AuditRecord>(&format!(
                    "{SELECT_SQLITE} WHERE request_id = ? ORDER BY id"
                ))
                .bind(request_id)
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as::<_, AuditRecord>(&format!(
                    "{SELECT_POSTGRES} WHERE request_id = $1 ORDER BY id"
                ))
                .bind(request_id)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows)
    }
}
