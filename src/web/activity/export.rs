//! `/activity/export.csv` and `/activity/export.jsonl`: the filtered records from the store's
//! stream, formatted as CSV (RFC 4180 quoting, spreadsheet formulas neutralised) or JSON
//! Lines, sent in chunks of about 64 KiB.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use crate::audit::{Action, ActivityFilter, AuditRecord, NewEvent, Outcome};
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::security;

pub const CSV_HEADER: &str = "id,occurred_at,request_id,action,outcome,actor_sub,actor_login,actor_name,client_id,permission,target_id,target_login,target_name,reason,ticket,detail,okta_request_id,okta_error_code,status_before,status_after,client_ip,user_agent,hash\r\n";

/// Appends one CSV cell: RFC 4180 quoting, and a cell starting with = + - @ (run as a
/// formula by spreadsheets) gets a leading quote. Written into the batch, no allocation.
fn push_csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quoted {
        let mut parts = value.split('"');
        out.push_str(parts.next().unwrap_or_default());
        for part in parts {
            out.push_str("\"\"");
            out.push_str(part);
        }
        out.push('"');
    } else {
        out.push_str(value);
    }
}

pub fn csv_line(r: &AuditRecord, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{}", r.id);
    let fields = [
        Some(&r.occurred_at),
        Some(&r.request_id),
        Some(&r.action),
        Some(&r.outcome),
        r.actor_sub.as_ref(),
        r.actor_login.as_ref(),
        r.actor_name.as_ref(),
        r.client_id.as_ref(),
        r.permission.as_ref(),
        r.target_id.as_ref(),
        r.target_login.as_ref(),
        r.target_name.as_ref(),
        r.reason.as_ref(),
        r.ticket.as_ref(),
        r.detail.as_ref(),
        r.okta_request_id.as_ref(),
        r.okta_error_code.as_ref(),
        r.status_before.as_ref(),
        r.status_after.as_ref(),
        r.client_ip.as_ref(),
        r.user_agent.as_ref(),
        Some(&r.hash),
    ];
    for field in fields {
        out.push(',');
        push_csv_field(out, field.map(String::as_str).unwrap_or(""));
    }
    out.push_str("\r\n");
}

pub fn jsonl_line(r: &AuditRecord, out: &mut String) {
    out.push_str(&serde_json::to_string(r).unwrap_or_else(|_| "{}".to_string()));
    out.push('\n');
}

#[derive(Clone, Copy)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    fn line(self) -> fn(&AuditRecord, &mut String) {
        match self {
            Format::Csv => csv_line,
            Format::Jsonl => jsonl_line,
        }
    }

    fn header(self) -> Option<&'static str> {
        matches!(self, Format::Csv).then_some(CSV_HEADER)
    }

    fn label(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Jsonl => "JSON Lines",
        }
    }

    fn headers(self) -> [(header::HeaderName, String); 2] {
        let (content_type, name) = match self {
            Format::Csv => ("text/csv; charset=utf-8", "activity.csv"),
            Format::Jsonl => ("application/x-ndjson", "activity.jsonl"),
        };
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ]
    }
}

/// How an export was asked for.
pub struct ExportRequest {
    pub method: Method,
    pub headers: HeaderMap,
    pub filter: ActivityFilter,
    pub format: Format,
}

const CHUNK: usize = 64 * 1024;
/// A client that stops reading must not hold a connection (and a database cursor) forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Formats the records into chunks of about 64 KiB and hands them to the response body
/// through a bounded channel: memory stays constant however many rows match.
fn body(
    records: impl Stream<Item = anyhow::Result<AuditRecord>> + Send + 'static,
    format: Format,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    tokio::spawn(async move {
        let line = format.line();
        let mut batch = format.header().unwrap_or_default().to_string();
        let mut records = std::pin::pin!(records);
        while let Some(record) = records.next().await {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "export failed part-way");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            line(&record, &mut batch);
            if batch.len() >= CHUNK {
                let sent =
                    tokio::time::timeout(SEND_TIMEOUT, tx.send(Ok(std::mem::take(&mut batch))));
                if !matches!(sent.await, Ok(Ok(()))) {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch)).await;
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Refusals that come before anything is read or recorded.
fn check(asked: &ExportRequest) -> Result<(), AppError> {
    if !security::export_allowed(&asked.headers) {
        return Err(AppError::Refused(
            "Exports can only be started from the portal's activity page, not from a link or form on another site.".into(),
        ));
    }
    match asked.filter.problems().into_iter().next() {
        Some(problem) => Err(AppError::BadRequest(problem)),
        None => Ok(()),
    }
}

async fn export(
    state: AppState,
    agent: Require<perm::AuditExport>,
    asked: ExportRequest,
) -> Result<Response, AppError> {
    check(&asked)?;
    let ExportRequest {
        method,
        filter,
        format,
        ..
    } = asked;
    if method == Method::HEAD {
        // Nothing is exported, so nothing is recorded.
        return Ok(format.headers().into_response());
    }
    let scope = if filter.is_empty() {
        "everything".to_string()
    } else {
        filter.query_string()
    };
    // The export is itself audited, before any row is sent.
    let event = NewEvent::new(
        Action::AuditExport,
        Outcome::Success,
        agent.actor(),
        agent.meta().clone(),
    )
    .permission(crate::auth::policy::Permission::AuditExport.as_str())
    .detail(format!("{} export of {scope}", format.label()));
    state.audit.record(event).await?;
    let records = state.audit.stream(&filter);
    Ok((format.headers(), body(records, format)).into_response())
}

pub async fn export_csv(
    State(state): State<AppState>,
    agent: Require<perm::AuditExport>,
    method: Method,
    headers: HeaderMap,
    Query(filter): Query<ActivityFilter>,
) -> Result<Response, AppError> {
    let asked = ExportRequest {
        method,
        headers,
        filter,
        format: Format::Csv,
    };
    export(state, agent, asked).await
}

pub async fn export_jsonl(
    State(state): State<AppState>,
    agent: Require<perm::AuditExport>,
    method: Method,
    headers: HeaderMap,
    Query(filter): Query<ActivityFilter>,
) -> Result<Response, AppError> {
    let asked = ExportRequest {
        method,
        headers,
        filter,
        format: Format::Jsonl,
    };
    export(state, agent, asked).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_field(value: &str) -> String {
        let mut out = String::new();
        push_csv_field(&mut out, value);
        out
    }

    #[test]
    fn quoting_and_formula_neutralising() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("-1,\"2\""), "\"'-1,\"\"2\"\"\"");
        assert_eq!(csv_field(""), "");
        assert_eq!(CSV_HEADER.matches(',').count(), 22);
    }
}
