//! Benchmark: the authenticated user search page at 1, 16 and 64 concurrent clients, next to
//! the simulator's own search endpoint called directly, in the same run.
//!
//! Run with `cargo bench --bench search` (release build). Everything stays on 127.0.0.1 and
//! every load is bounded in requests and in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use helpers::{AGENT, TestApp};

const REQUESTS_PER_LEVEL: usize = 2000;
const TIME_LIMIT: Duration = Duration::from_secs(20);

struct Stats {
    concurrency: usize,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[idx]
    }
}

/// Sends `REQUESTS_PER_LEVEL` GETs (or stops at `TIME_LIMIT`) with `concurrency` workers.
async fn load(
    client: reqwest::Client,
    url: String,
    headers: Vec<(&'static str, String)>,
    concurrency: usize,
) -> Stats {
    let started = Instant::now();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        let headers = headers.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS_PER_LEVEL
                && started.elapsed() < TIME_LIMIT
            {
                let mut request = client.get(&url);
                for (k, v) in &headers {
                    request = request.header(*k, v);
                }
                let t0 = Instant::now();
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t0.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort();
    Stats {
        concurrency,
        requests: latencies.len(),
        errors,
        elapsed: started.elapsed(),
        latencies,
    }
}

fn report(name: &str, s: &Stats) {
    let rps = s.requests as f64 / s.elapsed.as_secs_f64();
    println!(
        "| {name:<28} | {:>3} | {:>6} | {:>6} | {:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} |",
        s.concurrency,
        s.requests,
        s.errors,
        rps,
        s.percentile(0.50).as_secs_f64() * 1000.0,
        s.percentile(0.95).as_secs_f64() * 1000.0,
        s.percentile(0.99).as_secs_f64() * 1000.0,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Raise the simulator's rate limits so the benchmark measures the code, not the limiter.
        let t = TestApp::spawn_with(|c| c.session.agent_requests_per_minute = 0).await;
        t.sim().set_rate_limit("GET /api/v1/users", 1_000_000);
        let agent = t.signed_in(AGENT).await;
        let search = "ada";
        let portal_url = t.url(&format!("/users?q={search}"));
        let expression = admin_portal::web::users::search::expression(search, None)
            .map(|e| e.to_string())
            .unwrap_or_default();
        let sim_url = format!(
            "{}/api/v1/users?limit=20&search={}",
            t.sim.base_url(),
            helpers::url_encode(&expression)
        );
        let direct = reqwest::Client::builder().build().expect("client");
        println!("\nUser search: {REQUESTS_PER_LEVEL} requests per level (at most {}s), loopback only\n", TIME_LIMIT.as_secs());
        println!("| target                       |   c |     ok | errors |     req/s | p50 (ms) | p95 (ms) | p99 (ms) |");
        println!("|------------------------------|-----|--------|--------|-----------|----------|----------|----------|");
        for c in [1, 16, 64] {
            let s = load(agent.client.clone(), portal_url.clone(), vec![], c).await;
            report("portal /users?q=ada (page)", &s);
            let s = load(agent.client.clone(), portal_url.clone(), vec![("hx-request", "true".into())], c).await;
            report("portal /users?q=ada (htmx)", &s);
            let s = load(
                direct.clone(),
                sim_url.clone(),
                vec![("authorization", "SSWS demo-ssws-token".into()), ("accept", "application/json".into())],
                c,
            )
            .await;
            report("simulator /api/v1/users", &s);
        }
    });
}
