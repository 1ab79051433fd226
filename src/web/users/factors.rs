//! MFA for a user: enroll (TOTP with a server-rendered QR code, SMS, voice call, email),
//! activate with a passcode while the user is on the call, resend, reset one or all.
//!
//! The TOTP shared secret is shown only on the response to the enrollment: it is never
//! stored by the portal (not in the session, not in the audit trail, not in logs).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::actions::{self, target_of};
use crate::audit::{Action, NewEvent, Outcome};
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::{Permission, perm};
use crate::auth::session::{self, FlashKind};
use crate::error::{AppError, okta_status};
use crate::okta::factors::{EnrollRequest, Factor};
use crate::okta::models::User;
use crate::okta::{OktaError, OktaErrorKind};
use crate::state::AppState;
use crate::web::forms::{FormData, Why, WhyErrors};
use crate::web::layout::PageCtx;

/// The factor types offered, by configuration name, with their labels.
pub fn enroll_choices(state: &AppState) -> Vec<(&'static str, &'static str)> {
    [
        ("google_authenticator", "Google Authenticator (code app)"),
        ("okta_verify_totp", "Okta Verify (code)"),
        ("sms", "SMS to a mobile phone"),
        ("call", "Voice call"),
        ("email", "Email"),
    ]
    .into_iter()
    .filter(|(name, _)| state.config.mfa.enroll_types.iter().any(|t| t == name))
    .collect()
}

/// A QR code as SVG path data (rendered by askama, no markup built by hand).
pub struct Qr {
    pub size: usize,
    pub path: String,
}

fn qr_for(text: &str) -> Option<Qr> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let width = code.width();
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Some(Qr {
        size: width + 8,
        path,
    })
}

/// `otpauth://` URI for authenticator apps.
fn otpauth_uri(issuer: &str, login: &str, secret: &str) -> String {
    let enc = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(login),
        enc(issuer)
    )
}

/// `JBSWY3DPEHPK3PXP` → `JBSW Y3DP EHPK 3PXP`.
pub fn group_secret(secret: &str) -> String {
    secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Template)]
#[template(path = "users/factor_new.html")]
struct EnrollPage {
    ctx: PageCtx,
    user: User,
    choices: Vec<(&'static str, &'static str)>,
    kind: String,
    phone: String,
    email: String,
    why: Why,
    why_errors: WhyErrors,
    errors: Vec<(&'static str, String)>,
    refusal: Option<String>,
    failure: Option<(String, String)>,
}

impl EnrollPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, e)| e)
    }
}

#[derive(Template)]
#[template(path = "users/factor_activate.html")]
struct ActivatePage {
    ctx: PageCtx,
    user: User,
    factor: Factor,
    /// Only on the enrollment response.
    qr: Option<Qr>,
    secret_groups: Option<String>,
    why: Why,
    message: Option<(String, String)>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "users/factor_reset.html")]
struct ResetPage {
    ctx: PageCtx,
    user: User,
    /// `None` for "reset all".
    factor: Option<Factor>,
    why: Why,
    why_errors: WhyErrors,
    refusal: Option<String>,
    failure: Option<(String, String)>,
}

/// Loads the user and refuses protected users and the agent's own account.
async fn target(
    state: &AppState,
    agent: &Agent,
    id: &str,
) -> Result<(User, Option<String>), AppError> {
    let (user, groups) = actions::load(state, id).await?;
    let refusal = actions::refusal(agent, state, &user, &groups);
    Ok((user, refusal))
}

fn event(
    agent: &Agent,
    action: Action,
    outcome: Outcome,
    permission: Permission,
    user: &User,
    why: &Why,
) -> NewEvent {
    NewEvent::new(action, outcome, agent.actor(), agent.meta().clone())
        .permission(permission.as_str())
        .target(target_of(user))
        .why(
            Some(why.reason.clone()).filter(|r| !r.is_empty()),
            why.ticket_opt(),
        )
}

