//! RFC 9457 problem documents with a stable `code`, never HTML and never a redirect.
//!
//! Handlers and the gate return an [`ApiProblem`]; its response carries the problem as an
//! extension and [`render`] (the outermost API layer, which sees the request id) writes the
//! `application/problem+json` body.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::policy::Decision;
use crate::error::ErrorReport;
use crate::okta::{OktaError, OktaErrorKind};
use crate::ops::{OpError, Refusal, WhyErrors};

/// A problem document (RFC 9457) as the API sends it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `about:blank`, or a URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable machine-readable code (`invalid_token`, `insufficient_scope`, …).
    pub code: String,
    /// The portal's request id, for support.
    pub request_id: String,
    /// Per-field messages for 422.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
    /// The scope(s) a 403 `insufficient_scope` needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `X-Okta-Request-Id` of a failed Okta call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub okta_request_id: Option<String>,
    /// Okta's `errorCode` of a failed Okta call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub okta_error_code: Option<String>,
}

/// A problem on its way out (boxed: it travels in `Result`s).
#[derive(Debug, Clone)]
pub struct ApiProblem(Box<ProblemData>);

impl std::ops::Deref for ApiProblem {
    type Target = ProblemData;
    fn deref(&self) -> &ProblemData {
        &self.0
    }
}

impl std::ops::DerefMut for ApiProblem {
    fn deref_mut(&mut self) -> &mut ProblemData {
        &mut self.0
    }
}

/// What a problem says, with the headers it needs.
#[derive(Debug, Clone)]
pub struct ProblemData {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: BTreeMap<String, String>,
    pub scope: Option<String>,
    pub okta_request_id: Option<String>,
    pub okta_error_code: Option<String>,
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiProblem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiProblem {
        ApiProblem(Box::new(ProblemData {
            status,
            code,
            title: status.canonical_reason().unwrap_or("Error"),
            detail: detail.into(),
            errors: BTreeMap::new(),
            scope: None,
            okta_request_id: None,
            okta_error_code: None,
            headers: Vec::new(),
        }))
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> ApiProblem {
        self.headers.push((name, value.into()));
        self
    }

    /// 401: no usable bearer token.
    pub fn unauthenticated(code: &'static str, detail: impl Into<String>) -> ApiProblem {
        let challenge = match code {
            "missing_token" => "Bearer realm=\"admin-portal\"".to_string(),
            _ => "Bearer realm=\"admin-portal\", error=\"invalid_token\"".to_string(),
        };
        ApiProblem::new(StatusCode::UNAUTHORIZED, code, detail)
            .header(header::WWW_AUTHENTICATE, challenge)
    }

    /// 403 with the scope the operation needs.
    pub fn insufficient_scope(code: &'static str, scope: &str, detail: String) -> ApiProblem {
        let challenge = format!(
            "Bearer realm=\"admin-portal\", error=\"insufficient_scope\", scope=\"{scope}\""
        );
        let mut p = ApiProblem::new(StatusCode::FORBIDDEN, code, detail)
            .header(header::WWW_AUTHENTICATE, challenge);
        p.scope = Some(scope.to_string());
        p
    }

    pub fn invalid(errors: BTreeMap<String, String>) -> ApiProblem {
        let mut p = ApiProblem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Some fields are not valid; see errors.",
        );
        p.errors = errors;
        p
    }

    pub fn not_found(detail: impl Into<String>) -> ApiProblem {
        ApiProblem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiProblem {
        ApiProblem::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn to_body(&self, request_id: &str) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            request_id: request_id.to_string(),
            errors: self.errors.clone(),
            scope: self.scope.clone(),
            okta_request_id: self.okta_request_id.clone(),
            okta_error_code: self.okta_error_code.clone(),
        }
    }
}

