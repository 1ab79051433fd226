//! The charts: actions per day stacked by action, and the agents with the most destructive
//! actions, laid out on the server as SVG.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};

use super::url_path;
use crate::audit::ActivityFilter;
use crate::audit::query::{AgentCount, DayCount, day_bounds};
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::htmx;
use crate::web::layout::PageCtx;

/// Days shown in the chart when no date range is chosen.
const CHART_DAYS: i64 = 30;

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

/// Every day from `first` to `last` (at most 400), as `YYYY-MM-DD`.
fn day_list(first: time::Date, last: time::Date) -> Vec<String> {
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
    days
}

/// One bar per agent, scaled to the busiest, linking to the agent's timeline.
fn agent_bars(agents: &[AgentCount]) -> Vec<AgentBar> {
    let top = agents.iter().map(|a| a.count).max().unwrap_or(1).max(1);
    agents
        .iter()
        .enumerate()
        .map(|(i, a)| AgentBar {
            y: i as i64 * 28,
            width: (a.count * 600 / top).max(2),
            label: a.actor_name.clone(),
            count: a.count,
            href: format!("/activity/agents/{}", url_path(&a.actor_sub)),
        })
        .collect()
}

/// Lays out actions per day, stacked by action, with failures and denials marked.
pub fn build_charts(
    counts: &[DayCount],
    agents: &[AgentCount],
    first: time::Date,
    last: time::Date,
) -> Charts {
    let days = day_list(first, last);
    let tally = Tally::of(counts);
    let (segments, markers) = tally.stack(&days);
    let legend = tally
        .actions
        .iter()
        .map(|(a, i)| Legend {
            class: palette(*i),
            label: a.to_string(),
        })
        .collect();
    let agent_bars = agent_bars(agents);
    Charts {
        width: CHART_W,
        height: CHART_H,
        segments,
        markers,
        legend,
        first_day: days.first().cloned().unwrap_or_default(),
        last_day: days.last().cloned().unwrap_or_default(),
        max: tally.max,
        total: counts.iter().map(|c| c.count).sum(),
        problems: tally.problems.values().sum(),
        agents_height: (agent_bars.len() as i64 * 28).max(28),
        agents: agent_bars,
    }
}

/// The counts by day and action, the failures and denials by day, and each action's colour.
struct Tally<'a> {
    actions: BTreeMap<&'a str, usize>,
    per_day: BTreeMap<&'a str, BTreeMap<&'a str, i64>>,
    problems: BTreeMap<&'a str, i64>,
    /// The tallest day (at least 1).
    max: i64,
}

impl<'a> Tally<'a> {
    fn of(counts: &'a [DayCount]) -> Tally<'a> {
        let names: BTreeSet<&str> = counts.iter().map(|c| c.action.as_str()).collect();
        let actions = names.into_iter().enumerate().map(|(i, a)| (a, i)).collect();
        let mut per_day: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
        let mut problems: BTreeMap<&str, i64> = BTreeMap::new();
        for c in counts {
            *per_day
                .entry(c.day.as_str())
                .or_default()
                .entry(c.action.as_str())
                .or_default() += c.count;
            if c.outcome != "success" {
                *problems.entry(c.day.as_str()).or_default() += c.count;
            }
        }
        let max = per_day.values().map(|m| m.values().sum::<i64>()).max();
        Tally {
            actions,
            per_day,
            problems,
            max: max.unwrap_or(0).max(1),
        }
    }

    /// The stacked bar segments and the problem markers, one slot per day.
    fn stack(&self, days: &[String]) -> (Vec<Segment>, Vec<Marker>) {
        // At least 30 slots wide, so that a short range does not draw one huge bar.
        let slot = (CHART_W / days.len().max(30) as i64).max(2);
        let bar = (slot * 3 / 4).max(1);
        let (mut segments, mut markers) = (Vec::new(), Vec::new());
        for (i, day) in days.iter().enumerate() {
            let x = i as i64 * slot;
            let mut y = CHART_H;
            for (action, count) in self.per_day.get(day.as_str()).into_iter().flatten() {
                let h = (count * (CHART_H - 20) / self.max).max(1);
                y -= h;
                segments.push(Segment {
                    x,
                    y,
                    width: bar,
                    height: h,
                    class: palette(self.actions.get(action).copied().unwrap_or(0)),
                    title: format!("{day}: {count} × {action}"),
                });
            }
            if let Some(p) = self.problems.get(day.as_str()) {
                markers.push(Marker {
                    x: x + bar / 2,
                    y: (y - 8).max(6),
                    title: format!("{day}: {p} failed or denied"),
                });
            }
        }
        (segments, markers)
    }
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
    let charts = build_charts(&counts?, &agents?, first, last);
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
