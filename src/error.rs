//! One error type for every handler, with one status mapping.
//!
//! `AppError::into_response` only decides the status and the words; the `render_errors`
//! middleware (in `web::errors`) turns that into a full page, an htmx fragment or a JSON
//! problem, with the request id, because only it sees the request.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::okta::{OktaError, OktaErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No session, or it ended. `return_to` is where to come back after signing in.
    #[error("sign-in required")]
    Unauthenticated { return_to: Option<String> },
    /// The policy refuses this permission.
    #[error("permission {} denied", .0.permission)]
    Forbidden(Box<Denial>),
    /// This agent may not act on this user (protected user, own account).
    #[error("refused: {0}")]
    Refused(String),
    /// The request carried no valid CSRF token.
    #[error("CSRF check failed")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// The request itself is wrong (a bad parameter); the message says what to change.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A sign-in could not be completed; shown with a link to try again.
    #[error("sign-in failed: {0}")]
    SignIn(String),
    /// The identity provider or Okta failed.
    #[error("upstream failure: {0}")]
    Upstream(String),
    /// A Management API call failed.
    #[error("Okta call failed: {0}")]
    Okta(#[from] OktaError),
    /// The request could not be read (axum's extractor rejections: path, query, form, JSON,
    /// a body over the limit). `status` is the extractor's (400, 413, 415, 422, …).
    #[error("request rejected ({status}): {message}")]
    Rejected { status: StatusCode, message: String },
    /// The request ran longer than `http.request_timeout_seconds`.
    #[error("request timed out after {0} s")]
    Timeout(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A rejection with the extractor's status and words (clipped; shown escaped).
    pub fn rejected(status: StatusCode, message: &str) -> AppError {
        AppError::Rejected {
            status,
            message: crate::audit::clip_to(message.trim(), 300).to_string(),
        }
    }
}

macro_rules! rejections {
    ($($ty:ty),*) => {
        $(impl From<$ty> for AppError {
            fn from(r: $ty) -> Self {
                AppError::rejected(r.status(), &r.body_text())
            }
        })*
    };
}

rejections!(
    axum::extract::rejection::BytesRejection,
    axum::extract::rejection::FormRejection,
    axum::extract::rejection::JsonRejection,
    axum::extract::rejection::PathRejection,
    axum::extract::rejection::QueryRejection
);

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("session store"))
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("template rendering"))
    }
}

/// A refused permission as error pages and problem documents show it (a view of the
/// policy's decision, so errors do not depend on the policy's types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The permission's name, e.g. `users.delete`.
    pub permission: String,
    /// What it lets one do, in plain words.
    pub label: String,
    /// What the policy requires for it.
    pub requirement: String,
    /// Why this request does not meet it.
    pub explanation: String,
    /// The scopes the token lacks (for `WWW-Authenticate: … scope=`).
    pub missing_scopes: Vec<String>,
}

/// What the error renderer needs; attached to the response as an extension.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    /// For 403: the permission and what it needs.
    pub permission: Option<(String, String, String)>,
    /// Offer a "try again" link to this URL.
    pub retry: Option<String>,
    /// Send the browser here instead (sign-in).
    pub redirect: Option<String>,
    /// Internal detail for the log only, never shown.
    pub internal: Option<String>,
    /// `X-Okta-Request-Id` of a failed Okta call, shown for support.
    pub okta_request_id: Option<String>,
}

/// Where an expired session sends the browser: sign-in, then back to `return_to`.
fn sign_in_target(return_to: Option<&str>) -> String {
    match return_to {
        Some(path) => format!(
            "/auth/login?return_to={}",
            url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
        ),
        None => "/auth/login".to_string(),
    }
}

fn okta_report(e: &OktaError, report: &mut ErrorReport) {
    report.title = match e.kind {
        OktaErrorKind::NotFound => "User not found".into(),
        _ => "Okta could not complete the request".into(),
    };
    report.message = e.plain_message();
    report.okta_request_id = e.request_id.clone();
    if okta_status(e.kind).is_server_error() {
        report.internal = Some(e.to_string());
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf | AppError::Refused(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::SignIn(_) => StatusCode::BAD_REQUEST,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Okta(e) => okta_status(e.kind),
            AppError::Rejected { status, .. } => *status,
            AppError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn report(&self) -> ErrorReport {
        let status = self.status();
        let mut report = ErrorReport::new(status);
        match self {
            AppError::Unauthenticated { return_to } => {
                report.title = "Sign-in required".into();
                report.message = "Your session has ended. Sign in to continue.".into();
                report.redirect = Some(sign_in_target(return_to.as_deref()));
            }
            AppError::Forbidden(denial) => {
                report.title = "Not allowed".into();
                report.message = format!(
                    "You do not have the permission “{}” ({}).",
                    denial.permission, denial.label
                );
                report.permission = Some((
                    denial.permission.clone(),
                    denial.requirement.clone(),
                    denial.explanation.clone(),
                ));
            }
            AppError::Refused(message) => {
                report.title = "Not allowed".into();
                report.message = message.clone();
            }
            AppError::Csrf => {
                report.title = "Request refused".into();
                report.message = "This form has expired or did not come from the portal. Reload the page and try again.".into();
            }
            AppError::NotFound => {
                report.title = "Not found".into();
                report.message = "There is nothing at this address.".into();
            }
            AppError::BadRequest(message) => {
                report.title = "Bad request".into();
                report.message = message.clone();
            }
            AppError::SignIn(message) => {
                report.title = "Sign-in failed".into();
                report.message = message.clone();
                report.retry = Some("/auth/login".into());
            }
            AppError::Upstream(detail) => {
                report.title = "A service the portal depends on failed".into();
                report.message =
                    "The identity provider did not answer as expected. Try again in a moment."
                        .into();
                report.internal = Some(detail.clone());
            }
            AppError::Okta(e) => okta_report(e, &mut report),
            AppError::Rejected { .. } | AppError::Timeout(_) => self.request_report(&mut report),
            AppError::Internal(e) => {
                report.title = "Something went wrong".into();
                report.message =
                    "The portal could not complete this request. Nothing was changed.".into();
                report.internal = Some(format!("{e:#}"));
            }
        }
        report
    }
}

fn rejection_title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported request",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid request",
        _ => "Bad request",
    }
}

