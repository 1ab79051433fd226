//! The activation form's POSTs: activate with the code the user reads out, send a new code,
//! abandon the enrollment. The reason and ticket travel from the enrollment form.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Feedback, activation_page, passcode_message};
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::auth::session::{self, FlashKind};
use crate::error::{AppError, okta_status};
use crate::okta::OktaErrorKind;
use crate::ops::{OpError, UserRef, Why};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::users::outcome;

/// The user, the factor id and the reason carried by the activation form.
fn carried(
    state: &AppState,
    (id, factor_id): &(String, String),
    form: &FormData,
) -> Result<(UserRef, String, WhyForm, Why), AppError> {
    let user = outcome::user_ref(id)?;
    crate::ops::input::factor_id(factor_id).map_err(AppError::BadRequest)?;
    let typed = WhyForm::from_form(form);
    let why = typed
        .check(&state.ops)
        .map_err(|e| AppError::BadRequest(e.first().unwrap_or("Give a reason.").to_string()))?;
    Ok((user, factor_id.clone(), typed, why))
}

/// Re-renders the activation form after a problem (never with the secret again).
async fn again(
    state: &AppState,
    agent: &Agent,
    (user, factor_id): (&UserRef, &str),
    typed: WhyForm,
    feedback: Feedback,
) -> Result<Response, AppError> {
    let (user, _) = state.ops.read_user(user).await?;
    let factor = state.okta.get_factor(&user.id, factor_id).await?;
    activation_page(agent, (user, factor), typed, feedback).await
}

/// An Okta failure on the activation form, in an agent's words; everything else as an error page.
fn feedback_of(e: OpError, code_problem: bool) -> Result<Feedback, AppError> {
    match e {
        OpError::Invalid(fields) => Ok(Feedback::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            fields.into_values().next().unwrap_or_default(),
            None,
        )),
        OpError::Okta {
            error,
            user: Some(_),
        } => {
            let status = match error.kind {
                OktaErrorKind::NotAllowed | OktaErrorKind::Invalid if code_problem => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                other => okta_status(other),
            };
            Ok(Feedback::problem(
                status,
                passcode_message(&error),
                error.request_id.clone(),
            ))
        }
        other => Err(outcome::into_app_error(other)),
    }
}

pub async fn activate(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(ids): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, factor_id, typed, why) = carried(&state, &ids, &form)?;
    let passcode = form.get("passcode");
    let result = state
        .ops
        .activate_factor(&agent.principal, &user, &factor_id, &passcode, &why);
    match result.await {
        Ok(done) => {
            let name = done
                .before
                .as_ref()
                .map(|u| u.display_name())
                .unwrap_or_default();
            let message = format!("{} is now active for {name}.", done.value.label());
            outcome::flash_done(&agent, done.recorded, message).await?;
            Ok(Redirect::to(&format!("/users/{}#factors", ids.0)).into_response())
        }
        Err(e) => {
            let feedback = feedback_of(e, true)?;
            again(&state, &agent, (&user, &factor_id), typed, feedback).await
        }
    }
}

pub async fn resend(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(ids): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, factor_id, typed, why) = carried(&state, &ids, &form)?;
    match state
        .ops
        .resend_factor(&agent.principal, &user, &factor_id, &why)
        .await
    {
        Ok(done) => {
            outcome::warn_if_unrecorded(&agent, done.recorded).await?;
            let user = done
                .before
                .ok_or_else(|| anyhow::anyhow!("resend without its user"))?;
            let notice = done
                .value
                .masked_destination()
                .map(|d| format!("A new code was sent to {d}. The previous code no longer works."));
            let feedback = Feedback::notice(notice);
            activation_page(&agent, (user, done.value), typed, feedback).await
        }
        Err(e) => {
            let feedback = feedback_of(e, false)?;
            again(&state, &agent, (&user, &factor_id), typed, feedback).await
        }
    }
}

/// Abandons a pending enrollment (the secret on the page becomes useless).
pub async fn abandon(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(ids): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, factor_id, _, why) = carried(&state, &ids, &form)?;
    let result = state
        .ops
        .remove_factor(&agent.principal, &user, &factor_id, true, &why);
    let done = result.await.map_err(outcome::into_app_error)?;
    outcome::warn_if_unrecorded(&agent, done.recorded).await?;
    let message = format!("The {} enrollment was abandoned.", done.value.label());
    session::push_flash(&agent.session, FlashKind::Info, message).await?;
    Ok(Redirect::to(&format!("/users/{}#factors", ids.0)).into_response())
}
