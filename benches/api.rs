//! Benchmark: the service API's user search at 1, 16 and 64 concurrent clients, next to the
//! simulator's own search endpoint called directly, in the same run.
//!
//! Run with `cargo bench --bench api` (release build). Everything stays on 127.0.0.1 and
//! every load is bounded in requests and in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Duration;

use helpers::TestApp;
use support::load::{Load, Run};

const REQUESTS_PER_LEVEL: usize = 2000;
const TIME_LIMIT: Duration = Duration::from_secs(20);

fn report(name: &str, concurrency: usize, run: &Run) {
    println!(
        "| {name:<28} | {concurrency:>3} | {:>6} | {:>6} | {:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} |",
        run.latencies.len(),
        run.errors,
        run.rps(),
        run.ms(0.50),
        run.ms(0.95),
        run.ms(0.99),
    );
}

async fn support_token(t: &TestApp) -> String {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/token", t.sim.issuer()))
        .basic_auth(
            okta_sim::SUPPORT_APP_CLIENT_ID,
            Some(okta_sim::SUPPORT_APP_SECRET),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.users.read"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token body");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

fn main() {
    support::block_on(async {
        // Raise the per-client and the simulator's limits: the benchmark measures the code.
        let t = TestApp::spawn_with(|c| {
            for client in &mut c.api.clients {
                client.requests_per_minute = 10_000_000;
                client.burst = 1_000_000;
            }
        })
        .await;
        t.sim().set_rate_limit("GET /api/v1/users", 1_000_000);
        let token = support_token(&t).await;
        let api_url = t.url("/api/v1/users?q=ada&limit=20");
        let sim_url = support::sim_search_url(t.sim.base_url(), "ada");
        let load = |auth: String| {
            Load::new(reqwest::Client::new(), REQUESTS_PER_LEVEL, TIME_LIMIT)
                .header("authorization", auth)
                .header("accept", "application/json")
        };
        let (portal, sim) = (
            load(format!("Bearer {token}")),
            load(format!("SSWS {}", okta_sim::DEMO_API_TOKEN)),
        );
        println!(
            "\nAPI user search: {REQUESTS_PER_LEVEL} requests per level (at most {}s), loopback only\n",
            TIME_LIMIT.as_secs()
        );
        println!(
            "| target                       |   c |     ok | errors |     req/s | p50 (ms) | p95 (ms) | p99 (ms) |"
        );
        println!(
            "|------------------------------|-----|--------|--------|-----------|----------|----------|----------|"
        );
        for c in [1, 16, 64] {
            let u = api_url.clone();
            report(
                "portal GET /api/v1/users",
                c,
                &portal.run(c, move |_| u.clone()).await,
            );
            let u = sim_url.clone();
            report(
                "simulator /api/v1/users",
                c,
                &sim.run(c, move |_| u.clone()).await,
            );
        }
    });
}