/// Appends the audit record of an Okta change that already happened. A failed write must
/// not hide the change: the agent is told on this response, with the request id.
async fn record_done(state: &AppState, agent: &Agent, event: NewEvent) -> Result<(), AppError> {
    if state.audit.record(event).await.is_err() {
        session::push_flash(
            &agent.session,
            FlashKind::Warning,
            format!(
                "The change was made in Okta but could not be written to the audit trail. Tell an administrator (request id {}).",
                agent.meta().request_id
            ),
        )
        .await?;
    }
    Ok(())
}

/// Records a refusal (protected user, own account). A refusal that cannot be recorded
/// fails the request rather than passing unaudited.
async fn record_refusal(
    state: &AppState,
    agent: &Agent,
    action: Action,
    permission: Permission,
    user: &User,
    why: &Why,
    reason: &str,
) -> Result<(), AppError> {
    let denied = event(agent, action, Outcome::Denied, permission, user, why).detail(reason);
    state.audit.record(denied).await?;
    Ok(())
}

/// Records a refusal and returns the 403.
async fn refuse(
    state: &AppState,
    agent: &Agent,
    action: Action,
    user: &User,
    why: &Why,
    reason: String,
) -> AppError {
    match record_refusal(
        state,
        agent,
        action,
        Permission::FactorsEnroll,
        user,
        why,
        &reason,
    )
    .await
    {
        Ok(()) => AppError::Refused(reason),
        Err(e) => e,
    }
}

/// The start of every handler behind the activation form: the user, refused (and audited)
/// when protected or the agent's own, and the reason carried from the enrollment form.
async fn checked_target(
    state: &AppState,
    agent: &Agent,
    id: &str,
    action: Action,
    form: &FormData,
) -> Result<(User, Why), AppError> {
    let (user, refusal) = target(state, agent, id).await?;
    let why = Why::from_form(form);
    if let Some(reason) = refusal {
        return Err(refuse(state, agent, action, &user, &why, reason).await);
    }
    let why_errors = why.validate(state);
    if let Some(problem) = why_errors.reason.or(why_errors.ticket) {
        return Err(AppError::BadRequest(problem));
    }
    Ok((user, why))
}

/// Okta's answer in an agent's words, for passcode problems.
fn passcode_message(e: &OktaError) -> String {
    match e.code.as_deref() {
        Some("E0000068") => {
            "That code is not right. Ask the user to read the current code again.".into()
        }
        Some("E0000082") => {
            "That code was already used. Wait for the next code and try again.".into()
        }
        Some("E0000083") => {
            "That code has expired. Send a new one or wait for the next code.".into()
        }
        Some("E0000047") => {
            "Too many attempts. Wait five minutes, or abandon this enrollment and start again."
                .into()
        }
        Some("E0000109") | Some("E0000133") => {
            "A code was sent less than 30 seconds ago. Wait a moment before sending another.".into()
        }
        _ => e.plain_message(),
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let (user, refusal) = target(&state, &agent, &id).await?;
    let choices = enroll_choices(&state);
    let page = EnrollPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        email: user.profile.email.clone().unwrap_or_default(),
        phone: user.profile.mobile_phone.clone().unwrap_or_default(),
        kind: choices.first().map(|c| c.0.to_string()).unwrap_or_default(),
        user,
        choices,
        why: Why::default(),
        why_errors: WhyErrors::default(),
        errors: Vec::new(),
        refusal,
        failure: None,
    };
    Ok(Html(page.render()?))
}

