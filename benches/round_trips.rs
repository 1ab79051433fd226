//! Round trips per page with Okta far away: every Management API call waits `LATENCY` at the
//! simulator, each page is loaded `RUNS` times one after another, and the table gives the
//! Okta calls per page (counted at the simulator), the median time, and that time divided by
//! the latency: the round trips an agent waits for.
//!
//! Run with `cargo bench --bench round_trips`. Loopback only; bounded in count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{Browser, MANAGER, Page, TestApp};
use okta_sim::{Fault, FaultKind, UserStatus};

const LATENCY: Duration = Duration::from_millis(80);
const RUNS: usize = 7;

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

fn main() {
    support::block_on(async {
        let t = TestApp::spawn_with(|c| c.session.agent_requests_per_minute = 0).await;
        let agent = t.signed_in(MANAGER).await;
        let csrf = agent.csrf_token().await;
        let id = t.plain_active_user();
        let login = t.sim().user(&id).unwrap().login;
        assert_eq!(agent.get("/users?q=a").await.status, 200, "warm-up");
        t.sim().inject_fault(
            Fault::new("*", "/api/v1/", FaultKind::Latency(LATENCY)).times(1_000_000),
        );
        let pages = [
            ("search page `/users?q=be{n}`", Visit::Search("be")),
            ("user page by Okta id", Visit::Get(format!("/users/{id}"))),
            ("user page by login", Visit::Get(format!("/users/{login}"))),
            (
                "confirmation `/users/{id}/suspend`",
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
            let mut times = Vec::new();
            let mut calls = 0;
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
            let median = times[RUNS / 2].as_secs_f64() * 1000.0;
            println!(
                "| {name} | {calls} | {median:.0} | {:.1} |",
                median / LATENCY.as_secs_f64() / 1000.0
            );
        }
    });
}
