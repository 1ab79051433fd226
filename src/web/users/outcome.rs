//! Turning the operations layer's outcomes into what an agent sees: flashes, the "done, but not
//! recorded" warning, and errors mapped to pages.

use axum::http::StatusCode;

use crate::auth::extract::Agent;
use crate::auth::session::{self, FlashKind};
use crate::error::{AppError, okta_status};
use crate::ops::{OpError, Recorded, Refusal, UserRef};
use crate::web::users::search::okta_failure;

/// The user named in the path, or a 400 that says what is wrong.
pub fn user_ref(id: &str) -> Result<UserRef, AppError> {
    UserRef::parse(id).map_err(AppError::BadRequest)
}

/// "Done, but not recorded": the warning shown when a change's audit record is missing.
pub async fn warn_if_unrecorded(agent: &Agent, recorded: Recorded) -> Result<(), AppError> {
    if recorded == Recorded::Missing {
        let warning = format!(
            "The change was made in Okta but could not be written to the audit trail. Tell an administrator (request id {}).",
            agent.meta().request_id
        );
        session::push_flash(&agent.session, FlashKind::Warning, warning).await?;
    }
    Ok(())
}

/// Flashes the outcome of a change, with the warning when its audit record is missing.
pub async fn flash_done(
    agent: &Agent,
    recorded: Recorded,
    message: String,
) -> Result<(), AppError> {
    warn_if_unrecorded(agent, recorded).await?;
    session::push_flash(&agent.session, FlashKind::Success, message).await?;
    Ok(())
}

/// What a form page shows when an operation did not happen.
pub struct Failed {
    pub status: StatusCode,
    /// A guard's refusal, in words.
    pub refusal: Option<String>,
    /// Okta's failure: (message, Okta request id).
    pub failure: Option<(String, String)>,
}

impl Failed {
    /// Nothing failed (yet): a page shown with `status`.
    pub fn none(status: StatusCode) -> Failed {
        Failed {
            status,
            refusal: None,
            failure: None,
        }
    }
}

/// The status of a refusal shown on a form page: 409 when it is about the user's state, 429
/// for a velocity cap (it ends by itself).
fn refusal_status(refusal: &Refusal) -> StatusCode {
    if refusal.retry_after_seconds().is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if refusal.is_conflict() {
        StatusCode::CONFLICT
    } else {
        StatusCode::FORBIDDEN
    }
}

/// Splits an operation error into what a form page re-renders (with the user it was about)
/// and what the error pages handle (no user loaded, permission, invalid input, unrecorded).
pub fn for_form(error: OpError) -> Result<(Failed, crate::okta::models::User), AppError> {
    match error {
        OpError::Refused {
            refusal: Refusal::Permission(d),
            ..
        } => Err(AppError::Forbidden(Box::new((*d).into()))),
        OpError::Refused {
            refusal,
            user: Some(user),
        } => Ok((
            Failed {
                status: refusal_status(&refusal),
                refusal: Some(refusal.message()),
                failure: None,
            },
            *user,
        )),
        OpError::Okta {
            error,
            user: Some(user),
        } => Ok((
            Failed {
                status: okta_status(error.kind),
                refusal: None,
                failure: Some(okta_failure(&error)),
            },
            *user,
        )),
        other => Err(into_app_error(other)),
    }
}

/// An operation error as a plain error page.
pub fn into_app_error(error: OpError) -> AppError {
    match error {
        OpError::Invalid(fields) => AppError::BadRequest(
            fields
                .into_values()
                .next()
                .unwrap_or_else(|| "Check the input.".into()),
        ),
        OpError::Refused {
            refusal: Refusal::Permission(d),
            ..
        } => AppError::Forbidden(Box::new((*d).into())),
        OpError::Refused { refusal, .. } => AppError::Refused(refusal.message()),
        OpError::Okta { error, .. } => AppError::Okta(*error),
        OpError::Unrecorded(e) => {
            AppError::Internal(e.context("audit record of a refusal or failure"))
        }
    }
}
