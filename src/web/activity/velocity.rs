//! Lifting an agent's velocity caps from their timeline (managers with `limits.lift`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::list::{LiftForm, render_timeline};
use super::{ListParams, url_path};
use crate::audit::ActivityFilter;
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::auth::session::{self, FlashKind};
use crate::error::AppError;
use crate::ops::velocity::LiftTarget;
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::users::outcome::{into_app_error, warn_if_unrecorded};

/// The name the trail knows the principal by (a snapshot for the lift's record).
async fn name_of(state: &AppState, sub: &str) -> Result<Option<String>, AppError> {
    let filter = ActivityFilter {
        agent: Some(sub.to_string()),
        ..ActivityFilter::default()
    };
    let page = state.audit.page(&filter, None, 1).await?;
    Ok(page.records.first().map(|r| r.actor_label()))
}

/// `POST /activity/agents/{sub}/lift`: lifts every cap of `sub` until the end of the UTC day.
pub async fn lift(
    State(state): State<AppState>,
    agent: Require<perm::LimitsLift>,
    Path(sub): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let typed = WhyForm::from_form(&form);
    let why = match typed.check(&state.ops) {
        Ok(why) => why,
        Err(errors) => return invalid(&state, &agent, sub, typed, errors).await,
    };
    let target = LiftTarget {
        name: name_of(&state, &sub).await?,
        subject: sub,
    };
    let lifted = state
        .ops
        .lift_velocity(&agent.principal, &target, &why)
        .await
        .map_err(into_app_error)?;
    warn_if_unrecorded(&agent, lifted.recorded).await?;
    let who = target.name.as_deref().unwrap_or(&target.subject);
    let message = format!(
        "The velocity caps of {who} are lifted until {} (the end of the UTC day).",
        lifted.lift.until_label()
    );
    session::push_flash(&agent.session, FlashKind::Success, message).await?;
    let back = format!("/activity/agents/{}", url_path(&target.subject));
    Ok(Redirect::to(&back).into_response())
}

/// The reason was not accepted: 422 with the timeline and the form as typed.
async fn invalid(
    state: &AppState,
    agent: &Agent,
    sub: String,
    why: WhyForm,
    errors: crate::ops::WhyErrors,
) -> Result<Response, AppError> {
    let form = LiftForm { why, errors };
    let shown = (StatusCode::UNPROCESSABLE_ENTITY, form);
    render_timeline(state, agent, sub, ListParams::default(), shown).await
}