impl IntoResponse for ApiProblem {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

fn fields(errors: crate::ops::FieldErrors) -> BTreeMap<String, String> {
    errors
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

impl From<WhyErrors> for ApiProblem {
    fn from(e: WhyErrors) -> ApiProblem {
        ApiProblem::invalid(fields(e.into_fields()))
    }
}

/// A 403 from the policy: which scope is missing, or that the client is not among the
/// rule's clients.
pub fn from_decision(decision: &Decision) -> ApiProblem {
    let permission = decision.permission;
    if decision.missing_scopes.is_empty() {
        let scopes = decision
            .rule
            .as_ref()
            .map(|r| r.scopes.join(" "))
            .unwrap_or_default();
        let detail = format!(
            "This client may not use {permission}: {}",
            decision.explanation()
        );
        return ApiProblem::insufficient_scope("client_not_permitted", &scopes, detail);
    }
    let missing = decision.missing_scopes.join(" ");
    let detail = format!("The token lacks the scope {missing} (needed for {permission}).");
    ApiProblem::insufficient_scope("insufficient_scope", &missing, detail)
}

impl From<Refusal> for ApiProblem {
    fn from(refusal: Refusal) -> ApiProblem {
        if let Refusal::Permission(decision) = &refusal {
            return from_decision(decision);
        }
        if let Some(wait) = refusal.retry_after_seconds() {
            return ApiProblem::new(
                StatusCode::TOO_MANY_REQUESTS,
                refusal.code(),
                refusal.message(),
            )
            .header(header::RETRY_AFTER, wait.to_string());
        }
        let status = match &refusal {
            Refusal::Stale => StatusCode::PRECONDITION_FAILED,
            r if r.is_conflict() => StatusCode::CONFLICT,
            _ => StatusCode::FORBIDDEN,
        };
        ApiProblem::new(status, refusal.code(), refusal.message())
    }
}

impl From<OktaError> for ApiProblem {
    fn from(e: OktaError) -> ApiProblem {
        let (status, code) = match e.kind {
            OktaErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            OktaErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "okta_validation"),
            OktaErrorKind::NotAllowed => (StatusCode::CONFLICT, "okta_conflict"),
            OktaErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "okta_rate_limited"),
            OktaErrorKind::Busy => (StatusCode::TOO_MANY_REQUESTS, "okta_busy"),
            OktaErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "okta_timeout"),
            OktaErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "okta_unavailable"),
            _ => (StatusCode::BAD_GATEWAY, "okta_failed"),
        };
        let mut p = ApiProblem::new(status, code, e.plain_message());
        if e.kind == OktaErrorKind::Invalid {
            p.errors = fields(crate::ops::users::okta_field_errors(&e));
        }
        if matches!(e.kind, OktaErrorKind::RateLimited | OktaErrorKind::Busy) {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let wait = e.reset_at.map_or(60, |at| (at - now).clamp(1, 3600));
            p = p.header(header::RETRY_AFTER, wait.to_string());
        }
        p.okta_request_id = e.request_id;
        p.okta_error_code = e.code;
        p
    }
}

impl From<OpError> for ApiProblem {
    fn from(e: OpError) -> ApiProblem {
        match e {
            OpError::Invalid(errors) => ApiProblem::invalid(fields(errors)),
            OpError::Refused { refusal, .. } => refusal.into(),
            OpError::Okta { error, .. } => (*error).into(),
            OpError::Unrecorded(error) => {
                tracing::error!(error = ?error, "an API request failed: audit record not written");
                ApiProblem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "The audit trail could not be written, so nothing was done. Try again later.",
                )
            }
        }
    }
}

/// A report of an `AppError` that reached the API (an extractor's rejection), as a problem.
pub fn from_report(report: &ErrorReport) -> ApiProblem {
    let code = match report.status {
        StatusCode::UNAUTHORIZED => {
            return ApiProblem::unauthenticated("missing_token", "Send a bearer token.");
        }
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::CONFLICT => "okta_conflict",
        StatusCode::TOO_MANY_REQUESTS => "okta_rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    let mut p = ApiProblem::new(report.status, code, report.message.clone());
    p.okta_request_id = report.okta_request_id.clone();
    p
}

/// The outermost API layer: writes every problem as `application/problem+json` with the
/// request id (and turns any leftover `AppError` report into one).
pub async fn render(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let mut response = next.run(request).await;
    let problem = match response.extensions_mut().remove::<ApiProblem>() {
        Some(p) => p,
        None => match response.extensions_mut().remove::<ErrorReport>() {
            Some(report) => from_report(&report),
            None => return response,
        },
    };
    if problem.status.is_server_error() {
        tracing::warn!(request_id = %request_id, code = problem.code, status = problem.status.as_u16(), "API request failed");
    }
    let body = serde_json::to_vec(&problem.to_body(&request_id)).unwrap_or_default();
    let (mut parts, _) = response.into_parts();
    parts.status = problem.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    for (name, value) in &problem.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            parts.headers.insert(name.clone(), v);
        }
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Unknown paths under `/api`.
pub async fn not_found() -> ApiProblem {
    ApiProblem::not_found("There is no API endpoint at this address.")
}
