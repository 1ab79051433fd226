//! Benchmark: the activity pages and the CSV export over 1,000,000 audit records, on SQLite
//! and (when `ADMIN_PORTAL_TEST_POSTGRES_URL` is set) PostgreSQL.
//!
//! Run with `cargo bench --bench activity` (release). `AUDIT_BENCH_ROWS` changes the row
//! count. Everything stays on 127.0.0.1; every loop is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{MANAGER, TestApp};

const SAMPLES: usize = 15;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn measure(b: &helpers::Browser, name: &str, url: &str) {
    let mut times = Vec::new();
    for _ in 0..SAMPLES {
        let t0 = Instant::now();
        let page = b.get(url).await;
        assert_eq!(page.status, 200, "{url}");
        times.push(t0.elapsed());
    }
    times.sort();
    println!(
        "| {name:<44} | {:>8.1} | {:>8.1} |",
        pct(&times, 0.5),
        pct(&times, 0.95)
    );
}

async fn run(backend: &str, url: String, rows: u64) {
    let t = TestApp::spawn_with(|c| c.database.url = url).await;
    let started = Instant::now();
    t.app.state.audit.seed_bench(rows).await.expect("seed");
    let seeded = started.elapsed();
    let b = t.signed_in(MANAGER).await;
    let today = time::OffsetDateTime::now_utc().date();
    let week_ago = today - time::Duration::days(7);
    println!(
        "\n### {backend}: {rows} records (seeded in {:.1}s)\n",
        seeded.as_secs_f64()
    );
    println!("| page ({SAMPLES} sequential requests)                | p50 (ms) | p95 (ms) |");
    println!("|----------------------------------------------|----------|----------|");
    measure(&b, "/activity (no filter)", "/activity").await;
    measure(&b, "/activity/charts (last 30 days)", "/activity/charts").await;
    measure(
        &b,
        "/activity?agent=…",
        "/activity?agent=agent7%40example.com",
    )
    .await;
    measure(
        &b,
        "/activity?target=… (login)",
        "/activity?target=user123%40example.com",
    )
    .await;
    measure(
        &b,
        "/activity?action=user.suspend&outcome=failure",
        "/activity?action=user.suspend&outcome=failure",
    )
    .await;
    measure(
        &b,
        "/activity?from=…&to=… (one week)",
        &format!("/activity?from={week_ago}&to={today}"),
    )
    .await;
    measure(
        &b,
        "older page (keyset, ?before=)",
        "/activity?before=500000",
    )
    .await;
    measure(
        &b,
        "/activity/agents/{sub} (timeline)",
        "/activity/agents/00uSeedAgent00000007",
    )
    .await;
    // Full export: rows per second and the process's peak memory while streaming.
    let baseline = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampler_peak = peak.clone();
    let sampler = tokio::spawn(async move {
        loop {
            sampler_peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let t0 = Instant::now();
    let mut response = b
        .client
        .get(t.url("/activity/export.csv"))
        .send()
        .await
        .expect("export");
    let mut bytes = 0usize;
    let mut lines = 0usize;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        bytes += chunk.len();
        lines += chunk.iter().filter(|c| **c == b'\n').count();
    }
    let elapsed = t0.elapsed();
    sampler.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "\nCSV export: {} rows, {:.1} MiB in {:.1}s = {:.0} rows/s; process RSS {} MiB before, peak {} MiB during the export",
        lines - 1,
        bytes as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        (lines - 1) as f64 / elapsed.as_secs_f64(),
        baseline / 1024,
        peak / 1024
    );
}

fn main() {
    let rows: u64 = std::env::var("AUDIT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = std::env::temp_dir().join("admin-portal-bench");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("activity-{}.db", uuid::Uuid::new_v4().simple()));
        run("SQLite", format!("sqlite://{}", file.display()), rows).await;
        let _ = std::fs::remove_file(&file);
        match std::env::var(helpers::POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => {
                let url = helpers::test_database_url().await;
                run("PostgreSQL", url, rows).await;
            }
            _ => println!(
                "\n(PostgreSQL skipped: set {} to include it)",
                helpers::POSTGRES_ENV
            ),
        }
    });
}
