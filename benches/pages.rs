//! Benchmark: the portal's pages beside the simulator's own search, in one run.
//!
//! 1. Throughput at 1, 16 and 64 concurrent clients on SQLite: `/healthz`, a signed-in `/me`,
//!    the search page (the same query again: served by the short search cache; and a new query
//!    each request: one Okta call each), the htmx search fragment, a user page, and the
//!    simulator's `/api/v1/users?search=` called directly. Ratios: `/me` ÷ `/healthz`, search
//!    page and fragment ÷ the simulator, the session rows the `/me` load wrote.
//! 2. `/healthz` and `/me` on PostgreSQL (skipped when it cannot be reached).
//! 3. Round trips per page with Okta 80 ms away: the Okta calls per page (counted at the
//!    simulator) and the median time ÷ the latency.
//!
//! Run with `cargo bench --bench pages` (release build). PostgreSQL is taken from
//! `ADMIN_PORTAL_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Everything stays on 127.0.0.1 and every load is bounded in requests and in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{AGENT, Browser, MANAGER, Page, TestApp};
use okta_sim::{Fault, FaultKind, UserStatus};
use support::load::{Load, Run};

const REQUESTS: usize = 4000;
const TIME_LIMIT: Duration = Duration::from_secs(10);
const LEVELS: [usize; 3] = [1, 16, 64];
const LATENCY: Duration = Duration::from_millis(80);
const RUNS: usize = 7;

fn row(target: &str, c: usize, run: &Run, ratio: &str) {
    println!(
        "| {target:<34} | {c:>3} | {:>6} | {:>6} | {:>7.0} | {:>6.2} | {:>6.2} | {:>6.2} | {:>7.1} | {ratio:>13} |",
        run.latencies.len(),
        run.errors,
        run.rps(),
        run.ms(0.50),
        run.ms(0.95),
        run.ms(0.99),
        run.ms(1.0),
    );
}

fn ratio(a: &Run, b: &Run, what: &str) -> String {
    format!("{:.2}× {what}", a.rps() / b.rps().max(1.0))
}

/// Table 1: every target at every level.
async fn throughput(t: &TestApp) {
    let agent = t.signed_in(AGENT).await;
    let cookie = format!("portal_session={}", agent.session_cookie().expect("cookie"));
    let portal =
        |n| Load::new(reqwest::Client::new(), n, TIME_LIMIT).header("cookie", cookie.clone());
    let user = t.plain_active_user();
    let sim_url = support::sim_search_url(t.sim.base_url(), "ada");
    let sim = Load::new(reqwest::Client::new(), REQUESTS, TIME_LIMIT)
        .header(
            "authorization",
            format!("SSWS {}", okta_sim::DEMO_API_TOKEN),
        )
        .header("accept", "application/json");
    let at = |path: String| {
        let url = t.url(&path);
        move |_| url.clone()
    };
    println!(
        "\nPages on SQLite: at most {REQUESTS} requests or {}s per row, one signed-in session, loopback\n",
        TIME_LIMIT.as_secs()
    );
    println!(
        "| target                             |   c |     ok | errors |   req/s | p50 ms | p95 ms | p99 ms |  max ms | ratio         |"
    );
    println!(
        "|------------------------------------|-----|--------|--------|---------|--------|--------|--------|---------|---------------|"
    );
    for c in LEVELS {
        let health = portal(REQUESTS).run(c, at("/healthz".into())).await;
        row("`/healthz`", c, &health, "");
        let writes = t.app.sessions.writes();
        let me = portal(REQUESTS).run(c, at("/me".into())).await;
        let written = t.app.sessions.writes() - writes;
        row(
            "`/me`",
            c,
            &me,
            &format!("{} ({written} writes)", ratio(&me, &health, "hz")),
        );
        let u = sim_url.clone();
        let direct = sim.run(c, move |_| u.clone()).await;
        let page = portal(REQUESTS).run(c, at("/users?q=ada".into())).await;
        row(
            "search page, same query",
            c,
            &page,
            &ratio(&page, &direct, "sim"),
        );
        let fragment = portal(REQUESTS)
            .header("hx-request", "true")
            .run(c, at("/users?q=ada".into()))
            .await;
        row(
            "search fragment (htmx), same query",
            c,
            &fragment,
            &ratio(&fragment, &direct, "sim"),
        );
        let base = t.url("/users?q=ad");
        let fresh = portal(REQUESTS)
            .run(c, move |n| format!("{base}{n}x{c}"))
            .await;
        row(
            "search page, a new query each",
            c,
            &fresh,
            &ratio(&fresh, &direct, "sim"),
        );
        let base = t.url("/users?q=af");
        let fresh_fragment = portal(REQUESTS)
            .header("hx-request", "true")
            .run(c, move |n| format!("{base}{n}x{c}"))
            .await;
        row(
            "search fragment (htmx), a new query each",
            c,
            &fresh_fragment,
            &ratio(&fresh_fragment, &direct, "sim"),
        );
        let detail = portal(REQUESTS).run(c, at(format!("/users/{user}"))).await;
        row(
            "user page (4 Okta calls)",
            c,
            &detail,
            &ratio(&detail, &direct, "sim"),
        );
        row("simulator `/api/v1/users?search=`", c, &direct, "");
    }
}

