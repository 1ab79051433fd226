//! `/users`: one box that understands email, login, name and id, plus status and group
//! filters; live results with htmx, cursor pagination, shareable URLs.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::auth::extract::{Authenticated, Require};
use crate::auth::policy::perm;
use axum::http::StatusCode;

use crate::error::{AppError, okta_status};
use crate::okta::OktaError;
use crate::okta::models::{Group, User, UserStatus};
use crate::okta::search::Search;
use crate::okta::users::{UserPage, UserQuery};
use crate::state::AppState;
use crate::web::htmx;
use crate::web::layout::PageCtx;

#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub status: String,
    /// A group id: only its members.
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub after: Option<String>,
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub login: String,
    pub email: String,
    pub status: UserStatus,
}

impl From<User> for Row {
    fn from(u: User) -> Row {
        Row {
            name: u.display_name(),
            login: u.profile.login.clone(),
            email: u.profile.email.clone().unwrap_or_default(),
            status: u.status,
            id: u.id,
        }
    }
}

/// What the results area shows.
pub struct Results {
    pub rows: Vec<Row>,
    /// Link to the next page (the same query plus Okta's cursor).
    pub next_url: Option<String>,
    pub error: Option<(String, String)>,
    /// True when the query is empty (the list of everyone).
    pub browsing: bool,
    pub paged: bool,
}

#[derive(Template)]
#[template(path = "users/search.html")]
struct SearchPage {
    ctx: PageCtx,
    params: SearchParams,
    statuses: Vec<(&'static str, &'static str, bool)>,
    groups: Vec<(String, String, bool)>,
    results: Results,
    request_id: String,
}

#[derive(Template)]
#[template(path = "users/_results.html")]
struct ResultsFragment {
    results: Results,
    request_id: String,
}

fn is_okta_id(q: &str) -> bool {
    q.len() == 20 && q.starts_with("00u") && q.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Turns what an agent typed into a `search` expression.
pub fn expression(q: &str, status: Option<UserStatus>) -> Option<Search> {
    let q = q.trim();
    let text = if q.is_empty() {
        None
    } else if is_okta_id(q) {
        Some(Search::eq("id", q))
    } else if q.contains('@') {
        Search::any(vec![
            Search::sw("profile.login", q),
            Search::sw("profile.email", q),
        ])
    } else {
        let words: Vec<&str> = q.split_whitespace().collect();
        match words.as_slice() {
            [one] => Search::any(vec![
                Search::sw("profile.firstName", *one),
                Search::sw("profile.lastName", *one),
                Search::sw("profile.login", *one),
                Search::sw("profile.email", *one),
            ]),
            [first, rest @ ..] => {
                let rest = rest.join(" ");
                Search::any(vec![
                    Search::sw("profile.firstName", *first)
                        .and(Search::sw("profile.lastName", rest.clone())),
                    Search::sw("profile.lastName", *first)
                        .and(Search::sw("profile.firstName", rest)),
                    Search::sw("profile.login", q),
                ])
            }
            [] => None,
        }
    };
    let status = status.map(|s| Search::eq("status", s.as_str()));
    match (text, status) {
        (Some(t), Some(s)) => Some(s.and(t)),
        (t, s) => t.or(s),
    }
}

fn query_string(params: &SearchParams, after: Option<&str>) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    if !params.q.is_empty() {
        pairs.append_pair("q", &params.q);
    }
    if !params.status.is_empty() {
        pairs.append_pair("status", &params.status);
    }
    if !params.group.is_empty() {
        pairs.append_pair("group", &params.group);
    }
    if let Some(after) = after {
        pairs.append_pair("after", after);
    }
    let qs = pairs.finish();
    if qs.is_empty() {
        "/users".into()
    } else {
        format!("/users?{qs}")
    }
}

