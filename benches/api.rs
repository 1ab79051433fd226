//! Benchmark: the service API's user search at 1, 16 and 64 concurrent clients, next to the
//! simulator's own search endpoint called directly, in the same run.
//!
//! Run with `cargo bench --bench api` (release build). Everything stays on 127.0.0.1 and
//! every load is bounded in requests and in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use helpers::TestApp;

const REQUESTS_PER_LEVEL: usize = 2000;
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Sends `REQUESTS_PER_LEVEL` GETs (or stops at `TIME_LIMIT`) with `concurrency` workers;
/// returns the sorted latencies of the successes, the errors and the elapsed time.
async fn load(url: String, auth: String, concurrency: usize) -> (Vec<Duration>, usize, Duration) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, auth, counter) =
                (client.clone(), url.clone(), auth.clone(), counter.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while counter.fetch_add(1, Ordering::Relaxed) < REQUESTS_PER_LEVEL
                    && started.elapsed() < TIME_LIMIT
                {
                    let t0 = Instant::now();
                    let request = client
                        .get(&url)
                        .header("authorization", &auth)
                        .header("accept", "application/json");
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            latencies.push(t0.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort();
    (latencies, errors, started.elapsed())
}

fn report(
    name: &str,
    concurrency: usize,
    (latencies, errors, elapsed): &(Vec<Duration>, usize, Duration),
) {
    let pct = |p: f64| {
        let i = ((latencies.len().max(1) as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or_default().as_secs_f64() * 1000.0
    };
    let rps = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "| {name:<28} | {concurrency:>3} | {:>6} | {errors:>6} | {rps:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} |",
        latencies.len(),
        pct(0.50),
        pct(0.95),
        pct(0.99),
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
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
        let expression = admin_portal::ops::reads::expression("ada", None).map(|e| e.to_string()).unwrap_or_default();
        let sim_url = format!("{}/api/v1/users?limit=20&search={}", t.sim.base_url(), helpers::url_encode(&expression));
        println!("\nAPI user search: {REQUESTS_PER_LEVEL} requests per level (at most {}s), loopback only\n", TIME_LIMIT.as_secs());
        println!("| target                       |   c |     ok | errors |     req/s | p50 (ms) | p95 (ms) | p99 (ms) |");
        println!("|------------------------------|-----|--------|--------|-----------|----------|----------|----------|");
        for c in [1, 16, 64] {
            report("portal GET /api/v1/users", c, &load(api_url.clone(), format!("Bearer {token}"), c).await);
            report("simulator /api/v1/users", c, &load(sim_url.clone(), format!("SSWS {}", okta_sim::DEMO_API_TOKEN), c).await);
        }
    });
}
