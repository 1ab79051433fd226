//! Activity pages for managers: filtered list with keyset pagination, agent timeline,
//! server-rendered SVG charts, streamed exports, and the integrity check.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::audit::query::{AgentCount, DayCount, day_bounds};
use crate::audit::{Action, ActivityFilter, AuditRecord, NewEvent, Outcome, export};
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::layout::PageCtx;
use crate::web::{htmx, security};

const PAGE_SIZE: i64 = 50;
/// Days shown in the chart when no date range is chosen.
const CHART_DAYS: i64 = 30;

impl AuditRecord {
    /// Badge class for the outcome.
    pub fn outcome_class(&self) -> &'static str {
        match self.outcome.as_str() {
            "success" => "ok",
            "denied" => "warn",
            _ => "bad",
        }
    }

    /// Who acted, by name.
    pub fn actor_label(&self) -> String {
        self.actor_name
            .clone()
            .or_else(|| self.actor_login.clone())
            .or_else(|| self.client_id.clone())
            .unwrap_or_else(|| "(not signed in)".into())
    }

    pub fn target_label(&self) -> String {
        self.target_name
            .clone()
            .or_else(|| self.target_login.clone())
            .or_else(|| self.target_id.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(flatten)]
    pub filter: ActivityFilter,
    #[serde(default)]
    pub before: Option<i64>,
}

/// One bar segment of the stacked chart.
pub struct Segment {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub class: String,
    pub title: String,
}

pub struct Marker {
    pub x: i64,
    pub y: i64,
    pub title: String,
}

pub struct Legend {
    pub class: String,
    pub label: String,
}

pub struct AgentBar {
    pub y: i64,
    pub width: i64,
    pub label: String,
    pub count: i64,
    pub href: String,
}

/// The data of both charts, laid out in SVG coordinates.
pub struct Charts {
    pub width: i64,
    pub height: i64,
    pub segments: Vec<Segment>,
    pub markers: Vec<Marker>,
    pub legend: Vec<Legend>,
    pub first_day: String,
    pub last_day: String,
    pub max: i64,
    pub total: i64,
    pub problems: i64,
    pub agents: Vec<AgentBar>,
    pub agents_height: i64,
}

const CHART_W: i64 = 900;
const CHART_H: i64 = 220;

fn palette(i: usize) -> String {
    format!("series-{}", i % 10)
}

/// Lays out actions per day, stacked by action, with failures and denials marked.
pub fn build_charts(
    counts: &[DayCount],
    agents: &[AgentCount],
    first: time::Date,
    last: time::Date,
    agent_filter: &ActivityFilter,
) -> Charts {
    let day_format = time::macros::format_description!("[year]-[month]-[day]");
    let mut days = Vec::new();
    let mut d = first;
    while d <= last && days.len() < 400 {
        days.push(d.format(&day_format).unwrap_or_default());
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    let actions: BTreeSet<&str> = counts.iter().map(|c| c.action.as_str()).collect();
    let action_index: BTreeMap<&str, usize> =
        actions.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut per_day: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut problems_per_day: BTreeMap<&str, i64> = BTreeMap::new();
    for c in counts {
        *per_day
            .entry(c.day.as_str())
            .or_default()
            .entry(c.action.as_str())
            .or_default() += c.count;
        if c.outcome != "success" {
            *problems_per_day.entry(c.day.as_str()).or_default() += c.count;
        }
    }
    let max = per_day
        .values()
        .map(|m| m.values().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    // At least 30 slots wide, so that a short range does not draw one huge bar.
    let slot = (CHART_W / days.len().max(30) as i64).max(2);
    let bar = (slot * 3 / 4).max(1);
    let mut segments = Vec::new();
    let mut markers = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let x = i as i64 * slot;
        let mut y = CHART_H;
        if let Some(by_action) = per_day.get(day.as_str()) {
            for (action, count) in by_action {
                let h = (count * (CHART_H - 20) / max).max(1);
                y -= h;
                segments.push(Segment {
                    x,
                    y,
                    width: bar,
                    height: h,
                    class: palette(action_index.get(action).copied().unwrap_or(0)),
                    title: format!("{day}: {count} × {action}"),
                });
            }
        }
        if let Some(p) = problems_per_day.get(day.as_str()) {
            markers.push(Marker {
                x: x + bar / 2,
                y: (y - 8).max(6),
                title: format!("{day}: {p} failed or denied"),
            });
        }
    }
    let legend = actions
        .iter()
        .map(|a| Legend {
            class: palette(action_index[a]),
            label: a.to_string(),
        })
        .collect();
    let top = agents.iter().map(|a| a.count).max().unwrap_or(1).max(1);
    let agent_bars = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut f = agent_filter.clone();
            f.agent = None;
            AgentBar {
                y: i as i64 * 28,
                width: (a.count * 600 / top).max(2),
                label: a.actor_name.clone(),
                count: a.count,
                href: format!("/activity/agents/{}", url_path(&a.actor_sub)),
            }
        })
        .collect::<Vec<_>>();
    Charts {
        width: CHART_W,
        height: CHART_H,
        segments,
        markers,
        legend,
        first_day: days.first().cloned().unwrap_or_default(),
        last_day: days.last().cloned().unwrap_or_default(),
        max,
        total: counts.iter().map(|c| c.count).sum(),
        problems: problems_per_day.values().sum(),
        agents_height: (agent_bars.len() as i64 * 28).max(28),
        agents: agent_bars,
    }
}