/// Whether a user matches the box the way the `search` expression would (used inside a
/// group, where Okta offers no search).
pub fn matches(user: &User, q: &str, status: Option<UserStatus>) -> bool {
    if status.is_some_and(|s| s != user.status) {
        return false;
    }
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    if is_okta_id(q.as_str()) {
        return user.id.to_lowercase() == q;
    }
    let starts =
        |v: Option<&str>, prefix: &str| v.is_some_and(|v| v.to_lowercase().starts_with(prefix));
    let p = &user.profile;
    let (first, last) = (p.first_name.as_deref(), p.last_name.as_deref());
    if starts(Some(&p.login), &q) || starts(p.email.as_deref(), &q) {
        return true;
    }
    let words: Vec<&str> = q.split_whitespace().collect();
    match words.as_slice() {
        [one] => starts(first, one) || starts(last, one),
        [a, rest @ ..] => {
            let rest = rest.join(" ");
            (starts(first, a) && starts(last, &rest)) || (starts(last, a) && starts(first, &rest))
        }
        [] => true,
    }
}

/// A page of users (or the failure) as search results.
fn results_of(
    page: Result<UserPage, OktaError>,
    params: &SearchParams,
    browsing: bool,
    keep: impl Fn(&User) -> bool,
) -> (Results, Option<StatusCode>) {
    match page {
        Ok(page) => (
            Results {
                next_url: page
                    .next_after
                    .as_deref()
                    .map(|a| query_string(params, Some(a))),
                rows: page
                    .users
                    .into_iter()
                    .filter(|u| keep(u))
                    .map(Row::from)
                    .collect(),
                error: None,
                browsing,
                paged: params.after.is_some(),
            },
            None,
        ),
        Err(e) => (
            Results {
                rows: Vec::new(),
                next_url: None,
                error: Some(okta_failure(&e)),
                browsing,
                paged: false,
            },
            Some(okta_status(e.kind)),
        ),
    }
}

async fn search_group(state: &AppState, params: &SearchParams) -> (Results, Option<StatusCode>) {
    let status = UserStatus::parse(&params.status);
    let after = params.after.clone().filter(|a| !a.is_empty());
    let page = state.okta.group_members(&params.group, 200, after).await;
    results_of(page, params, false, |u| matches(u, &params.q, status))
}

pub async fn run_search(state: &AppState, params: &SearchParams) -> (Results, Option<StatusCode>) {
    if !params.group.is_empty() {
        return search_group(state, params).await;
    }
    let status = UserStatus::parse(&params.status);
    let search = expression(&params.q, status);
    let browsing = search.is_none();
    let query = UserQuery {
        search,
        limit: Some(state.config.users.page_size),
        after: params.after.clone().filter(|a| !a.is_empty()),
        ..UserQuery::default()
    };
    let page = state.okta.list_users(query).await;
    results_of(page, params, browsing, |_| true)
}

/// The status of a page or fragment whose search failed.
fn status_of(results: &Results, failure: Option<StatusCode>) -> StatusCode {
    match (&results.error, failure) {
        (Some(_), Some(status)) => status,
        _ => StatusCode::OK,
    }
}

/// The message and Okta request id of a failed call, logged once.
pub fn okta_failure(e: &OktaError) -> (String, String) {
    tracing::warn!(kind = ?e.kind, code = e.code.as_deref().unwrap_or("-"), okta_request_id = e.request_id.as_deref().unwrap_or("-"), summary = %e.summary, "Okta call failed");
    (e.plain_message(), e.request_id.clone().unwrap_or_default())
}

pub async fn page(
    State(state): State<AppState>,
    agent: Require<perm::UsersRead>,
    headers: HeaderMap,
    Query(params): Query<SearchParams>,
) -> Result<Response, AppError> {
    if htmx::wants_fragment(&headers) {
        return live_results(&state, &agent, &params).await;
    }
    let ctx = PageCtx::for_agent(&agent, "users").await?;
    let request_id = agent.meta().request_id.clone();
    // Independent Okta calls run concurrently. The group list is a convenience: if it
    // cannot be read the page still works.
    let ((results, failure), groups) =
        tokio::join!(run_search(&state, &params), state.okta.list_groups("", 200));
    let page = SearchPage {
        ctx,
        statuses: status_choices(&params.status),
        groups: groups
            .map(|gs| group_choices(gs, &params.group))
            .unwrap_or_default(),
        params,
        results,
        request_id,
    };
    Ok((status_of(&page.results, failure), Html(page.render()?)).into_response())
}

