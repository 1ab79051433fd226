//! `/api/v1/users/{id}/factors`: list, enroll, activate, resend, reset one, reset all.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::{ApiFactor, Body, Outcome, Reason};
use super::idempotency::{self, Stored};
use super::problem::{ApiProblem, Problem};
use super::users::user_ref;
use super::{ApiState, Service};
use crate::auth::extract::Require;
use crate::auth::policy::perm;

type ApiResult = Result<Response, ApiProblem>;

/// List the user's factors.
#[utoipa::path(get, path = "/users/{id}/factors", tag = "factors", params(("id" = String, Path)),
    security(("bearer" = ["admin.factors.read"])),
    responses((status = 200, body = [ApiFactor]), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list(
    State(api): State<ApiState>,
    service: Require<perm::FactorsRead, Service>,
    Path(id): Path<String>,
) -> ApiResult {
    let factors = api
        .ops
        .list_factors(&service.principal, &user_ref(&id)?)
        .await?;
    let factors: Vec<ApiFactor> = factors.iter().map(|f| ApiFactor::new(f, false)).collect();
    Ok(axum::Json(factors).into_response())
}

/// Enroll body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollBody {
    /// One of `mfa.enroll_types`: google_authenticator, okta_verify_totp, sms, call, email.
    #[schema(example = "sms")]
    pub factor_type: String,
    #[serde(default)]
    pub phone_number: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub ticket: String,
}

/// The stored copy of an enrollment never keeps the TOTP secret.
fn without_secret(stored: &Stored) -> Stored {
    let mut kept = stored.clone();
    if let Some(obj) = kept.body.as_object_mut() {
        obj.remove("activation");
    }
    kept
}

/// Start an enrollment (`Idempotency-Key` supported). A TOTP secret is in this response only.
#[utoipa::path(post, path = "/users/{id}/factors", tag = "factors", request_body = EnrollBody,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    security(("bearer" = ["admin.factors.manage"])),
    responses((status = 201, body = ApiFactor), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn enroll(
    State(api): State<ApiState>,
    service: Require<perm::FactorsEnroll, Service>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<EnrollBody>,
) -> ApiResult {
    let principal = &service.principal;
    let why = api.why(&body.reason, &body.ticket)?;
    let user = user_ref(&id)?;
    let (phone, email) = (body.phone_number.trim(), body.email.trim());
    let request = api.ops.enroll_request(&body.factor_type, phone, email);
    let request = request.map_err(crate::ops::OpError::Invalid)?;
    let fingerprint = (&id, &body);
    let work = {
        let (ops, principal) = (api.ops.clone(), principal.clone());
        async move {
            let done = ops.enroll_factor(&principal, &user, &request, &why).await?;
            Ok(created(&done.value))
        }
    };
    idempotency::once(
        &api,
        &principal.subject,
        &headers,
        &fingerprint,
        without_secret,
        work,
    )
    .await
}

fn created(factor: &crate::okta::factors::Factor) -> Stored {
    let body = serde_json::to_value(ApiFactor::new(factor, true)).unwrap_or_default();
    Stored {
        status: StatusCode::CREATED,
        location: None,
        body,
    }
}

/// Activate body.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivateBody {
    /// The code the user reads back.
    pub pass_code: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub ticket: String,
}

/// Complete a pending enrollment with the user's code.
#[utoipa::path(post, path = "/users/{id}/factors/{factorId}/activate", tag = "factors", request_body = ActivateBody,
    params(("id" = String, Path), ("factorId" = String, Path)), security(("bearer" = ["admin.factors.manage"])),
    responses((status = 200, body = ApiFactor), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn activate(
    State(api): State<ApiState>,
    service: Require<perm::FactorsEnroll, Service>,
    Path((id, factor)): Path<(String, String)>,
    Body(body): Body<ActivateBody>,
) -> ApiResult {
    let why = api.why(&body.reason, &body.ticket)?;
    let done = api
        .ops
        .activate_factor(
            &service.principal,
            &user_ref(&id)?,
            &factor,
            &body.pass_code,
            &why,
        )
        .await?;
    Ok(axum::Json(ApiFactor::new(&done.value, false)).into_response())
}

/// Send a new code for a pending SMS, call or email enrollment.
#[utoipa::path(post, path = "/users/{id}/factors/{factorId}/resend", tag = "factors", request_body = Reason,
    params(("id" = String, Path), ("factorId" = String, Path)), security(("bearer" = ["admin.factors.manage"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn resend(
    State(api): State<ApiState>,
    service: Require<perm::FactorsEnroll, Service>,
    Path((id, factor)): Path<(String, String)>,
    Body(body): Body<Reason>,
) -> ApiResult {
    let why = body.why(api.ops.why_rules())?;
    let done = api
        .ops
        .resend_factor(&service.principal, &user_ref(&id)?, &factor, &why)
        .await?;
    Ok(axum::Json(Outcome::from(&done)).into_response())
}

/// Reset (remove) one factor.
#[utoipa::path(delete, path = "/users/{id}/factors/{factorId}", tag = "factors", request_body = Reason,
    params(("id" = String, Path), ("factorId" = String, Path)), security(("bearer" = ["admin.factors.manage"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn reset(
    State(api): State<ApiState>,
    service: Require<perm::FactorsReset, Service>,
    Path((id, factor)): Path<(String, String)>,
    Body(body): Body<Reason>,
) -> ApiResult {
    let why = body.why(api.ops.why_rules())?;
    let done = api
        .ops
        .remove_factor(&service.principal, &user_ref(&id)?, &factor, false, &why)
        .await?;
    Ok(axum::Json(Outcome::from(&done)).into_response())
}

/// Reset every factor of the user.
#[utoipa::path(post, path = "/users/{id}/factors/reset", tag = "factors", request_body = Reason,
    params(("id" = String, Path)), security(("bearer" = ["admin.factors.manage"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn reset_all(
    State(api): State<ApiState>,
    service: Require<perm::FactorsReset, Service>,
    Path(id): Path<String>,
    Body(body): Body<Reason>,
) -> ApiResult {
    let why = body.why(api.ops.why_rules())?;
    let done = api
        .ops
        .reset_all_factors(&service.principal, &user_ref(&id)?, &why)
        .await?;
    Ok(axum::Json(Outcome::from(&done)).into_response())
}
