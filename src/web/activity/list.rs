//! The filtered list and one agent's timeline.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{ListParams, PAGE_SIZE, link, url_path};
use crate::audit::query::DayCount;
use crate::audit::{Action, ActivityFilter, AuditRecord};
use crate::auth::extract::{Agent, Require};
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::ops::velocity::VelocityStatus;
use crate::state::AppState;
use crate::web::forms::{WhyErrors, WhyForm};
use crate::web::htmx;
use crate::web::layout::PageCtx;

pub struct Options {
    pub actions: Vec<&'static str>,
    pub outcomes: Vec<&'static str>,
}

fn options() -> Options {
    Options {
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        outcomes: vec!["success", "failure", "denied", "unknown"],
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
#[template(path = "activity/_records.html")]
struct RecordsFragment {
    records: Vec<AuditRecord>,
    older: Option<String>,
    newest: Option<String>,
}

/// An htmx request for the records only (the "Older" button).
fn wants_records(headers: &HeaderMap) -> bool {
    htmx::wants_fragment(headers)
        && headers.get("hx-target").and_then(|v| v.to_str().ok()) == Some("records")
}

/// The page of records, unless the filter cannot be right: then nothing is run and the
/// form says what to change.
async fn records(
    state: &AppState,
    params: &ListParams,
    problems: &[String],
) -> anyhow::Result<crate::audit::ActivityPage> {
    if !problems.is_empty() {
        return Ok(crate::audit::ActivityPage::default());
    }
    state
        .audit
        .page(&params.filter, params.before, PAGE_SIZE)
        .await
}

pub async fn index(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, AppError> {
    let problems = params.filter.problems();
    let page = records(&state, &params, &problems).await?;
    let filter = params.filter;
    let older = page.next_before.map(|b| link(&filter, Some(b)));
    let newest = params.before.is_some().then(|| link(&filter, None));
    if wants_records(&headers) {
        let (records, older, newest) = (page.records, older, newest);
        let fragment = RecordsFragment {
            records,
            older,
            newest,
        };
        return Ok(Html(fragment.render()?).into_response());
    }
    let status = match problems.is_empty() {
        true => StatusCode::OK,
        false => StatusCode::UNPROCESSABLE_ENTITY,
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
    velocity: VelocityStatus,
    /// The agent viewing the page is the one shown (nobody lifts their own caps).
    own: bool,
    lift: LiftForm,
}

/// The lift form as typed, kept for a re-render.
#[derive(Default)]
pub struct LiftForm {
    pub why: WhyForm,
    pub errors: WhyErrors,
}

/// Counts per action per day, newest day first.
fn day_rows(counts: Vec<DayCount>) -> Vec<DayRow> {
    let mut by_day: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for c in counts {
        *by_day
            .entry(c.day)
            .or_default()
            .entry(c.action)
            .or_default() += c.count;
    }
    by_day
        .into_iter()
        .rev()
        .map(|(day, actions)| {
            let total = actions.values().sum();
            (day, actions.into_iter().collect(), total)
        })
        .collect()
}

pub async fn agent_timeline(
    State(state): State<AppState>,
    agent: Require<perm::AuditRead>,
    Path(sub): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Response, AppError> {
    let shown = (StatusCode::OK, LiftForm::default());
    render_timeline(&state, &agent, sub, params, shown).await
}

/// The timeline of `sub`: days, records, velocity caps and the lift form.
pub(super) async fn render_timeline(
    state: &AppState,
    agent: &Agent,
    sub: String,
    params: ListParams,
    (status, lift): (StatusCode, LiftForm),
) -> Result<Response, AppError> {
    let filter = ActivityFilter {
        agent: Some(sub.clone()),
        ..params.filter
    };
    if let Some(problem) = filter.problems().into_iter().next() {
        return Err(AppError::BadRequest(problem));
    }
    let (page, counts, velocity) = tokio::join!(
        state.audit.page(&filter, params.before, PAGE_SIZE),
        state.audit.day_counts(&filter),
        state.ops.velocity_status(&sub)
    );
    let (page, days, velocity) = (page?, day_rows(counts?), velocity?);
    let name = page
        .records
        .first()
        .map(|r| r.actor_label())
        .unwrap_or_else(|| sub.clone());
    let base = format!("/activity/agents/{}", url_path(&sub));
    let page = AgentPage {
        ctx: PageCtx::for_agent(agent, "activity").await?,
        own: agent.principal.subject == sub,
        older: page.next_before.map(|b| format!("{base}?before={b}")),
        newest: params.before.is_some().then(|| base.clone()),
        sub,
        name,
        days,
        records: page.records,
        velocity,
        lift,
    };
    Ok((status, Html(page.render()?)).into_response())
}
