//! Home, "My access", health and readiness.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::auth::extract::Agent;
use crate::auth::policy::Decision;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::layout::PageCtx;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
    granted_count: usize,
}

pub async fn home(agent: Agent) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::for_agent(&agent, "home").await?;
    Ok(Html(
        HomePage {
            ctx,
            granted_count: agent.principal.granted.len(),
        }
        .render()?,
    ))
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    ctx: PageCtx,
    sub: String,
    login: String,
    name: String,
    email: String,
    scopes: Vec<String>,
    groups: Vec<String>,
    token_expires: String,
    session_ends: String,
    table: Vec<Decision>,
}

fn timestamp(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| "unknown".into())
}

pub async fn me(State(state): State<AppState>, agent: Agent) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::for_agent(&agent, "me").await?;
    let d = &agent.data;
    let page = MePage {
        ctx,
        sub: d.sub.clone(),
        login: d.login.clone(),
        name: d.name.clone(),
        email: d.email.clone().unwrap_or_default(),
        scopes: d.scopes.iter().cloned().collect(),
        groups: d.groups.iter().cloned().collect(),
        token_expires: timestamp(d.access_expires_at),
        session_ends: timestamp(
            d.signed_in_at + state.config.session.absolute_timeout_minutes as i64 * 60,
        ),
        table: state.policy.table(&d.scopes, &d.groups),
    };
    Ok(Html(page.render()?))
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and the provider's discovery document is loaded.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (database, provider, cluster) =
        tokio::join!(state.db.ping(), state.oidc.ready(), state.shared.probe());
    // A degraded cluster still serves (with limits per instance), so it stays ready.
    let status = if database && provider {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        axum::Json(json!({
            "database": word(database),
            "provider": word(provider),
            "cluster": cluster.as_str(),
        })),
    )
        .into_response()
}