/// A database URL on a fresh schema of the PostgreSQL server, if it answers.
async fn postgres_url() -> Option<String> {
    let url = std::env::var("ADMIN_PORTAL_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = sqlx::PgPool::connect(&url).await.ok()?;
    let schema = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .ok()?;
    pool.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// Table 2: `/healthz` and `/me` on PostgreSQL.
async fn postgres() {
    let Some(url) = postgres_url().await else {
        println!("\nPostgreSQL not reachable: skipped");
        return;
    };
    let t = TestApp::spawn_with(|c| {
        c.database.url = url;
        c.session.agent_requests_per_minute = 0;
    })
    .await;
    let agent = t.signed_in(AGENT).await;
    let cookie = format!("portal_session={}", agent.session_cookie().expect("cookie"));
    let load = Load::new(reqwest::Client::new(), REQUESTS, TIME_LIMIT).header("cookie", cookie);
    println!("\nPostgreSQL\n");
    println!(
        "| target                             |   c |     ok | errors |   req/s | p50 ms | p95 ms | p99 ms |  max ms | ratio         |"
    );
    println!(
        "|------------------------------------|-----|--------|--------|---------|--------|--------|--------|---------|---------------|"
    );
    for c in LEVELS {
        let (hz, me) = (t.url("/healthz"), t.url("/me"));
        let health = load.run(c, move |_| hz.clone()).await;
        row("`/healthz`", c, &health, "");
        let writes = t.app.sessions.writes();
        let run = load.run(c, move |_| me.clone()).await;
        let written = t.app.sessions.writes() - writes;
        row(
            "`/me`",
            c,
            &run,
            &format!("{} ({written} writes)", ratio(&run, &health, "hz")),
        );
    }
}

enum Visit {
    Search(&'static str),
    Get(String),
    Post(String),
}

async fn visit(agent: &Browser, csrf: &str, visit: &Visit, run: usize) -> Page {
    match visit {
        // A new query each time: a search repeated within 5 s would come from the cache.
        Visit::Search(q) => agent.get(&format!("/users?q={q}{run}")).await,
        Visit::Get(path) => agent.get(path).await,
        Visit::Post(path) => {
            let form = [
                ("_csrf", csrf),
                ("reason", "Fraud review"),
                ("ticket", "SUP-3"),
            ];
            agent.post_form(path, &form).await
        }
    }
}

/// Table 3: round trips per page with Okta `LATENCY` away.
async fn round_trips() {
    let t = TestApp::spawn_with(|c| c.session.agent_requests_per_minute = 0).await;
    let agent = t.signed_in(MANAGER).await;
    let csrf = agent.csrf_token().await;
    let id = t.plain_active_user();
    let login = t.sim().user(&id).unwrap().login;
    assert_eq!(agent.get("/users?q=a").await.status, 200, "warm-up");
    t.sim()
        .inject_fault(Fault::new("*", "/api/v1/", FaultKind::Latency(LATENCY)).times(1_000_000));
    let pages = [
        ("search page (a new query each load)", Visit::Search("be")),
        ("user page by Okta id", Visit::Get(format!("/users/{id}"))),
        ("user page by login", Visit::Get(format!("/users/{login}"))),
        (
            "confirmation page",
            Visit::Get(format!("/users/{id}/suspend")),
        ),
        (
            "lifecycle POST (suspend)",
            Visit::Post(format!("/users/{id}/suspend")),
        ),
    ];
    println!(
        "\nRound trips per page, Okta {} ms away, {RUNS} loads each (median)\n",
        LATENCY.as_millis()
    );
    println!("| page | Okta calls | median ms | round trips |");
    println!("|---|---|---|---|");
    for (name, page) in &pages {
        let (mut times, mut calls) = (Vec::new(), 0);
        for run in 0..RUNS {
            if matches!(page, Visit::Post(_)) {
                t.sim().set_user_status(&id, UserStatus::Active);
            }
            let before = t.sim().request_count("*", "/api/v1/");
            let started = Instant::now();
            let answer = visit(&agent, &csrf, page, run).await;
            times.push(started.elapsed());
            calls = t.sim().request_count("*", "/api/v1/") - before;
            assert!(
                answer.status == 200 || answer.status.is_redirection(),
                "{name}: {}",
                answer.status
            );
        }
        times.sort();
        let median = support::percentile_ms(&times, 0.5);
        println!(
            "| {name} | {calls} | {median:.0} | {:.1} |",
            median / LATENCY.as_secs_f64() / 1000.0
        );
    }
}

fn main() {
    support::block_on(async {
        let t = TestApp::spawn_with(|c| c.session.agent_requests_per_minute = 0).await;
        // The simulator's limits are lifted: the benchmark measures the code, not Okta's limiter.
        t.sim().set_default_rate_limit(100_000_000);
        throughput(&t).await;
        drop(t);
        postgres().await;
        round_trips().await;
    });
}