fn url_path(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The chart's date range: the filter's, or the last 30 days.
fn chart_range(filter: &ActivityFilter) -> (ActivityFilter, time::Date, time::Date) {
    let today = time::OffsetDateTime::now_utc().date();
    let parse = |v: &Option<String>| {
        v.as_deref()
            .filter(|d| day_bounds(d).is_some())
            .and_then(|d| {
                time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
            })
    };
    let last = parse(&filter.to).unwrap_or(today);
    let first = parse(&filter.from)
        .or_else(|| last.checked_sub(time::Duration::days(CHART_DAYS - 1)))
        .unwrap_or(last);
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut f = filter.clone();
    f.from = first.format(&format).ok();
    f.to = last.format(&format).ok();
    (f, first.min(last), last)
}

pub struct Options {
    pub actions: Vec<&'static str>,
    pub outcomes: Vec<&'static str>,
}

fn options() -> Options {
    Options {
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        outcomes: vec!["success", "failure", "denied"],
    }
}

#[derive(Template)]
#[template(path = "activity/index.html")]
struct ActivityPage {
    ctx: PageCtx,
    filter: ActivityFilter,
    records: Vec<AuditRecord>,
    older: Option<String>,
    newest: Option<String>,
    problems: Vec<String>,
    options: Options,
    query: String,
}

#[derive(Template)]
#[template(path = "activity/_charts.html")]
struct ChartsFragment {
    charts: Charts,
}

#[derive(Template)]
#[template(path = "activity/charts.html")]
struct ChartsPage {
    ctx: PageCtx,
    charts: Charts,
    query: String,
}

/// The charts for the filtered records: loaded by htmx after the list (so the list is
/// never slowed by the aggregates), or as a page of their own without JavaScript.
pub async fn charts(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
    headers: HeaderMap,
    Query(filter): Query<ActivityFilter>,
) -> Result<Response, AppError> {
    if let Some(problem) = filter.problems().into_iter().next() {
        return Err(AppError::BadRequest(problem));
    }
    let (chart_filter, first, last) = chart_range(&filter);
    let (counts, agents) = tokio::join!(
        state.audit.day_counts(&chart_filter),
        state.audit.top_destructive_agents(&chart_filter, 8)
    );
    let charts = build_charts(&counts?, &agents?, first, last, &filter);
    if htmx::wants_fragment(&headers) {
        return Ok(Html(ChartsFragment { charts }.render()?).into_response());
    }
    let page = ChartsPage {
        ctx: PageCtx::for_agent(&agent, "activity").await?,
        charts,
        query: filter.query_string(),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Template)]
#[template(path = "activity/_records.html")]
struct RecordsFragment {
    records: Vec<AuditRecord>,
    older: Option<String>,
    newest: Option<String>,
}

fn link(filter: &ActivityFilter, before: Option<i64>) -> String {
    let mut qs = filter.query_string();
    if let Some(b) = before {
        if !qs.is_empty() {
            qs.push('&');
        }
        qs.push_str(&format!("before={b}"));
    }
    if qs.is_empty() {
        "/activity".into()
    } else {
        format!("/activity?{qs}")
    }
}

pub async fn index(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, AppError> {
    let filter = params.filter;
    let problems = filter.problems();
    let page = if problems.is_empty() {
        state.audit.page(&filter, params.before, PAGE_SIZE).await?
    } else {
        // A filter that cannot be right is not run; the form says what to change.
        crate::audit::ActivityPage::default()
    };
    let older = page.next_before.map(|b| link(&filter, Some(b)));
    let newest = params.before.is_some().then(|| link(&filter, None));
    if htmx::wants_fragment(&headers)
        && headers.get("hx-target").and_then(|v| v.to_str().ok()) == Some("records")
    {
        let fragment = RecordsFragment {
            records: page.records,
            older,
            newest,
        };
        return Ok(Html(fragment.render()?).into_response());
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ActivityPage {
        ctx: PageCtx::for_agent(&agent, "activity").await?,
        query: filter.query_string(),
        filter,
        records: page.records,
        older,
        newest,
        problems,
        options: options(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// One day of an agent's timeline: the day, counts per action, the total.
type DayRow = (String, Vec<(String, i64)>, i64);

#[derive(Template)]
#[template(path = "activity/agent.html")]
struct AgentPage {
    ctx: PageCtx,
    sub: String,
    name: String,
    days: Vec<DayRow>,
    records: Vec<AuditRecord>,
    older: Option<String>,
    newest: Option<String>,
}

pub async fn agent_timeline(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
    Path(sub): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Html<String>, AppError> {
    let filter = ActivityFilter {
        agent: Some(sub.clone()),
        ..params.filter
    };
    if let Some(problem) = filter.problems().into_iter().next() {
        return Err(AppError::BadRequest(problem));
    }
    let (page, counts) = tokio::join!(
        state.audit.page(&filter, params.before, PAGE_SIZE),
        state.audit.day_counts(&filter)
    );
    let page = page?;
    let mut by_day: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for c in counts? {
        *by_day
            .entry(c.day)
            .or_default()
            .entry(c.action)
            .or_default() += c.count;
    }
    let days = by_day
        .into_iter()
        .rev()
        .map(|(day, actions)| {
            let total = actions.values().sum();
            (day, actions.into_iter().collect(), total)
        })
        .collect();
    let name = page
        .records
        .first()
        .map(|r| r.actor_label())
        .unwrap_or_else(|| sub.clone());
    let base = format!("/activity/agents/{}", url_path(&sub));
    let older = page.next_before.map(|b| format!("{base}?before={b}"));
    let newest = params.before.is_some().then(|| base.clone());
    let page = AgentPage {
        ctx: PageCtx::for_agent(&agent, "activity").await?,
        sub,
        name,
        days,
        records: page.records,
        older,
        newest,
    };
    Ok(Html(page.render()?))
}

#[derive(Clone, Copy)]
pub enum Format {
    Csv,
    Jsonl,
}

/// How an export was asked for.
pub struct ExportRequest {
    pub method: Method,
    pub headers: HeaderMap,
    pub filter: ActivityFilter,
    pub format: Format,
}

fn export_headers(format: Format) -> [(header::HeaderName, String); 2] {
    let (content_type, name) = match format {
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

async fn export(
    state: AppState,
    agent: Require<perm::AuditExport>,
    asked: ExportRequest,
) -> Result<Response, AppError> {
    let ExportRequest {
        method,
        headers,
        filter,
        format,
    } = asked;
    if !security::export_allowed(&headers) {
        return Err(AppError::Refused(
            "Exports can only be started from the portal's activity page, not from a link or form on another site.".into(),
        ));
    }
    if let Some(problem) = filter.problems().into_iter().next() {
        return Err(AppError::BadRequest(problem));
    }
    if method == Method::HEAD {
        // Nothing is exported, so nothing is recorded.
        return Ok(export_headers(format).into_response());
    }
    // The export is itself audited, before any row is sent.
    let event = NewEvent::new(
        Action::AuditExport,
        Outcome::Success,
        agent.actor(),
        agent.meta().clone(),
    )
    .permission(perm_export())
    .detail(format!(
        "{} export of {}",
        match format {
            Format::Csv => "CSV",
            Format::Jsonl => "JSON Lines",
        },
        if filter.is_empty() {
            "everything".to_string()
        } else {
            filter.query_string()
        }
    ));
    state.audit.record(event).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    let store = state.audit.clone();
    tokio::spawn(async move {
        if matches!(format, Format::Csv)
            && tx.send(Ok(export::CSV_HEADER.to_string())).await.is_err()
        {
            return;
        }
        let line = match format {
            Format::Csv => export::csv_line,
            Format::Jsonl => export::jsonl_line,
        };
        if let Err(e) = store.stream_lines(&filter, line, &tx).await {
            tracing::error!(error = %e, "export failed part-way");
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((export_headers(format), Body::from_stream(stream)).into_response())
}

fn perm_export() -> &'static str {
    crate::auth::policy::Permission::AuditExport.as_str()
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

#[derive(Template)]
#[template(path = "activity/integrity.html")]
struct IntegrityPage {
    ctx: PageCtx,
    checked: u64,
    pruned: i64,
    broken: Option<(i64, String)>,
}

pub async fn integrity(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
) -> Result<Response, AppError> {
    let v = state.audit.verify().await?;
    let status = if v.intact() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let page = IntegrityPage {
        ctx: PageCtx::for_agent(&agent, "activity").await?,
        checked: v.checked,
        pruned: v.pruned,
        broken: v.broken.map(|b| (b.id, b.reason)),
    };
    Ok((status, Html(page.render()?)).into_response())
}
