//! Soak: 200 agents working for 60 s across three portal instances (one database, one Redis,
//! one simulator with Okta's default limits, a round-robin front), as agents on calls would:
//! search, open a user, now and then unlock someone, with a short pause between pages.
//! Reports the Okta calls made, Okta's 429s (must be 0), the portal's busy answers, page
//! latency (p50/p95/p99) and errors.
//!
//! Run with `cargo bench --bench soak` (release build). `SOAK_AGENTS` and `SOAK_SECONDS`
//! change the size (defaults 200 and 60). Loopback only; bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

/// The test's three-instance cluster (its tests are compiled out here, hence the allowances).
#[path = "../tests/it/cluster.rs"]
#[allow(dead_code, unused_imports)]
mod cluster;

use std::time::{Duration, Instant};

use cluster::Cluster;
use helpers::Browser;
use okta_sim::UserStatus;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    busy: usize,
    errors: usize,
    unlocks: Vec<Duration>,
    /// Refused unlocks by status (429: the plain "Okta is busy" page).
    unlock_failures: std::collections::BTreeMap<u16, usize>,
}

/// One agent until `until`: a search, the page of the agent's own customer, a pause; every
/// tenth round the customer is locked out (in Okta) and the agent unlocks them.
async fn agent_loop(
    agent: Browser,
    sim: okta_sim::SimState,
    n: usize,
    customer: String,
    until: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let csrf = agent.csrf_token().await;
    let mut round = 0usize;
    while Instant::now() < until {
        let paths = [
            format!(
                "/users?q={}",
                ["a", "be", "car", "da", "el"][(n + round) % 5]
            ),
            format!("/users/{customer}"),
        ];
        for path in paths {
            let started = Instant::now();
            let page = agent.get(&path).await;
            match page.status.as_u16() {
                200 => tally.latencies.push(started.elapsed()),
                429 => tally.busy += 1,
                _ => tally.errors += 1,
            }
        }
        if round % 10 == 3 {
            sim.set_user_status(&customer, UserStatus::LockedOut);
            let form = [
                ("_csrf", csrf.as_str()),
                ("reason", "Caller locked out"),
                ("ticket", "SUP-1"),
            ];
            let started = Instant::now();
            let page = agent
                .post_form(&format!("/users/{customer}/unlock"), &form)
                .await;
            if page.status.is_redirection()
                && sim
                    .user(&customer)
                    .is_some_and(|u| u.status == UserStatus::Active)
            {
                tally.unlocks.push(started.elapsed());
            } else {
                *tally
                    .unlock_failures
                    .entry(page.status.as_u16())
                    .or_default() += 1;
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(
            500 + (n as u64 * 37 + round as u64 * 11) % 1000,
        ))
        .await;
    }
    tally
}

fn main() {
    support::block_on(async {
        let (agents, seconds) = (
            env_number("SOAK_AGENTS", 200) as usize,
            env_number("SOAK_SECONDS", 60),
        );
        let c = Cluster::spawn_sized(3, agents * 2, |_| {}).await;
        let logins = support::agents::create(c.sim.base_url(), "soak", agents).await;
        let mut browsers = Vec::new();
        for login in &logins {
            browsers.push(c.signed_in(login).await);
        }
        let users = helpers::plain_active_users(&c.sim.state);
        let calls_before = c.sim.state.request_count("*", "/api/v1/");
        let until = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = browsers
            .into_iter()
            .enumerate()
            .map(|(n, b)| {
                tokio::spawn(agent_loop(
                    b,
                    c.sim.state.clone(),
                    n,
                    users[n % users.len()].clone(),
                    until,
                ))
            })
            .collect();
        let mut all = Tally::default();
        for task in tasks {
            let t = task.await.unwrap();
            all.latencies.extend(t.latencies);
            all.unlocks.extend(t.unlocks);
            (all.busy, all.errors) = (all.busy + t.busy, all.errors + t.errors);
            for (status, n) in t.unlock_failures {
                *all.unlock_failures.entry(status).or_default() += n;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.latencies.sort();
        all.unlocks.sort();
        let pct = |p: f64| support::percentile_ms(&all.latencies, p);
        let calls = c.sim.state.request_count("*", "/api/v1/") - calls_before;
        println!(
            "\nSoak: {agents} agents, {seconds} s, three instances (one database, one Redis), Okta's default limits\n"
        );
        println!(
            "| pages served | busy (429) | errors | Okta calls | Okta calls/min | Okta 429s | page p50 ms | p95 ms | p99 ms | connections per instance |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {} | {} | {calls} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:?} |",
            all.latencies.len(),
            all.busy,
            all.errors,
            calls as f64 * 60.0 / elapsed,
            c.sim.state.rate_limited_answers(),
            pct(0.50),
            pct(0.95),
            pct(0.99),
            c.served()
        );
        println!(
            "\n| unlocks done | unlocks refused (by status) | unlock p50 ms | p95 ms | max ms |"
        );
        println!("|---|---|---|---|---|");
        println!(
            "| {} | {:?} | {:.1} | {:.1} | {:.1} |",
            all.unlocks.len(),
            all.unlock_failures,
            support::percentile_ms(&all.unlocks, 0.5),
            support::percentile_ms(&all.unlocks, 0.95),
            support::percentile_ms(&all.unlocks, 1.0)
        );
    });
}
