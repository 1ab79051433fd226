//! Per-session CSRF tokens, checked on every state-changing browser request.
//!
//! This complements tower-http's `CsrfLayer` (Sec-Fetch-Site / Origin): that layer lets
//! requests with neither header through, this one does not.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_sessions::Session;

use super::oidc::constant_time_eq;
use super::session::CSRF_KEY;
use crate::error::AppError;

pub const FORM_FIELD: &str = "_csrf";
pub const HEADER: &str = "x-csrf-token";
/// Largest form body read to find the token.
const MAX_FORM: usize = 256 * 1024;

pub async fn verify(session: Session, request: Request, next: Next) -> Result<Response, AppError> {
    if matches!(
        request.method(),
        &Method::GET | &Method::HEAD | &Method::OPTIONS
    ) {
        return Ok(next.run(request).await);
    }
    let Some(expected) = session.get::<String>(CSRF_KEY).await? else {
        tracing::warn!(path = %request.uri().path(), "state-changing request without a session CSRF token");
        return Err(AppError::Csrf);
    };
    if let Some(sent) = request.headers().get(HEADER).and_then(|v| v.to_str().ok())
        && constant_time_eq(sent, &expected)
    {
        return Ok(next.run(request).await);
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(AppError::Csrf);
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM).await.map_err(|_| AppError::Csrf)?;
    let sent = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FORM_FIELD)
        .map(|(_, v)| v.into_owned());
    match sent {
        Some(sent) if constant_time_eq(&sent, &expected) => Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await),
        _ => {
            tracing::warn!(path = %parts.uri.path(), "CSRF token missing or wrong");
            Err(AppError::Csrf)
        }
    }
}
