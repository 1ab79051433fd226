//! Benchmark: `/healthz` and a signed-in `/me` at 1, 16 and 64 concurrent clients, on SQLite
//! and on PostgreSQL, with the ratio /me ÷ /healthz and the session writes the load caused.
//!
//! Run with `cargo bench --bench pages` (release build). PostgreSQL is taken from
//! `ADMIN_PORTAL_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! skipped when it cannot be reached. Everything stays on 127.0.0.1 and every load is bounded
//! in requests and in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use helpers::{AGENT, TestApp};

const REQUESTS_PER_LEVEL: usize = 4000;
const TIME_LIMIT: Duration = Duration::from_secs(15);
const LEVELS: [usize; 3] = [1, 16, 64];

struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Run {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, p: f64) -> f64 {
        let i = ((self.latencies.len().max(1) as f64 - 1.0) * p).round() as usize;
        self.latencies
            .get(i)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    }
}

/// Sends `REQUESTS_PER_LEVEL` GETs (or stops at `TIME_LIMIT`) with `concurrency` workers, each
/// with the session cookie; a success is a 200.
async fn load(url: &str, cookie: &str, concurrency: usize) -> Run {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let started = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, counter) = (client.clone(), url.to_string(), counter.clone());
            let cookie = format!("portal_session={cookie}");
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while counter.fetch_add(1, Ordering::Relaxed) < REQUESTS_PER_LEVEL
                    && started.elapsed() < TIME_LIMIT
                {
                    let t0 = Instant::now();
                    match client.get(&url).header("cookie", &cookie).send().await {
                        Ok(r) if r.status() == 200 => {
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
    Run {
        latencies,
        errors,
        elapsed: started.elapsed(),
    }
}

fn row(db: &str, path: &str, c: usize, run: &Run, ratio: &str, writes: &str) {
    println!(
        "| {db:<8} | {path:<8} | {c:>3} | {:>6} | {:>6} | {:>8.0} | {:>8.2} | {:>8.2} | {:>8.2} | {ratio:>6} | {writes:>6} |",
        run.latencies.len(),
        run.errors,
        run.rps(),
        run.ms(0.50),
        run.ms(0.99),
        run.max_ms(),
    );
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

/// Both loads at every level; returns (/me req/s at 64, p99 at 64, max over /me runs).
async fn bench(db: &str, t: &TestApp) -> (f64, f64, f64) {
    let b = t.signed_in(AGENT).await;
    let cookie = b.session_cookie().expect("session cookie");
    let (health, me) = (t.url("/healthz"), t.url("/me"));
    let mut summary = (0.0, 0.0, 0.0f64);
    for c in LEVELS {
        let h = load(&health, &cookie, c).await;
        row(db, "/healthz", c, &h, "", "");
        let writes = t.app.sessions.writes();
        let m = load(&me, &cookie, c).await;
        let ratio = format!("{:.2}", m.rps() / h.rps().max(1.0));
        let writes = (t.app.sessions.writes() - writes).to_string();
        row(db, "/me", c, &m, &ratio, &writes);
        summary.2 = summary.2.max(m.max_ms());
        if c == 64 {
            (summary.0, summary.1) = (m.rps(), m.ms(0.99));
        }
    }
    summary
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "\nPages: {REQUESTS_PER_LEVEL} requests per row (at most {}s), loopback only, one signed-in session\n",
            TIME_LIMIT.as_secs()
        );
        println!("| database | path     |   c |     ok | errors |    req/s | p50 (ms) | p99 (ms) | max (ms) | me/hz  | writes |");
        println!("|----------|----------|-----|--------|--------|----------|----------|----------|----------|--------|--------|");
        let sqlite = TestApp::spawn().await;
        let lite = bench("sqlite", &sqlite).await;
        drop(sqlite);
        let pg = match postgres_url().await {
            Some(url) => {
                let t = TestApp::spawn_with(|c| {
                    c.database.url = url;
                    c.session.agent_requests_per_minute = 0;
                })
                .await;
                Some(bench("postgres", &t).await)
            }
            None => {
                println!("| postgres | (not reachable: skipped) |");
                None
            }
        };
        println!(
            "\nAt 64: /me {:.0} req/s on SQLite (p99 {:.2} ms); max /me latency {:.1} ms",
            lite.0, lite.1, lite.2
        );
        if let Some(pg) = pg {
            println!(
                "At 64: /me {:.0} req/s on PostgreSQL (p99 {:.2} ms, max {:.1} ms): SQLite ÷ PostgreSQL = {:.2}",
                pg.0,
                pg.1,
                pg.2,
                lite.0 / pg.0.max(1.0)
            );
        }
    });
}
