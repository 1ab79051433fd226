//! A record's content as written and hashed, the limits on its size, and the daily rollup
//! kept beside it.

use time::OffsetDateTime;

use super::{AuditRecord, NewEvent};

/// The hash that starts every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

/// The content columns of `audit_events`, in the order of [`RowContent::values`].
pub(crate) const INSERT_COLUMNS: &str = "occurred_at, request_id, action, outcome, actor_sub, actor_login, actor_name, \
     client_id, permission, target_id, target_login, target_name, reason, ticket, detail, okta_request_id, \
     okta_error_code, status_before, status_after, client_ip, user_agent, prev_hash, hash";

/// A row as written: every content column as text (or null).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RowContent {
    pub occurred_at: Option<String>,
    pub request_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
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

impl RowContent {
    /// Clipped to the column sizes: what is stored is exactly what is hashed.
    pub(crate) fn from_event(event: &NewEvent, occurred_at: String) -> RowContent {
        let target = event.target.clone().unwrap_or_default();
        let id = |v: &Option<String>| clip(v, MAX_ID);
        let text = |v: &Option<String>| clip(v, MAX_TEXT);
        RowContent {
            occurred_at: Some(occurred_at),
            request_id: Some(clip_to(&event.meta.request_id, MAX_ID).to_string()),
            action: Some(event.action.as_str().to_string()),
            outcome: Some(event.outcome.as_str().to_string()),
            actor_sub: id(&event.actor.sub),
            actor_login: id(&event.actor.login),
            actor_name: text(&event.actor.name),
            client_id: id(&event.actor.client_id),
            permission: id(&event.permission),
            target_id: id(&target.id),
            target_login: id(&target.login),
            target_name: text(&target.name),
            reason: text(&event.reason),
            ticket: id(&event.ticket),
            detail: text(&event.detail),
            okta_request_id: id(&event.okta_request_id),
            okta_error_code: id(&event.okta_error_code),
            status_before: id(&event.status_before),
            status_after: id(&event.status_after),
            client_ip: id(&event.meta.client_ip),
            user_agent: text(&event.meta.user_agent),
        }
    }

    pub(crate) fn from_record(r: &AuditRecord) -> RowContent {
        RowContent {
            occurred_at: Some(r.occurred_at.clone()),
            request_id: Some(r.request_id.clone()),
            action: Some(r.action.clone()),
            outcome: Some(r.outcome.clone()),
            actor_sub: r.actor_sub.clone(),
            actor_login: r.actor_login.clone(),
            actor_name: r.actor_name.clone(),
            client_id: r.client_id.clone(),
            permission: r.permission.clone(),
            target_id: r.target_id.clone(),
            target_login: r.target_login.clone(),
            target_name: r.target_name.clone(),
            reason: r.reason.clone(),
            ticket: r.ticket.clone(),
            detail: r.detail.clone(),
            okta_request_id: r.okta_request_id.clone(),
            okta_error_code: r.okta_error_code.clone(),
            status_before: r.status_before.clone(),
            status_after: r.status_after.clone(),
            client_ip: r.client_ip.clone(),
            user_agent: r.user_agent.clone(),
        }
    }

    /// The columns in [`INSERT_COLUMNS`] order (without the hashes): the order they are
    /// bound and hashed in.
    pub(crate) fn values(&self) -> [&Option<String>; 21] {
        [
            &self.occurred_at,
            &self.request_id,
            &self.action,
            &self.outcome,
            &self.actor_sub,
            &self.actor_login,
            &self.actor_name,
            &self.client_id,
            &self.permission,
            &self.target_id,
            &self.target_login,
            &self.target_name,
            &self.reason,
            &self.ticket,
            &self.detail,
            &self.okta_request_id,
            &self.okta_error_code,
            &self.status_before,
            &self.status_after,
            &self.client_ip,
            &self.user_agent,
        ]
    }

