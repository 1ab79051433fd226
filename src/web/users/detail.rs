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
    history: Vec<AuditRecord>,
    extra: Vec<(String, String)>,
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
    let (loaded, history) =
        tokio::join!(actions::load(&state, &id), state.audit.by_target(&id, 20));
    let (user, groups) = loaded?;
    let history = history?;
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
            Some((k.clone(), text))
        })
        .collect();
    let page = DetailPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        user,
        groups,
        actions,
        refusal,
        history,
        extra,
    };
    Ok(Html(page.render()?))
}
