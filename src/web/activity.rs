//! The activity page for managers: the newest audit records.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::audit::AuditRecord;
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::layout::PageCtx;

const PAGE_SIZE: i64 = 200;

#[derive(Template)]
#[template(path = "activity/index.html")]
struct ActivityPage {
    ctx: PageCtx,
    records: Vec<AuditRecord>,
}

pub async fn index(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::for_agent(&agent, &state, "activity").await?;
    let records = state.audit.recent(PAGE_SIZE).await?;
    Ok(Html(ActivityPage { ctx, records }.render()?))
}

impl AuditRecord {
    /// Badge class for the outcome.
    pub fn outcome_class(&self) -> &'static str {
        match self.outcome.as_str() {
            "success" => "ok",
            "denied" => "warn",
            _ => "bad",
        }
    }
}