    /// SHA-256 over the previous hash and the content as a JSON array (hex).
    pub(crate) fn hash(&self, prev_hash: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(
            serde_json::to_string(&self.values())
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

/// Rows of the daily rollup: (day, action, outcome, agent sub) → (agent name, agent login,
/// count).
pub(crate) type Rollup = std::collections::BTreeMap<
    (String, String, String, String),
    (Option<String>, Option<String>, i64),
>;

pub(crate) fn add_to_rollup(rollup: &mut Rollup, c: &RowContent) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let day: String = text(&c.occurred_at).chars().take(10).collect();
    let name = c
        .actor_name
        .clone()
        .or_else(|| c.actor_login.clone())
        .or_else(|| c.actor_sub.clone());
    let entry = rollup
        .entry((day, text(&c.action), text(&c.outcome), text(&c.actor_sub)))
        .or_insert((None, None, 0));
    if entry.0.is_none() {
        entry.0 = name;
    }
    if entry.1.is_none() {
        entry.1 = c.actor_login.clone();
    }
    entry.2 += 1;
}

/// Adds to the rollup (either backend; number the placeholders with `Dialect::sql`).
pub(crate) const ROLLUP_UPSERT: &str = "INSERT INTO audit_daily (day, action, outcome, actor_sub, actor_name, actor_login, count) \
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, action, outcome, actor_sub) \
     DO UPDATE SET count = audit_daily.count + excluded.count, \
     actor_name = COALESCE(excluded.actor_name, audit_daily.actor_name), \
     actor_login = COALESCE(excluded.actor_login, audit_daily.actor_login)";

/// Adds a rollup's counts inside the caller's transaction (either backend: `$sql` is
/// `ROLLUP_UPSERT` in the backend's dialect).
macro_rules! write_rollup {
    ($tx:expr, $sql:expr, $rollup:expr) => {
        for ((day, action, outcome, sub), (name, login, count)) in $rollup {
            sqlx::query($sql)
                .bind(day)
                .bind(action)
                .bind(outcome)
                .bind(sub)
                .bind(name)
                .bind(login)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Action, Actor, Outcome, RequestMeta};

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
        b.outcome = Some("failure".into());
        assert_ne!(a.hash(GENESIS), b.hash(GENESIS));
        assert_ne!(a.hash(GENESIS), a.hash(&a.hash(GENESIS)));
        assert_eq!(a.hash(GENESIS).len(), 64);
        // A null and an empty string differ.
        let mut c = a.clone();
        c.actor_sub = Some(String::new());
        assert_ne!(a.hash(GENESIS), c.hash(GENESIS));
    }

    #[test]
    fn the_hash_is_the_one_of_the_positional_content() {
        // Records written before the fields were named must still verify: the hashed JSON
        // is the same array of 21 values.
        let event = NewEvent::new(
            Action::SignIn,
            Outcome::Failure,
            Actor::default(),
            RequestMeta::default(),
        )
        .detail("d");
        let c = RowContent::from_event(&event, "2026-01-01T00:00:00.000Z".into());
        let mut positional: Vec<Option<String>> = vec![None; 21];
        positional[0] = Some("2026-01-01T00:00:00.000Z".into());
        positional[1] = Some(String::new());
        positional[2] = Some("auth.sign_in".into());
        positional[3] = Some("failure".into());
        positional[14] = Some("d".into());
        assert_eq!(
            serde_json::to_string(&c.values()).unwrap(),
            serde_json::to_string(&positional).unwrap()
        );
    }

    #[test]
    fn every_column_is_clipped_to_its_size() {
        let long = "é".repeat(100_000);
        let event = NewEvent::new(
            Action::SignIn,
            Outcome::Failure,
            Actor {
                sub: Some(long.clone()),
                ..Actor::default()
            },
            RequestMeta {
                request_id: long.clone(),
                client_ip: Some(long.clone()),
                user_agent: Some(long.clone()),
            },
        )
        .detail(long.clone())
        .why(Some(long.clone()), Some(long));
        let c = RowContent::from_event(&event, "t".into());
        for v in c.values().into_iter().flatten() {
            assert!(v.len() <= MAX_TEXT, "{}", v.len());
        }
        assert!(c.request_id.as_deref().unwrap().len() <= MAX_ID);
        assert!(c.ticket.as_deref().unwrap().len() <= MAX_ID);
    }
}
