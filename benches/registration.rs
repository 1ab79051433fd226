//! Benchmark: does the registration edge's answer time tell whether an account exists?
//!
//! The simulator is put 30 ms away (every Management API call waits 30 ms, as a real org
//! 30 ms away would), and the four cases are sent through the edge's JSON API, interleaved,
//! one at a time: a new email and an existing one for `POST /v1/register`, a known active
//! customer and an unknown address for `POST /v1/forgot-password`. Behind the answer the
//! portal makes a different number of Okta calls for each case (create vs a failed create;
//! a lookup and a reset vs a lookup alone), so if the answer waited for that work the
//! difference would be one or more 30 ms round trips. The report gives each case's median
//! and quartiles and, for each pair, the difference of medians and a Mann-Whitney z score
//! (|z| < 2: no difference the samples can show).
//!
//! Run with `cargo bench --bench registration`. Loopback only, bounded (`ROUNDS` per case).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use admin_portal::registration::{Edge, solve_challenge};
use helpers::TestApp;
use okta_sim::{Fault, FaultKind, UserStatus};
use serde_json::{Value, json};

const ROUNDS: usize = 60;
const OKTA_DISTANCE: Duration = Duration::from_millis(30);

struct Case {
    name: &'static str,
    path: &'static str,
    body: fn(usize) -> Value,
    times: Vec<f64>,
}

fn new_person(i: usize) -> Value {
    json!({ "firstName": "New", "lastName": "Person", "email": format!("new.{i}@example.com") })
}
fn existing_person(_: usize) -> Value {
    json!({ "firstName": "Old", "lastName": "Person", "email": "existing@example.com" })
}
fn known_customer(_: usize) -> Value {
    json!({ "email": "known@example.com" })
}
fn unknown_address(i: usize) -> Value {
    json!({ "email": format!("nobody.{i}@example.com") })
}

async fn solved(client: &reqwest::Client, edge: &str) -> String {
    let challenge = client.get(format!("{edge}/v1/challenge")).send().await;
    let challenge = challenge.unwrap().json().await.unwrap();
    solve_challenge(&challenge).unwrap()
}

/// One call through the edge; the time from sending to the whole answer, in ms.
async fn timed(client: &reqwest::Client, edge: &str, case: &Case, i: usize) -> f64 {
    let mut body = (case.body)(i);
    body["altcha"] = Value::String(solved(client, edge).await);
    let started = Instant::now();
    let answer = client
        .post(format!("{edge}{}", case.path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let _ = answer.bytes().await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 202, "{} answered {status}", case.name);
    ms
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Mann-Whitney U as a z score (normal approximation, ties averaged).
fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_a = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_a += all[i..=j].iter().filter(|(_, in_a)| *in_a).count() as f64 * rank;
        i = j + 1;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    (u - n1 * n2 / 2.0) / (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

fn report(cases: &[Case]) {
    println!("| case | n | p25 (ms) | median (ms) | p75 (ms) |");
    println!("|---|---|---|---|---|");
    for case in cases {
        let mut sorted = case.times.clone();
        sorted.sort_by(f64::total_cmp);
        let (p25, p50, p75) = (
            quantile(&sorted, 0.25),
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.75),
        );
        println!(
            "| {} | {} | {p25:.2} | {p50:.2} | {p75:.2} |",
            case.name,
            sorted.len()
        );
    }
    println!("\n| pair | difference of medians (ms) | Mann-Whitney z |");
    println!("|---|---|---|");
    for (a, b) in [(0, 1), (2, 3)] {
        let (x, y) = (&cases[a], &cases[b]);
        let diff = median(&y.times) - median(&x.times);
        let z = mann_whitney_z(&x.times, &y.times);
        println!("| {} vs {} | {diff:+.2} | {z:+.2} |", x.name, y.name);
    }
}

/// The portal, the simulator 30 ms away, an edge with its limits out of the way, and the
/// existing and known accounts in place.
async fn setup() -> (TestApp, admin_portal::registration::RunningEdge) {
    let t = TestApp::spawn_with(|c| {
        for client in &mut c.api.clients {
            client.requests_per_minute = 1_000_000;
            client.burst = 100_000;
        }
    })
    .await;
    let mut config = admin_portal::demo::registration_config_for(
        t.sim.issuer(),
        &t.base,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    config.limits.pow_max_number = 50;
    config.limits.per_ip_per_hour = 1_000_000;
    config.limits.per_ip_burst = 100_000;
    config.limits.per_email_per_hour = 1_000_000;
    config.limits.per_email_burst = 100_000;
    let edge = Edge::build(config).await.unwrap().spawn();
    let client = reqwest::Client::new();
    for (email, first) in [
        ("existing@example.com", "Old"),
        ("known@example.com", "Known"),
    ] {
        let body = json!({ "firstName": first, "lastName": "Person", "email": email,
            "altcha": solved(&client, &edge.base_url).await });
        client
            .post(format!("{}/v1/register", edge.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    t.audit_of("user.register", 2).await;
    assert!(
        t.sim()
            .set_user_status("known@example.com", UserStatus::Active)
    );
    t.sim().inject_fault(
        Fault::new("*", "/api/v1/", FaultKind::Latency(OKTA_DISTANCE)).times(1_000_000),
    );
    (t, edge)
}

fn main() {
    support::block_on(async {
        let (t, edge) = setup().await;
        let mut cases = [
            Case {
                name: "register, new email",
                path: "/v1/register",
                body: new_person,
                times: Vec::new(),
            },
            Case {
                name: "register, existing email",
                path: "/v1/register",
                body: existing_person,
                times: Vec::new(),
            },
            Case {
                name: "recover, known customer",
                path: "/v1/forgot-password",
                body: known_customer,
                times: Vec::new(),
            },
            Case {
                name: "recover, unknown address",
                path: "/v1/forgot-password",
                body: unknown_address,
                times: Vec::new(),
            },
        ];
        let client = reqwest::Client::new();
        for i in 0..ROUNDS {
            for case in &mut cases {
                let ms = timed(&client, &edge.base_url, case, i).await;
                case.times.push(ms);
            }
        }
        // Every call was carried out behind its answer.
        t.audit_of("user.register", 2 + 2 * ROUNDS).await;
        t.audit_of("user.recover", 2 * ROUNDS).await;
        let created = t
            .sim()
            .user(&format!("new.{}@example.com", ROUNDS - 1))
            .is_some();
        println!(
            "\nRegistration edge answer times, Okta {} ms away, {ROUNDS} per case, interleaved (all carried out: {created})\n",
            OKTA_DISTANCE.as_millis()
        );
        report(&cases);
    });
}
