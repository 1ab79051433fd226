//! `/activity/integrity`: the hash chain, verified on demand.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::layout::PageCtx;

#[derive(Template)]
#[template(path = "activity/integrity.html")]
struct IntegrityPage {
    ctx: PageCtx,
    checked: u64,
    pruned: i64,
    broken: Option<(i64, String)>,
}

pub async fn integrity(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
) -> Result<Response, AppError> {
    let v = state.audit.verify().await?;
    let status = if v.intact() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let page = IntegrityPage {
        ctx: PageCtx::for_agent(&agent, "activity").await?,
        checked: v.checked,
        pruned: v.pruned,
        broken: v.broken.map(|b| (b.id, b.reason)),
    };
    Ok((status, Html(page.render()?)).into_response())
}
