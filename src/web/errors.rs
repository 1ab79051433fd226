//! Renders `AppError` reports: a full page, an htmx fragment, a redirect to sign in, or a
//! JSON problem, always with the request id. 5xx are logged once here.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::error::{AppError, ErrorReport};
use crate::web::layout::PageCtx;

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    ctx: PageCtx,
    report: &'a ErrorReport,
}

#[derive(Template)]
#[template(path = "partials/_error.html")]
struct ErrorFragment<'a> {
    report: &'a ErrorReport,
    request_id: &'a str,
}

/// What the renderer needs to know about the request.
struct Asked {
    request_id: String,
    is_htmx: bool,
    wants_json: bool,
}

pub async fn render_errors(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let asked = Asked {
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string(),
        is_htmx: headers.contains_key("hx-request"),
        wants_json: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html")),
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let report = match response.extensions().get::<ErrorReport>().cloned() {
        Some(report) => report,
        None if is_plain_rejection(&response) => rejection_report(response).await,
        None => return response,
    };
    if report.status.is_server_error() {
        tracing::error!(
            request_id = ?asked.request_id,
            %method,
            path = ?path,
            status = report.status.as_u16(),
            detail = ?report.internal.as_deref().unwrap_or(""),
            "request failed"
        );
    }
    let mut out = match &report.redirect {
        Some(target) => redirect(&report, target, &asked),
        None => render(&report, &asked),
    };
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// A 4xx that no handler rendered: one of axum's extractor rejections (plain text), a 405,
/// or a body over the limit.
fn is_plain_rejection(response: &Response) -> bool {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| t.starts_with("text/plain"));
    status.is_client_error() && plain
}

async fn rejection_report(response: Response) -> ErrorReport {
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let text = if text.trim().is_empty() {
        status
            .canonical_reason()
            .unwrap_or("The request was refused.")
    } else {
        text.as_ref()
    };
    AppError::rejected(status, text).report()
}

fn redirect(report: &ErrorReport, target: &str, asked: &Asked) -> Response {
    if asked.is_htmx {
        let mut r = report.status.into_response();
        if let Ok(v) = HeaderValue::from_str(target) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else if asked.wants_json {
        problem(report, &asked.request_id)
    } else {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(target) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }
}

fn render(report: &ErrorReport, asked: &Asked) -> Response {
    let request_id = asked.request_id.as_str();
    if asked.wants_json {
        return problem(report, request_id);
    }
    if asked.is_htmx {
        let body = ErrorFragment { report, request_id }
            .render()
            .unwrap_or_else(|_| report.message.clone());
        return (report.status, Html(body)).into_response();
    }
    let page = ErrorPage {
        ctx: PageCtx::anonymous(request_id),
        report,
    };
    match page.render() {
        Ok(body) => (report.status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(request_id = ?request_id, error = %e, "error page failed to render");
            (
                report.status,
                format!("{}\n\nRequest id: {request_id}", report.message),
            )
                .into_response()
        }
    }
}

fn problem(report: &ErrorReport, request_id: &str) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": report.title,
        "status": report.status.as_u16(),
        "detail": report.message,
        "request_id": request_id,
    });
    if let Some((permission, requires, _)) = &report.permission {
        body["permission"] = json!(permission);
        body["requires"] = json!(requires);
    }
    let mut r = (report.status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// The 404 for unknown paths.
pub async fn not_found() -> crate::error::AppError {
    crate::error::AppError::NotFound
}