pub async fn enroll(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, refusal) = target(&state, &agent, &id).await?;
    let why = Why::from_form(&form);
    let why_errors = why.validate(&state);
    let kind = form.get("kind");
    let phone = form.get("phone");
    let email = form.get("email");
    let choices = enroll_choices(&state);
    let mut errors = Vec::new();
    let request = match kind.as_str() {
        _ if !choices.iter().any(|c| c.0 == kind) => {
            errors.push((
                "kind",
                "Choose one of the factor types offered.".to_string(),
            ));
            None
        }
        "google_authenticator" => Some(EnrollRequest::Totp { provider: "GOOGLE" }),
        "okta_verify_totp" => Some(EnrollRequest::Totp { provider: "OKTA" }),
        "sms" | "call" => {
            let digits = phone.chars().filter(|c| c.is_ascii_digit()).count();
            if !phone.starts_with('+')
                || !(8..=15).contains(&digits)
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            {
                errors.push((
                    "phone",
                    "Enter the phone number with its country code, e.g. +1 555 555 1234."
                        .to_string(),
                ));
                None
            } else if kind == "sms" {
                Some(EnrollRequest::Sms {
                    phone: phone.clone(),
                })
            } else {
                Some(EnrollRequest::Call {
                    phone: phone.clone(),
                })
            }
        }
        _ => {
            if !email.contains('@') {
                errors.push(("email", "Enter the user's email address.".to_string()));
                None
            } else {
                Some(EnrollRequest::Email {
                    email: email.clone(),
                })
            }
        }
    };
    let render_form = |status: StatusCode,
                       user: User,
                       why: Why,
                       why_errors: WhyErrors,
                       errors: Vec<(&'static str, String)>,
                       refusal: Option<String>,
                       failure: Option<(String, String)>| {
        let (state, agent, kind, phone, email) =
            (&state, &agent, kind.clone(), phone.clone(), email.clone());
        async move {
            let page = EnrollPage {
                ctx: PageCtx::for_agent(agent, state, "users").await?,
                user,
                choices: enroll_choices(state),
                kind,
                phone,
                email,
                why,
                why_errors,
                errors,
                refusal,
                failure,
            };
            Ok::<Response, AppError>((status, Html(page.render()?)).into_response())
        }
    };
    if let Some(reason) = refusal {
        record_refusal(
            &state,
            &agent,
            Action::FactorEnroll,
            Permission::FactorsEnroll,
            &user,
            &why,
            &reason,
        )
        .await?;
        return render_form(
            StatusCode::FORBIDDEN,
            user,
            why,
            why_errors,
            errors,
            Some(reason),
            None,
        )
        .await;
    }
    let Some(request) = request.filter(|_| !why_errors.any()) else {
        return render_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            user,
            why,
            why_errors,
            errors,
            None,
            None,
        )
        .await;
    };
    match state.okta.enroll_factor(&user.id, &request).await {
        Ok(done) => {
            let factor = done.body;
            record_done(
                &state,
                &agent,
                event(
                    &agent,
                    Action::FactorEnroll,
                    Outcome::Success,
                    Permission::FactorsEnroll,
                    &user,
                    &why,
                )
                .okta(done.request_id.clone(), None)
                .detail(format!("{} enrolled ({})", factor.label(), factor.status)),
            )
            .await?;
            let (qr, secret_groups) = match factor.shared_secret() {
                Some(secret) => (
                    qr_for(&otpauth_uri(
                        &state.config.mfa.totp_issuer,
                        &user.profile.login,
                        secret,
                    )),
                    Some(group_secret(secret)),
                ),
                None => (None, None),
            };
            let notice = factor
                .masked_destination()
                .map(|d| format!("A code was sent to {d}. Ask the user to read it to you."));
            let page = ActivatePage {
                ctx: PageCtx::for_agent(&agent, &state, "users").await?,
                user,
                factor,
                qr,
                secret_groups,
                why,
                message: None,
                notice,
            };
            Ok(Html(page.render()?).into_response())
        }
        Err(e) => {
            state
                .audit
                .record(
                    event(
                        &agent,
                        Action::FactorEnroll,
                        Outcome::Failure,
                        Permission::FactorsEnroll,
                        &user,
                        &why,
                    )
                    .okta(e.request_id.clone(), e.code.clone())
                    .detail(e.summary.clone()),
                )
                .await?;
            let mut field_errors = Vec::new();
            if e.kind == OktaErrorKind::Invalid {
                for cause in &e.causes {
                    let field = if cause.field() == Some("phoneNumber")
                        || cause.summary.contains("phone")
                    {
                        "phone"
                    } else if cause.summary.contains("email") {
                        "email"
                    } else {
                        "kind"
                    };
                    field_errors.push((field, cause.message().to_string()));
                }
            }
            let status = if field_errors.is_empty() {
                okta_status(e.kind)
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let failure = field_errors
                .is_empty()
                .then(|| super::search::okta_failure(&e));
            render_form(
                status,
                user,
                why,
                WhyErrors::default(),
                field_errors,
                None,
                failure,
            )
            .await
        }
    }
}

