//! Reset one factor or all of a user's factors: a confirmation page with reason and ticket.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::auth::principal::Principal;
use crate::error::AppError;
use crate::okta::factors::Factor;
use crate::okta::models::User;
use crate::ops::{Op, OpError, Recorded, UserRef, Why, WhyErrors};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::layout::PageCtx;
use crate::web::users::outcome::{self, Failed};

#[derive(Template)]
#[template(path = "users/factor_reset.html")]
struct ResetPage {
    ctx: PageCtx,
    user: User,
    /// `None` for "reset all".
    factor: Option<Factor>,
    why: WhyForm,
    why_errors: WhyErrors,
    refusal: Option<String>,
    failure: Option<(String, String)>,
}

/// The confirmation page, as first shown or re-rendered.
async fn render(
    agent: &Agent,
    (user, factor): (User, Option<Factor>),
    (why, why_errors): (WhyForm, WhyErrors),
    failed: Failed,
) -> Result<Response, AppError> {
    let page = ResetPage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        user,
        factor,
        why,
        why_errors,
        refusal: failed.refusal,
        failure: failed.failure,
    };
    Ok((failed.status, Html(page.render()?)).into_response())
}

/// The user and the factor (for "reset one"), read for the page.
async fn read(
    state: &AppState,
    user: &UserRef,
    factor_id: Option<&str>,
) -> Result<(User, Vec<crate::okta::models::Group>, Option<Factor>), AppError> {
    let (user, groups) = state.ops.read_user(user).await?;
    let factor = match factor_id {
        Some(fid) => {
            crate::ops::input::factor_id(fid).map_err(AppError::BadRequest)?;
            Some(state.okta.get_factor(&user.id, fid).await?)
        }
        None => None,
    };
    Ok((user, groups, factor))
}

async fn form(
    state: AppState,
    agent: &Agent,
    id: &str,
    factor_id: Option<&str>,
) -> Result<Response, AppError> {
    let (user, groups, factor) = read(&state, &outcome::user_ref(id)?, factor_id).await?;
    let op = if factor.is_some() {
        Op::ResetFactor
    } else {
        Op::ResetAllFactors
    };
    let shown = Failed {
        status: StatusCode::OK,
        refusal: state
            .ops
            .preview(&agent.principal, op, &user, &groups)
            .map(|r| r.message()),
        failure: None,
    };
    render(agent, (user, factor), Default::default(), shown).await
}

pub async fn reset_one_form(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path((id, factor_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    form(state, &agent, &id, Some(&factor_id)).await
}

pub async fn reset_all_form(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    form(state, &agent, &id, None).await
}

async fn reset(
    state: AppState,
    agent: &Agent,
    id: String,
    factor_id: Option<String>,
    data: FormData,
) -> Result<Response, AppError> {
    let user = outcome::user_ref(&id)?;
    let typed = WhyForm::from_form(&data);
    let why = match typed.check(&state.ops) {
        Ok(why) => why,
        Err(errors) => {
            let (user, _, factor) = read(&state, &user, factor_id.as_deref()).await?;
            let failed = Failed::none(StatusCode::UNPROCESSABLE_ENTITY);
            return render(agent, (user, factor), (typed, errors), failed).await;
        }
    };
    let result = call(&state, &agent.principal, &user, factor_id.as_deref(), &why).await;
    match result {
        Ok((name, recorded, what)) => {
            outcome::flash_done(agent, recorded, format!("Reset {what} for {name}.")).await?;
            Ok(Redirect::to(&format!("/users/{id}#factors")).into_response())
        }
        Err(e) => {
            let (failed, user) = outcome::for_form(e)?;
            let factor = match &factor_id {
                Some(fid) => state.okta.get_factor(&user.id, fid).await.ok(),
                None => None,
            };
            render(agent, (user, factor), (typed, WhyErrors::default()), failed).await
        }
    }
}

/// Resets one factor or all: (user name, recorded, what was reset).
async fn call(
    state: &AppState,
    principal: &Principal,
    user: &UserRef,
    factor_id: Option<&str>,
    why: &Why,
) -> Result<(String, Recorded, String), OpError> {
    let ops = &state.ops;
    match factor_id {
        Some(fid) => {
            let done = ops.remove_factor(principal, user, fid, false, why).await?;
            Ok((done.user_name(), done.recorded, done.value.label()))
        }
        None => {
            let done = ops.reset_all_factors(principal, user, why).await?;
            Ok((done.user_name(), done.recorded, "all factors".to_string()))
        }
    }
}

pub async fn reset_one(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path((id, factor_id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    reset(state, &agent, id, Some(factor_id), form).await
}

pub async fn reset_all(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    reset(state, &agent, id, None, form).await
}
