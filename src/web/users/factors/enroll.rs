//! `/users/{id}/factors/new` and its POST: choose a factor type, enroll it, and show the
//! activation form (with the QR code and secret for TOTP, once).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::{Feedback, activation_page, group_secret, otpauth_uri, qr_for};
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::okta::OktaErrorKind;
use crate::okta::factors::Factor;
use crate::okta::models::User;
use crate::ops::{FieldErrors, Op, OpError, UserRef, WhyErrors};
use crate::state::AppState;
use crate::web::forms::{FormData, WhyForm};
use crate::web::layout::PageCtx;
use crate::web::users::outcome::{self, Failed};

#[derive(Template)]
#[template(path = "users/factor_new.html")]
struct EnrollPage {
    ctx: PageCtx,
    user: User,
    choices: Vec<(&'static str, &'static str)>,
    kind: String,
    phone: String,
    email: String,
    why: WhyForm,
    why_errors: WhyErrors,
    errors: FieldErrors,
    refusal: Option<String>,
    failure: Option<(String, String)>,
}

impl EnrollPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

/// What was typed on the enrollment form.
struct Typed {
    kind: String,
    phone: String,
    email: String,
    why: WhyForm,
}

/// What a re-rendered enrollment form shows besides what was typed.
struct Problems {
    status: StatusCode,
    errors: FieldErrors,
    why_errors: WhyErrors,
    failed: Failed,
}

async fn render(
    state: &AppState,
    agent: &Agent,
    user: User,
    typed: Typed,
    problems: Problems,
) -> Result<Response, AppError> {
    let page = EnrollPage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        user,
        choices: state.ops.enroll_choices(),
        kind: typed.kind,
        phone: typed.phone,
        email: typed.email,
        why: typed.why,
        why_errors: problems.why_errors,
        errors: problems.errors,
        refusal: problems.failed.refusal,
        failure: problems.failed.failure,
    };
    Ok((problems.status, Html(page.render()?)).into_response())
}

fn no_problems() -> Problems {
    Problems {
        status: StatusCode::OK,
        errors: FieldErrors::new(),
        why_errors: WhyErrors::default(),
        failed: Failed::none(StatusCode::OK),
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (user, groups) = state.ops.read_user(&outcome::user_ref(&id)?).await?;
    let mut problems = no_problems();
    let refusal = state
        .ops
        .preview(&agent.principal, Op::EnrollFactor, &user, &groups);
    problems.failed.refusal = refusal.map(|r| r.message());
    let typed = Typed {
        email: user.profile.email.clone().unwrap_or_default(),
        phone: user.profile.mobile_phone.clone().unwrap_or_default(),
        kind: state
            .ops
            .enroll_choices()
            .first()
            .map(|c| c.0.to_string())
            .unwrap_or_default(),
        why: WhyForm::default(),
    };
    render(&state, &agent, user, typed, problems).await
}

pub async fn enroll(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let user = outcome::user_ref(&id)?;
    let typed = Typed {
        kind: form.get("kind"),
        phone: form.get("phone"),
        email: form.get("email"),
        why: WhyForm::from_form(&form),
    };
    let request = state
        .ops
        .enroll_request(&typed.kind, &typed.phone, &typed.email);
    let (request, why) = match (request, typed.why.check(&state.ops)) {
        (Ok(request), Ok(why)) => (request, why),
        (request, why) => {
            return invalid(&state, &agent, &user, typed, request.err(), why.err()).await;
        }
    };
    match state
        .ops
        .enroll_factor(&agent.principal, &user, &request, &why)
        .await
    {
        Ok(done) => {
            let user = done
                .before
                .ok_or_else(|| anyhow::anyhow!("enrollment without its user"))?;
            outcome::warn_if_unrecorded(&agent, done.recorded).await?;
            let feedback = enrolled(&state, &user, &done.value);
            activation_page(&agent, (user, done.value), typed.why, feedback).await
        }
        Err(e) => failed(&state, &agent, typed, e).await,
    }
}

/// The field problems: 422 with the form as typed (nothing was recorded).
async fn invalid(
    state: &AppState,
    agent: &Agent,
    user: &UserRef,
    typed: Typed,
    errors: Option<FieldErrors>,
    why_errors: Option<WhyErrors>,
) -> Result<Response, AppError> {
    let (user, _) = state.ops.read_user(user).await?;
    let problems = Problems {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        errors: errors.unwrap_or_default(),
        why_errors: why_errors.unwrap_or_default(),
        ..no_problems()
    };
    render(state, agent, user, typed, problems).await
}

/// The activation form's extras for a fresh enrollment: the secret (TOTP) or where the code went.
fn enrolled(state: &AppState, user: &User, factor: &Factor) -> Feedback {
    let notice = factor
        .masked_destination()
        .map(|d| format!("A code was sent to {d}. Ask the user to read it to you."));
    let secret = factor.shared_secret().map(|secret| {
        let issuer = &state.ops.mfa_config().totp_issuer;
        let qr = qr_for(&otpauth_uri(issuer, &user.profile.login, secret));
        (qr, group_secret(secret))
    });
    Feedback {
        secret,
        ..Feedback::notice(notice)
    }
}

/// A refusal or an Okta failure, on the enrollment form; Okta's validation causes on fields.
async fn failed(
    state: &AppState,
    agent: &Agent,
    typed: Typed,
    e: OpError,
) -> Result<Response, AppError> {
    let causes = match &e {
        OpError::Okta { error, .. } if error.kind == OktaErrorKind::Invalid => field_errors(error),
        _ => FieldErrors::new(),
    };
    let (mut failed, user) = outcome::for_form(e)?;
    let mut status = failed.status;
    if !causes.is_empty() {
        failed.failure = None;
        status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    let problems = Problems {
        status,
        errors: causes,
        why_errors: WhyErrors::default(),
        failed,
    };
    render(state, agent, user, typed, problems).await
}

/// Okta's causes → the enrollment form's fields.
fn field_errors(error: &crate::okta::OktaError) -> FieldErrors {
    let mut fields = FieldErrors::new();
    for cause in &error.causes {
        let field = if cause.field() == Some("phoneNumber") || cause.summary.contains("phone") {
            "phone"
        } else if cause.summary.contains("email") {
            "email"
        } else {
            "kind"
        };
        fields.insert(field, cause.message().to_string());
    }
    fields
}