/// What the re-rendered activation form says.
struct Feedback {
    status: StatusCode,
    /// A problem (message, Okta request id).
    message: Option<(String, String)>,
    notice: Option<String>,
}

/// Re-renders the activation form (never with the secret again).
async fn activation_page(
    state: &AppState,
    agent: &Agent,
    user: User,
    factor: Factor,
    why: Why,
    feedback: Feedback,
) -> Result<Response, AppError> {
    let page = ActivatePage {
        ctx: PageCtx::for_agent(agent, state, "users").await?,
        user,
        factor,
        qr: None,
        secret_groups: None,
        why,
        message: feedback.message,
        notice: feedback.notice,
    };
    Ok((feedback.status, Html(page.render()?)).into_response())
}

pub async fn activate(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path((id, factor_id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, why) = checked_target(&state, &agent, &id, Action::FactorActivate, &form).await?;
    let factor = state.okta.get_factor(&user.id, &factor_id).await?;
    let passcode: String = form
        .get("passcode")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if passcode.len() < 4 || passcode.len() > 10 || !passcode.chars().all(|c| c.is_ascii_digit()) {
        let message = (
            "Enter the code the user reads to you (digits only).".to_string(),
            String::new(),
        );
        return activation_page(
            &state,
            &agent,
            user,
            factor,
            why,
            Feedback {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: Some(message),
                notice: None,
            },
        )
        .await;
    }
    match state
        .okta
        .activate_factor(&user.id, &factor_id, &passcode)
        .await
    {
        Ok(done) => {
            record_done(
                &state,
                &agent,
                event(
                    &agent,
                    Action::FactorActivate,
                    Outcome::Success,
                    Permission::FactorsEnroll,
                    &user,
                    &why,
                )
                .okta(done.request_id.clone(), None)
                .detail(format!("{} activated", done.body.label())),
            )
            .await?;
            session::push_flash(
                &agent.session,
                FlashKind::Success,
                format!(
                    "{} is now active for {}.",
                    done.body.label(),
                    user.display_name()
                ),
            )
            .await?;
            Ok(Redirect::to(&format!("/users/{}#factors", user.id)).into_response())
        }
        Err(e) => {
            state
                .audit
                .record(
                    event(
                        &agent,
                        Action::FactorActivate,
                        Outcome::Failure,
                        Permission::FactorsEnroll,
                        &user,
                        &why,
                    )
                    .okta(e.request_id.clone(), e.code.clone())
                    .detail(format!("{}: {}", factor.label(), e.summary)),
                )
                .await?;
            let status = match e.kind {
                OktaErrorKind::NotAllowed | OktaErrorKind::Invalid => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                other => okta_status(other),
            };
            let message = (
                passcode_message(&e),
                e.request_id.clone().unwrap_or_default(),
            );
            activation_page(
                &state,
                &agent,
                user,
                factor,
                why,
                Feedback {
                    status,
                    message: Some(message),
                    notice: None,
                },
            )
            .await
        }
    }
}

pub async fn resend(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path((id, factor_id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, why) = checked_target(&state, &agent, &id, Action::FactorResend, &form).await?;
    let factor = state.okta.get_factor(&user.id, &factor_id).await?;
    match state.okta.resend_factor(&user.id, &factor).await {
        Ok(done) => {
            record_done(
                &state,
                &agent,
                event(
                    &agent,
                    Action::FactorResend,
                    Outcome::Success,
                    Permission::FactorsEnroll,
                    &user,
                    &why,
                )
                .okta(done.request_id.clone(), None)
                .detail(factor.label()),
            )
            .await?;
            let notice = factor
                .masked_destination()
                .map(|d| format!("A new code was sent to {d}. The previous code no longer works."));
            activation_page(
                &state,
                &agent,
                user,
                factor,
                why,
                Feedback {
                    status: StatusCode::OK,
                    message: None,
                    notice,
                },
            )
            .await
        }
        Err(e) => {
            state
                .audit
                .record(
                    event(
                        &agent,
                        Action::FactorResend,
                        Outcome::Failure,
                        Permission::FactorsEnroll,
                        &user,
                        &why,
                    )
                    .okta(e.request_id.clone(), e.code.clone())
                    .detail(e.summary.clone()),
                )
                .await?;
            let message = (
                passcode_message(&e),
                e.request_id.clone().unwrap_or_default(),
            );
            activation_page(
                &state,
                &agent,
                user,
                factor,
                why,
                Feedback {
                    status: okta_status(e.kind),
                    message: Some(message),
                    notice: None,
                },
            )
            .await
        }
    }
}

pub async fn reset_one_form(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path((id, factor_id)): Path<(String, String)>,
) -> Result<Html<String>, AppError> {
    let (user, refusal) = target(&state, &agent, &id).await?;
    let factor = state.okta.get_factor(&user.id, &factor_id).await?;
    let page = ResetPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        user,
        factor: Some(factor),
        why: Why::default(),
        why_errors: WhyErrors::default(),
        refusal,
        failure: None,
    };
    Ok(Html(page.render()?))
}

pub async fn reset_all_form(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let (user, refusal) = target(&state, &agent, &id).await?;
    let page = ResetPage {
        ctx: PageCtx::for_agent(&agent, &state, "users").await?,
        user,
        factor: None,
        why: Why::default(),
        why_errors: WhyErrors::default(),
        refusal,
        failure: None,
    };
    Ok(Html(page.render()?))
}

async fn reset(
    state: AppState,
    agent: Require<perm::FactorsReset>,
    id: String,
    factor_id: Option<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, refusal) = target(&state, &agent, &id).await?;
    let why = Why::from_form(&form);
    let why_errors = why.validate(&state);
    let factor = match &factor_id {
        Some(fid) => Some(state.okta.get_factor(&user.id, fid).await?),
        None => None,
    };
    let action = if factor.is_some() {
        Action::FactorReset
    } else {
        Action::FactorResetAll
    };
    let render = |status: StatusCode,
                  user: User,
                  factor: Option<Factor>,
                  why: Why,
                  why_errors: WhyErrors,
                  refusal: Option<String>,
                  failure: Option<(String, String)>| {
        let (state, agent) = (&state, &agent);
        async move {
            let page = ResetPage {
                ctx: PageCtx::for_agent(agent, state, "users").await?,
                user,
                factor,
                why,
                why_errors,
                refusal,
                failure,
            };
            Ok::<Response, AppError>((status, Html(page.render()?)).into_response())
        }
    };
    if let Some(reason) = refusal {
        record_refusal(
            &state,
            &agent,
            action,
            Permission::FactorsReset,
            &user,
            &why,
            &reason,
        )
        .await?;
        return render(
            StatusCode::FORBIDDEN,
            user,
            factor,
            why,
            why_errors,
            Some(reason),
            None,
        )
        .await;
    }
    if why_errors.any() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            user,
            factor,
            why,
            why_errors,
            None,
            None,
        )
        .await;
    }
    let result = match &factor {
        Some(f) => state
            .okta
            .delete_factor(&user.id, &f.id)
            .await
            .map(|r| r.request_id),
        None => state
            .okta
            .lifecycle(&user.id, crate::okta::users::Lifecycle::ResetFactors, None)
            .await
            .map(|r| r.request_id),
    };
    let what = factor
        .as_ref()
        .map(|f| f.label())
        .unwrap_or_else(|| "all factors".to_string());
    match result {
        Ok(request_id) => {
            record_done(
                &state,
                &agent,
                event(
                    &agent,
                    action,
                    Outcome::Success,
                    Permission::FactorsReset,
                    &user,
                    &why,
                )
                .okta(request_id, None)
                .detail(format!("reset {what}")),
            )
            .await?;
            session::push_flash(
                &agent.session,
                FlashKind::Success,
                format!("Reset {what} for {}.", user.display_name()),
            )
            .await?;
            Ok(Redirect::to(&format!("/users/{}#factors", user.id)).into_response())
        }
        Err(e) => {
            state
                .audit
                .record(
                    event(
                        &agent,
                        action,
                        Outcome::Failure,
                        Permission::FactorsReset,
                        &user,
                        &why,
                    )
                    .okta(e.request_id.clone(), e.code.clone())
                    .detail(format!("reset {what}: {}", e.summary)),
                )
                .await?;
            let failure = Some(super::search::okta_failure(&e));
            render(
                okta_status(e.kind),
                user,
                factor,
                why,
                WhyErrors::default(),
                None,
                failure,
            )
            .await
        }
    }
}

