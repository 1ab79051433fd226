//! Memory: the portal's resident set (RSS) idle, and while 200 signed-in agents browse.
//!
//! The portal runs in a process of its own (this benchmark's binary started again in "portal"
//! mode), so its RSS holds the portal alone; the simulator and the load generator stay in the
//! parent. The parent reads the child's `VmRSS` from /proc every 100 ms.
//!
//! Run with `cargo bench --bench memory` (release build, Linux). `MEMORY_AGENTS` and
//! `MEMORY_SECONDS` change the size (defaults 200 and 20). Loopback only; bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helpers::Browser;

const CHILD_ENV: &str = "MEMORY_BENCH_PORTAL_FOR";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Portal mode: serve a portal for the simulator at `sim`, print its URL, run until stdin
/// closes (the parent ended).
async fn portal(sim: &str) {
    admin_portal::startup::init_tls();
    let db = std::env::temp_dir().join(format!("memory-bench-{}.db", std::process::id()));
    let config = admin_portal::demo::config_for_simulator(
        sim,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("sqlite://{}?mode=rwc", db.display()),
    )
    .expect("config");
    let app = admin_portal::Application::build(config.validate().expect("valid"))
        .await
        .expect("portal builds")
        .spawn();
    println!("{}", app.base_url);
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    app.stop().await;
    let _ = std::fs::remove_file(db);
}

/// The child's resident set in MiB.
fn rss_mib(child: &Child) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Starts the portal process for `sim`; returns it and its base URL.
fn start_portal(sim: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, sim)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the portal process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the portal prints its URL");
    (child, line.trim().to_string())
}

/// One agent browsing until `until`: a search, a user page, a short pause.
async fn browse(agent: Browser, user: String, n: usize, until: Instant) -> (usize, usize) {
    let (mut ok, mut other) = (0, 0);
    let mut round = 0;
    while Instant::now() < until {
        for path in [
            format!("/users?q={}", ["a", "be", "car"][(n + round) % 3]),
            format!("/users/{user}"),
        ] {
            match agent.get(&path).await.status.as_u16() {
                200 => ok += 1,
                _ => other += 1,
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(200 + (n as u64 * 37) % 300)).await;
    }
    (ok, other)
}

fn main() {
    if let Ok(sim) = std::env::var(CHILD_ENV) {
        return support::block_on(portal(&sim));
    }
    admin_portal::startup::init_tls();
    support::block_on(async {
        let agents = env_number("MEMORY_AGENTS", 200) as usize;
        let seconds = env_number("MEMORY_SECONDS", 20);
        let sim = okta_sim::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            okta_sim::SimOptions {
                end_users: 50,
                ..Default::default()
            },
        )
        .await
        .expect("simulator");
        // Okta's limits are lifted so that every page is served (the most the portal holds).
        sim.state.set_default_rate_limit(100_000_000);
        let (mut child, base) = start_portal(sim.base_url());
        sim.state.register_client(okta_sim::portal_client(&base));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = rss_mib(&child);
        let logins = support::agents::create(sim.base_url(), "memory", agents).await;
        let mut browsers = Vec::new();
        for login in &logins {
            let b = Browser::new(&base);
            b.sign_in(login, okta_sim::DEMO_PASSWORD, "/").await;
            browsers.push(b);
        }
        let signed_in = rss_mib(&child);
        let users = helpers::plain_active_users(&sim.state);
        let until = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = browsers
            .into_iter()
            .enumerate()
            .map(|(n, b)| tokio::spawn(browse(b, users[n % users.len()].clone(), n, until)))
            .collect();
        let mut peak = signed_in;
        while Instant::now() < until {
            peak = peak.max(rss_mib(&child));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (mut ok, mut other) = (0, 0);
        for task in tasks {
            let (o, x) = task.await.unwrap();
            (ok, other) = (ok + o, other + x);
        }
        let after = rss_mib(&child);
        println!(
            "\nMemory of the portal process (SQLite, release build), {agents} agents for {seconds} s\n"
        );
        println!(
            "| idle MiB | {agents} signed in MiB | peak while browsing MiB | after MiB | pages 200 | other |"
        );
        println!("|---|---|---|---|---|---|");
        println!("| {idle:.1} | {signed_in:.1} | {peak:.1} | {after:.1} | {ok} | {other} |");
        drop(child.stdin.take());
        let _ = child.wait();
        sim.stop().await;
    });
}
