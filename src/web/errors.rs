//! Renders `AppError` reports: a full page, an htmx fragment, a redirect to sign in, or a
//! JSON problem, always with the request id. 5xx are logged once here.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::error::ErrorReport;
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

pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let is_htmx = request.headers().contains_key("hx-request");
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    if report.status.is_server_error() {
        tracing::error!(
            request_id = %request_id,
            %method,
            %path,
            status = report.status.as_u16(),
            detail = report.internal.as_deref().unwrap_or(""),
            "request failed"
        );
    }
    let mut out = if let Some(target) = &report.redirect {
        if is_htmx {
            let mut r = report.status.into_response();
            if let Ok(v) = HeaderValue::from_str(target) {
                r.headers_mut().insert("hx-redirect", v);
            }
            r
        } else if wants_json {
            problem(&report, &request_id)
        } else {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(target) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    } else if wants_json {
        problem(&report, &request_id)
    } else if is_htmx {
        let body = ErrorFragment {
            report: &report,
            request_id: &request_id,
        }
        .render()
        .unwrap_or_else(|_| report.message.clone());
        (report.status, Html(body)).into_response()
    } else {
        let page = ErrorPage {
            ctx: PageCtx::anonymous(&request_id),
            report: &report,
        };
        match page.render() {
            Ok(body) => (report.status, Html(body)).into_response(),
            Err(e) => {
                tracing::error!(request_id = %request_id, error = %e, "error page failed to render");
                (
                    report.status,
                    format!("{}\n\nRequest id: {request_id}", report.message),
                )
                    .into_response()
            }
        }
    };
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
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