pub async fn reset_one(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path((id, factor_id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    reset(state, agent, id, Some(factor_id), form).await
}

pub async fn reset_all(
    State(state): State<AppState>,
    agent: Require<perm::FactorsReset>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    reset(state, agent, id, None, form).await
}

/// Abandons a pending enrollment (the secret on the page becomes useless).
pub async fn abandon(
    State(state): State<AppState>,
    agent: Require<perm::FactorsEnroll>,
    Path((id, factor_id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, AppError> {
    let (user, why) = checked_target(&state, &agent, &id, Action::FactorReset, &form).await?;
    let factor = state.okta.get_factor(&user.id, &factor_id).await?;
    if !factor.is_pending() {
        return Err(AppError::BadRequest(
            "Only an enrollment that is not active yet can be abandoned.".into(),
        ));
    }
    let result = state.okta.delete_factor(&user.id, &factor_id).await;
    let (outcome, rid, code) = match &result {
        Ok(r) => (Outcome::Success, r.request_id.clone(), None),
        Err(e) => (Outcome::Failure, e.request_id.clone(), e.code.clone()),
    };
    let abandoned = event(
        &agent,
        Action::FactorReset,
        outcome,
        Permission::FactorsEnroll,
        &user,
        &why,
    )
    .okta(rid, code)
    .detail(format!("abandoned the {} enrollment", factor.label()));
    match result {
        Ok(_) => record_done(&state, &agent, abandoned).await?,
        Err(e) => {
            state.audit.record(abandoned).await?;
            return Err(AppError::Okta(e));
        }
    }
    session::push_flash(
        &agent.session,
        FlashKind::Info,
        format!("The {} enrollment was abandoned.", factor.label()),
    )
    .await?;
    Ok(Redirect::to(&format!("/users/{}#factors", user.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_grouped_and_uris_encoded() {
        assert_eq!(group_secret("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(group_secret("ABCDEF"), "ABCD EF");
        let uri = otpauth_uri("Example Org", "ada@example.com", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Org:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Org&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn the_qr_code_is_svg_path_data_only() {
        let qr = qr_for("otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(qr.size > 20);
        assert!(
            qr.path.starts_with('M')
                && qr
                    .path
                    .chars()
                    .all(|c| c.is_ascii_digit() || "Mhvz -".contains(c))
        );
    }
}
