//! `/users/{id}`: profile, status in plain words, dates, groups, the actions this agent may
//! run on this user now, and the portal's recent audit records for the user.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Html;

use super::actions::{self, ActionKind};
use crate::audit::AuditRecord;
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::okta::factors::Factor;
use crate::okta::logs::LogEvent;
use crate::okta::models::{Group, User};
use crate::state::AppState;
use crate::web::layout::PageCtx;

#[derive(Template)]
#[template(path = "users/detail.html")]
struct DetailPage {
    ctx: PageCtx,
    user: User,
    groups: Vec<Group>,
    actions: Vec<ActionKind>,
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

pub async fn page(
    State(state): State<AppState>,
    agent: Require<perm::UsersRead>,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    // Independent calls run concurrently.
    // The user first (the path may hold a login); then everything keyed by the user id,
    // concurrently.
    let (user, groups) = actions::load(&state, &id).await?;
    let id = user.id.clone();
    let may_see_factors = agent.can(crate::auth::policy::Permission::FactorsRead);
    let factors_call = async {
        if may_see_factors {
            Some(state.okta.list_factors(&id).await)
        } else {
            None
        }
    };
    let (history, log, factors) = tokio::join!(
        state.audit.by_target(&id, 20),
        state.okta.user_log_events(&id, LOG_DAYS, 20),
        factors_call
    );
    let factors = factors.map(|r| r.map_err(|e| crate::web::users::search::okta_failure(&e)));
    let history = history?;
    // Correlate by Okta request id: a portal action and the Okta event it caused.
    let okta_log = match log {
        Ok(events) => Ok(events
            .into_iter()
            .map(|e| {
                let from_portal = e.request_id().and_then(|rid| {
                    history
                        .iter()
                        .find(|r| r.okta_request_id.as_deref() == Some(rid))
                        .map(|r| format!("{} by {}", r.action, r.actor_label()))
                });
                (e, from_portal)
            })
            .collect::<Vec<_>>()),
        Err(e) => Err(crate::web::users::search::okta_failure(&e)),
    };
    let history = history
        .into_iter()
        .map(|r| {
            let seen = r.okta_request_id.as_deref().is_some_and(|rid| {
                okta_log
                    .as_ref()
                    .is_ok_and(|events| events.iter().any(|(e, _)| e.request_id() == Some(rid)))
            });
            (r, seen)
        })
        .collect();
    let refusal = actions::refusal(&agent, &state, &user, &groups);
    let actions = if refusal.is_some() {
        Vec::new()
    } else {
        ActionKind::ALL
            .into_iter()
            .filter(|k| agent.can(k.permission()) && k.offered_by_okta(&user))
            .collect()
    };
    let extra = user
        .profile
        .other
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) if s.is_empty() => return None,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((humanize(k), text))
        })
        .collect();
    let page = DetailPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        user,
        groups,
        actions,
        refusal,
        history,
        okta_log,
        factors,
        extra,
    };
    Ok(Html(page.render()?))
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
