//! `/users/{id}`: profile, status in plain words, dates, groups, the actions this agent may
//! run on this user now, and the portal's recent audit records for the user.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Html;

use super::outcome;
use super::search::okta_failure;
use crate::audit::AuditRecord;
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::okta::factors::Factor;
use crate::okta::logs::LogEvent;
use crate::okta::models::{Group, User};
use crate::ops::{Op, guard};
use crate::state::AppState;
use crate::web::layout::PageCtx;

#[derive(Template)]
#[template(path = "users/detail.html")]
struct DetailPage {
    ctx: PageCtx,
    user: User,
    groups: Vec<Group>,
    actions: Vec<Op>,
    refusal: Option<String>,
    history: Vec<(AuditRecord, bool)>,
    okta_log: OktaLog,
    /// `None` when the agent may not see factors.
    factors: Option<Result<Vec<Factor>, (String, String)>>,
    extra: Vec<(String, String)>,
}

/// Okta's events for the user, each with the portal action that caused it (if any), or
/// the failure to read them (message, Okta request id).
type OktaLog = Result<Vec<(LogEvent, Option<String>)>, (String, String)>;

/// Days of Okta's System Log shown on the user page.
const LOG_DAYS: i64 = 30;

/// `costCenter` → `Cost center`.
pub fn humanize(key: &str) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else if c == '_' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// `2024-01-10T09:00:00.000Z` → `2024-01-10 09:00 UTC`; missing → "never".
pub fn when(value: &Option<String>) -> String {
    match value.as_deref() {
        None | Some("") => "never".to_string(),
        Some(v) => {
            match time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
                Ok(t) => t
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute] UTC"
                    ))
                    .unwrap_or_else(|_| v.to_string()),
                Err(_) => v.to_string(),
            }
        }
    }
}

/// Whether `id` has the shape of an Okta user id (so everything keyed by it can be fetched
/// together with the user, instead of after it).
fn is_okta_id(id: &str) -> bool {
    id.len() == 20 && id.starts_with("00u") && id.chars().all(|c| c.is_ascii_alphanumeric())
}

pub async fn page(
    State(state): State<AppState>,
    agent: Require<perm::UsersRead>,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let reference = outcome::user_ref(&id)?;
    let may_see_factors = agent.can(crate::auth::policy::Permission::FactorsRead);
    // With an Okta id in the URL, one round trip; with a login, the user first.
    let (loaded, related) = if is_okta_id(&id) {
        tokio::join!(
            state.ops.read_user(&reference),
            related(&state, &id, may_see_factors)
        )
    } else {
        let loaded = state.ops.read_user(&reference).await;
        let user_id = loaded
            .as_ref()
            .map(|(u, _)| u.id.clone())
            .unwrap_or_default();
        (loaded, related(&state, &user_id, may_see_factors).await)
    };
    let (user, groups) = loaded?;
    let (history, log, factors) = related;
    let factors = factors.map(|r| r.map_err(|e| okta_failure(&e)));
    let (history, okta_log) = correlate(history?, log);
    let refusal = state.ops.target_refusal(&agent.principal, &user, &groups);
    let actions = available_actions(&agent, &user, refusal.is_some());
    let page = DetailPage {
        ctx: PageCtx::for_agent(&agent, "users").await?,
        extra: extra_attributes(&user),
        user,
        groups,
        actions,
        refusal: refusal.map(|r| r.message()),
        history,
        okta_log,
        factors,
    };
    Ok(Html(page.render()?))
}

type Related = (
    anyhow::Result<Vec<AuditRecord>>,
    Result<Vec<LogEvent>, crate::okta::OktaError>,
    Option<Result<Vec<Factor>, crate::okta::OktaError>>,
);

/// Everything keyed by the user id, concurrently.
async fn related(state: &AppState, id: &str, factors: bool) -> Related {
    let factors_call = async {
        if factors {
            Some(state.okta.list_factors(id).await)
        } else {
            None
        }
    };
    tokio::join!(
        state.audit.by_target(id, 20),
        state.okta.user_log_events(id, LOG_DAYS, 20),
        factors_call
    )
}

/// Pairs portal actions and the Okta events they caused, by Okta request id.
fn correlate(
    history: Vec<AuditRecord>,
    log: Result<Vec<LogEvent>, crate::okta::OktaError>,
) -> (Vec<(AuditRecord, bool)>, OktaLog) {
    let caused_by = |e: &LogEvent| {
        let rid = e.request_id()?;
        let record = history
            .iter()
            .find(|r| r.okta_request_id.as_deref() == Some(rid))?;
        Some(format!("{} by {}", record.action, record.actor_label()))
    };
    let okta_log: OktaLog = match log {
        Ok(events) => Ok(events
            .into_iter()
            .map(|e| {
                let from_portal = caused_by(&e);
                (e, from_portal)
            })
            .collect()),
        Err(e) => Err(okta_failure(&e)),
    };
    let seen = |r: &AuditRecord| {
        let rid = r.okta_request_id.as_deref();
        let events = okta_log.as_ref().map(|v| v.as_slice()).unwrap_or_default();
        rid.is_some_and(|rid| events.iter().any(|(e, _)| e.request_id() == Some(rid)))
    };
    let history = history
        .into_iter()
        .map(|r| {
            let s = seen(&r);
            (r, s)
        })
        .collect();
    (history, okta_log)
}

/// The actions this agent may run on this user now (permission and Okta's offer).
fn available_actions(agent: &Agent, user: &User, refused: bool) -> Vec<Op> {
    if refused {
        return Vec::new();
    }
    Op::USER_ACTIONS
        .into_iter()
        .filter(|op| agent.can(op.permission()) && guard::offered(*op, user).is_ok())
        .collect()
}

/// Custom and less common profile attributes, as (label, text).
fn extra_attributes(user: &User) -> Vec<(String, String)> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let attributes = user.profile.other.iter();
    attributes
        .filter_map(|(k, v)| Some((humanize(k), text(v)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_read_as_words() {
        assert_eq!(humanize("costCenter"), "Cost center");
        assert_eq!(humanize("department"), "Department");
        assert_eq!(humanize("employee_number"), "Employee number");
    }

    #[test]
    fn dates_are_short_and_missing_ones_say_never() {
        assert_eq!(
            when(&Some("2024-01-10T09:00:00.000Z".into())),
            "2024-01-10 09:00 UTC"
        );
        assert_eq!(when(&None), "never");
        assert_eq!(when(&Some("garbage".into())), "garbage");
    }
}