impl ErrorReport {
    fn new(status: StatusCode) -> ErrorReport {
        ErrorReport {
            status,
            title: String::new(),
            message: String::new(),
            permission: None,
            retry: None,
            redirect: None,
            internal: None,
            okta_request_id: None,
        }
    }
}

impl AppError {
    /// The words for a request that could not be read or ran too long.
    fn request_report(&self, report: &mut ErrorReport) {
        match self {
            AppError::Rejected { status, message } => {
                report.title = rejection_title(*status).into();
                report.message = if *status == StatusCode::PAYLOAD_TOO_LARGE {
                    "The form sent was too large to accept. Shorten what you typed and try again."
                        .into()
                } else {
                    message.clone()
                };
            }
            AppError::Timeout(seconds) => {
                report.title = "The request took too long".into();
                report.message = format!(
                    "The portal stopped this request after {seconds} seconds. It may or may not have completed: check before trying again."
                );
                report.internal = Some(self.to_string());
            }
            _ => {}
        }
    }
}

/// The status a person sees for a failed Okta call.
pub fn okta_status(kind: OktaErrorKind) -> StatusCode {
    match kind {
        OktaErrorKind::NotFound => StatusCode::NOT_FOUND,
        OktaErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        OktaErrorKind::NotAllowed => StatusCode::CONFLICT,
        OktaErrorKind::RateLimited | OktaErrorKind::Busy => StatusCode::TOO_MANY_REQUESTS,
        OktaErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        OktaErrorKind::Unauthorized
        | OktaErrorKind::Forbidden
        | OktaErrorKind::Unavailable
        | OktaErrorKind::Transport
        | OktaErrorKind::Malformed => StatusCode::BAD_GATEWAY,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.status.into_response();
        response.extensions_mut().insert(report);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        let denial = Denial {
            permission: "audit.read".into(),
            label: "review activity".into(),
            requirement: "scopes admin.audit.read".into(),
            explanation: "Denied.".into(),
            missing_scopes: vec!["admin.audit.read".into()],
        };
        let cases = [
            (AppError::Unauthenticated { return_to: None }, 401),
            (AppError::Forbidden(Box::new(denial)), 403),
            (AppError::Csrf, 403),
            (AppError::Refused("protected".into()), 403),
            (AppError::NotFound, 404),
            (AppError::SignIn("x".into()), 400),
            (AppError::Upstream("x".into()), 502),
            (
                AppError::Okta(OktaError::new(OktaErrorKind::NotAllowed, "x")),
                409,
            ),
            (
                AppError::Okta(OktaError::new(OktaErrorKind::RateLimited, "x")),
                429,
            ),
            (
                AppError::Okta(OktaError::new(OktaErrorKind::Timeout, "x")),
                504,
            ),
            (
                AppError::Okta(OktaError::new(OktaErrorKind::Unavailable, "x")),
                502,
            ),
            (
                AppError::Okta(OktaError::new(OktaErrorKind::NotFound, "x")),
                404,
            ),
            (AppError::Internal(anyhow::anyhow!("boom")), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert!(response.extensions().get::<ErrorReport>().is_some());
        }
    }

    #[test]
    fn internal_details_are_not_in_the_message() {
        let report = AppError::Internal(anyhow::anyhow!("password=hunter2 in SQL")).report();
        assert!(!report.message.contains("hunter2"));
        assert!(report.internal.unwrap().contains("hunter2"));
    }

    #[test]
    fn unauthenticated_redirect_encodes_return_path() {
        let report = AppError::Unauthenticated {
            return_to: Some("/me?a=1&b=2".into()),
        }
        .report();
        assert_eq!(
            report.redirect.as_deref(),
            Some("/auth/login?return_to=%2Fme%3Fa%3D1%26b%3D2")
        );
    }
}
