//! The audit trail: who did what to whom, when, why, and with what outcome.
//!
//! Append-only: the store only inserts (the schema refuses UPDATE and DELETE).

use serde::Serialize;
use time::OffsetDateTime;

use crate::db::Database;

pub mod export;
pub mod integrity;
pub mod query;
pub mod seed;
pub mod throttle;

pub use query::{ActivityFilter, ActivityPage};

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
}

impl Action {
    pub const ALL: [Action; 25] = [
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

/// The hash that starts every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A row as written: every content column as text (or null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowContent(pub [Option<String>; 21]);

impl RowContent {
    fn from_event(event: &NewEvent, occurred_at: String) -> RowContent {
        let target = event.target.clone().unwrap_or_default();
        let id = |v: &Option<String>| clip(v, MAX_ID);
        let text = |v: &Option<String>| clip(v, MAX_TEXT);
        RowContent([
            Some(occurred_at),
            Some(clip_to(&event.meta.request_id, MAX_ID).to_string()),
            Some(event.action.as_str().to_string()),
            Some(event.outcome.as_str().to_string()),
            id(&event.actor.sub),
            id(&event.actor.login),
            text(&event.actor.name),
            id(&event.actor.client_id),
            id(&event.permission),
            id(&target.id),
            id(&target.login),
            text(&target.name),
            text(&event.reason),
            id(&event.ticket),
            text(&event.detail),
            id(&event.okta_request_id),
            id(&event.okta_error_code),
            id(&event.status_before),
            id(&event.status_after),
            id(&event.meta.client_ip),
            text(&event.meta.user_agent),
        ])
    }

    pub(crate) fn from_record(r: &AuditRecord) -> RowContent {
        RowContent([
            Some(r.occurred_at.clone()),
            Some(r.request_id.clone()),
            Some(r.action.clone()),
            Some(r.outcome.clone()),
            r.actor_sub.clone(),
            r.actor_login.clone(),
            r.actor_name.clone(),
            r.client_id.clone(),
            r.permission.clone(),
            r.target_id.clone(),
            r.target_login.clone(),
            r.target_name.clone(),
            r.reason.clone(),
            r.ticket.clone(),
            r.detail.clone(),
            r.okta_request_id.clone(),
            r.okta_error_code.clone(),
            r.status_before.clone(),
            r.status_after.clone(),
            r.client_ip.clone(),
            r.user_agent.clone(),
        ])
    }

    /// SHA-256 over the previous hash and the content as a JSON array (hex).
    pub(crate) fn hash(&self, prev_hash: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(
            serde_json::to_string(&self.0)
                .unwrap_or_default()
                .as_bytes(),
        );
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Rows of the daily rollup: (day, action, outcome, agent sub) → (agent name, count).
pub(crate) type Rollup =
    std::collections::BTreeMap<(String, String, String, String), (Option<String>, i64)>;

pub(crate) fn add_to_rollup(rollup: &mut Rollup, c: &RowContent) {
    let text = |i: usize| c.0[i].clone().unwrap_or_default();
    let day: String = text(0).chars().take(10).collect();
    let name = c.0[6]
        .clone()
        .or_else(|| c.0[5].clone())
        .or_else(|| c.0[4].clone());
    let entry = rollup
        .entry((day, text(2), text(3), text(4)))
        .or_insert((None, 0));
    if entry.0.is_none() {
        entry.0 = name;
    }
    entry.1 += 1;
}

pub(crate) const ROLLUP_SQLITE: &str = "INSERT INTO audit_daily (day, action, outcome, actor_sub, actor_name, count) \
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, action, outcome, actor_sub) \
     DO UPDATE SET count = audit_daily.count + excluded.count, \
     actor_name = COALESCE(excluded.actor_name, audit_daily.actor_name)";

pub(crate) const ROLLUP_POSTGRES: &str = "INSERT INTO audit_daily (day, action, outcome, actor_sub, actor_name, count) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (day, action, outcome, actor_sub) \
     DO UPDATE SET count = audit_daily.count + excluded.count, \
     actor_name = COALESCE(excluded.actor_name, audit_daily.actor_name)";

/// Adds a rollup's counts inside the caller's transaction (either backend: `$sql` is
/// `ROLLUP_SQLITE` or `ROLLUP_POSTGRES`).
macro_rules! write_rollup {
    ($tx:expr, $sql:expr, $rollup:expr) => {
        for ((day, action, outcome, sub), (name, count)) in $rollup {
            sqlx::query($sql)
                .bind(day)
                .bind(action)
                .bind(outcome)
                .bind(sub)
                .bind(name)
                .bind(*count)
                .execute(&mut **$tx)
                .await?;
        }
    };
}
pub(crate) use write_rollup;

/// `2026-11-29T09:20:00.123Z`: the one timestamp format of the trail (both databases).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[derive(Clone)]
pub struct AuditStore {
    db: Database,
    throttle: std::sync::Arc<throttle::Throttle>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore").field("db", &self.db).finish()
    }
}

pub(crate) const INSERT_COLUMNS: &str = "occurred_at, request_id, action, outcome, actor_sub, actor_login, actor_name, \
     client_id, permission, target_id, target_login, target_name, reason, ticket, detail, okta_request_id, \
     okta_error_code, status_before, status_after, client_ip, user_agent, prev_hash, hash";

pub(crate) const SELECT_SQLITE: &str = "SELECT id, occurred_at, request_id, action, outcome, actor_sub, actor_login, \
     actor_name, client_id, permission, target_id, target_login, target_name, reason, ticket, detail, \
     okta_request_id, okta_error_code, status_before, status_after, client_ip, user_agent, prev_hash, hash \
     FROM audit_events";

pub(crate) const SELECT_POSTGRES: &str = "SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS occurred_at, \
     request_id, action, outcome, actor_sub, actor_login, actor_name, client_id, permission, target_id, \
     target_login, target_name, reason, ticket, detail, okta_request_id, okta_error_code, status_before, \
     status_after, client_ip, user_agent, prev_hash, hash FROM audit_events";

/// Longest text kept in a free-text column (reason, detail, names, user agent), in bytes.
pub const MAX_TEXT: usize = 1000;
/// Longest text kept in an identifier column (ids, logins, codes, statuses, addresses).
pub const MAX_ID: usize = 256;

/// Cuts `value` to at most `max` bytes, at a character boundary.
pub fn clip_to(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

fn clip(value: &Option<String>, max: usize) -> Option<String> {
    value.as_deref().map(|v| clip_to(v, max).to_string())
}

impl AuditStore {
    pub fn new(db: Database) -> AuditStore {
        Self::with_throttle(db, &throttle::ThrottleConfig::default())
    }

    /// A store whose anonymous failures are limited as `throttle` says.
    pub fn with_throttle(db: Database, throttle: &throttle::ThrottleConfig) -> AuditStore {
        AuditStore {
            db,
            throttle: throttle::Throttle::new(throttle),
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Appends one record to the chain. The chain head is locked for the transaction, so
    /// concurrent writers (and several instances on PostgreSQL) stay in one order. Callers
    /// decide what a failure means for their response; the failure is always logged here.
    /// Returns the new record's id.
    pub async fn record(&self, event: NewEvent) -> anyhow::Result<i64> {
        let now = OffsetDateTime::now_utc();
        let content = RowContent::from_event(&event, format_timestamp(now));
        let result = self.append(&content, now).await;
        if let Err(e) = &result {
            tracing::error!(
                request_id = ?event.meta.request_id,
                action = event.action.as_str(),
                error = %e,
                "audit write failed"
            );
        }
        result
    }

    async fn append(&self, content: &RowContent, now: OffsetDateTime) -> anyhow::Result<i64> {
        let id = match &self.db {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                // A write first takes SQLite's write lock, so the head read below is current.
                sqlx::query("UPDATE audit_chain SET row_count = row_count WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                let (prev, count): (String, i64) =
                    sqlx::query_as("SELECT last_hash, row_count FROM audit_chain WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let hash = content.hash(&prev);
                let placeholders = vec!["?"; 23].join(", ");
                let sql = format!(
                    "INSERT INTO audit_events ({INSERT_COLUMNS}) VALUES ({placeholders}) RETURNING id"
                );
                let mut q = sqlx::query(&sql);
                for value in &content.0 {
                    q = q.bind(value);
                }
                let row = q.bind(&prev).bind(&hash).fetch_one(&mut *tx).await?;
                let id: i64 = sqlx::Row::try_get(&row, 0)?;
                sqlx::query(
                    "UPDATE audit_chain SET last_id = ?, last_hash = ?, row_count = ? WHERE id = 1",
                )
                .bind(id)
                .bind(&hash)
                .bind(count + 1)
                .execute(&mut *tx)
                .await?;
                let mut rollup = Rollup::new();
                add_to_rollup(&mut rollup, content);
                write_rollup!(&mut tx, ROLLUP_SQLITE, &rollup);
                tx.commit().await?;
                id
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let (prev, count): (String, i64) = sqlx::query_as(
                    "SELECT last_hash, row_count FROM audit_chain WHERE id = 1 FOR UPDATE",
                )
                .fetch_one(&mut *tx)
                .await?;
                let hash = content.hash(&prev);
                let placeholders: Vec<String> = (2..=23).map(|n| format!("${n}")).collect();
                let sql = format!(
                    "INSERT INTO audit_events ({INSERT_COLUMNS}) VALUES ($1, {}) RETURNING id",
                    placeholders.join(", ")
                );
                let mut q = sqlx::query(&sql).bind(
                    now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
                        .unwrap_or(now),
                );
                for value in content.0.iter().skip(1) {
                    q = q.bind(value);
                }
                let row = q.bind(&prev).bind(&hash).fetch_one(&mut *tx).await?;
                let id: i64 = sqlx::Row::try_get(&row, 0)?;
                sqlx::query("UPDATE audit_chain SET last_id = $1, last_hash = $2, row_count = $3 WHERE id = 1")
                    .bind(id)
                    .bind(&hash)
                    .bind(count + 1)
                    .execute(&mut *tx)
                    .await?;
                let mut rollup = Rollup::new();
                add_to_rollup(&mut rollup, content);
                write_rollup!(&mut tx, ROLLUP_POSTGRES, &rollup);
                tx.commit().await?;
                id
            }
        };
        Ok(id)
    }

    /// The newest records first.
    pub async fn recent(&self, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        Ok(self
            .page(&ActivityFilter::default(), None, limit)
            .await?
            .records)
    }

    /// The newest records about one target user.
    pub async fn by_target(&self, target_id: &str, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let filter = ActivityFilter {
            target_id: Some(target_id.to_string()),
            ..ActivityFilter::default()
        };
        Ok(self.page(&filter, None, limit).await?.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_always_carry_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(format_timestamp(t), "2027-01-15T08:00:00.000Z");
    }

    #[test]
    fn the_hash_covers_content_and_previous_hash() {
        let event = NewEvent::new(
            Action::SignIn,
            Outcome::Success,
            Actor::default(),
            RequestMeta::default(),
        );
        let a = RowContent::from_event(&event, "2026-01-01T00:00:00.000Z".into());
        let mut b = a.clone();
        b.0[3] = Some("failure".into());
        assert_ne!(a.hash(GENESIS), b.hash(GENESIS));
        assert_ne!(a.hash(GENESIS), a.hash(&a.hash(GENESIS)));
        assert_eq!(a.hash(GENESIS).len(), 64);
        // A null and an empty string differ.
        let mut c = a.clone();
        c.0[4] = Some(String::new());
        assert_ne!(a.hash(GENESIS), c.hash(GENESIS));
    }
}