/// The results fragment of a live search. A newer search of the same agent (another
/// keystroke) cancels this one before it reaches Okta (or while Okta answers): it gets
/// `204 No Content`, which htmx leaves unswapped.
async fn live_results(
    state: &AppState,
    agent: &Require<perm::UsersRead>,
    params: &SearchParams,
) -> Result<Response, AppError> {
    let search = run_search(state, params);
    let who = &agent.principal().subject;
    let Ok((results, failure)) = state.live_searches.run(who, search).await else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let status = status_of(&results, failure);
    let fragment = ResultsFragment {
        results,
        request_id: agent.meta().request_id.clone(),
    };
    Ok((status, Html(fragment.render()?)).into_response())
}

/// (id, name, selected) of every group, for the filter.
fn group_choices(groups: Vec<Group>, selected: &str) -> Vec<(String, String, bool)> {
    let choice = |g: Group| {
        let chosen = g.id == selected;
        (g.id, g.profile.name, chosen)
    };
    groups.into_iter().map(choice).collect()
}

/// (value, label, selected) of every status, for the filter.
fn status_choices(selected: &str) -> Vec<(&'static str, &'static str, bool)> {
    let choice = |s: &UserStatus| (s.as_str(), s.label(), s.as_str() == selected);
    UserStatus::ALL.iter().map(choice).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_understands_ids_emails_and_names() {
        assert_eq!(
            expression("00u1a2b3c4D5e6F7g8h9", None)
                .unwrap()
                .to_string(),
            r#"id eq "00u1a2b3c4D5e6F7g8h9""#
        );
        assert_eq!(
            expression("ada@ex", None).unwrap().to_string(),
            r#"profile.login sw "ada@ex" or profile.email sw "ada@ex""#
        );
        assert_eq!(
            expression("Love", Some(UserStatus::Active))
                .unwrap()
                .to_string(),
            r#"status eq "ACTIVE" and (profile.firstName sw "Love" or profile.lastName sw "Love" or profile.login sw "Love" or profile.email sw "Love")"#
        );
        let two = expression("Ada Love", None).unwrap().to_string();
        assert!(two.starts_with(r#"(profile.firstName sw "Ada" and profile.lastName sw "Love") or (profile.lastName sw "Ada" and profile.firstName sw "Love")"#), "{two}");
        assert_eq!(expression("  ", None), None);
        assert_eq!(
            expression("", Some(UserStatus::LockedOut))
                .unwrap()
                .to_string(),
            r#"status eq "LOCKED_OUT""#
        );
    }

    #[test]
    fn quotes_in_the_box_stay_inside_the_literal() {
        let e = expression(r#"x" or status eq "ACTIVE"#, None)
            .unwrap()
            .to_string();
        assert!(e.contains(r#"sw "x\" or"#), "{e}");
    }

    #[test]
    fn local_matching_inside_a_group_follows_the_box_rules() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": "00u1a2b3c4D5e6F7g8h9", "status": "ACTIVE",
            "profile": {"login": "ada.lovelace@example.com", "email": "ada@example.org", "firstName": "Ada", "lastName": "Lovelace"}
        }))
        .unwrap();
        for q in [
            "",
            "ada",
            "LOVE",
            "ada love",
            "love ada",
            "ada.lov",
            "ada@ex",
            "00u1a2b3c4d5e6f7g8h9",
        ] {
            assert!(matches(&user, q, None), "{q}");
        }
        for q in ["bob", "ada bob", "example.com", "00u1a2b3c4D5e6F7g8h0"] {
            assert!(!matches(&user, q, None), "{q}");
        }
        assert!(!matches(&user, "ada", Some(UserStatus::Suspended)));
    }

    #[test]
    fn next_page_urls_keep_the_query() {
        let params = SearchParams {
            q: "ada love".into(),
            status: "ACTIVE".into(),
            group: String::new(),
            after: None,
        };
        assert_eq!(
            query_string(&params, Some("00uX")),
            "/users?q=ada+love&status=ACTIVE&after=00uX"
        );
        assert_eq!(query_string(&SearchParams::default(), None), "/users");
    }
}
