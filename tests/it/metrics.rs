//! `/metrics`: what a signed-in search, a budget refusal and a limit refusal count, who may
//! read it, and JSON logs from the binary.
//!
//! The Prometheus recorder is global to the test process and other tests run at the same
//! time, so each check compares a series before and after this test's own actions and asks
//! for at least the increase those actions cause.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::api::{SUPPORT, SUPPORT_SCOPES, call, token};
use crate::helpers::*;

const USERS_BUCKET: &str = "GET /api/v1/users";

/// One series' labels, parsed from `name{a="x",b="y"} value`.
fn parse_labels(inner: &str) -> BTreeMap<String, String> {
    inner
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(k, v)| (k.to_string(), v.trim_end_matches('"').to_string()))
        .collect()
}

/// The sum of every series of `name` whose labels include all of `labels` (0 when none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let have = parse_labels(rest.strip_suffix('}')?);
            labels
                .iter()
                .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn scrape(t: &TestApp) -> String {
    let response = reqwest::get(t.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no session is made for /metrics"
    );
    let kind = response.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_search_counts_the_okta_call_the_route_latency_and_then_a_cache_hit() {
    let t = TestApp::spawn().await;
    let agent = t.signed_in(AGENT).await;
    let user = t.sim().user(&t.plain_active_user()).unwrap();
    let before = scrape(&t).await;
    let okta = [("bucket", USERS_BUCKET), ("status", "200")];
    let users_route = [("endpoint", "/users"), ("method", "GET"), ("status", "200")];
    let latency = "admin_portal_http_requests_duration_seconds_count";
    let hits = [("result", "hit")];
    let calls_before = t.sim().requests("GET", "/api/v1/users").len();

    let search = format!("/users?q={}", user.login);
    assert_eq!(agent.get(&search).await.status, 200);
    assert_eq!(agent.get(&search).await.status, 200);
    let detail = agent.get(&format!("/users/{}", user.id)).await;
    assert_eq!(detail.status, 200);
    let service = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let api_path = format!("/api/v1/users/{}", user.id);
    let api = call(&t, Method::GET, &api_path, Some(&service), None, &[]).await;
    assert_eq!(api.status, 200);
    let missing = format!("/no-such-page-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(agent.get(&missing).await.status, 404);

    let after = scrape(&t).await;
    let asked: Vec<_> = t.sim().requests("GET", "/api/v1/users")[calls_before..].to_vec();
    let searches = asked.iter().filter(|r| r.path == "/api/v1/users").count();
    assert_eq!(searches, 1, "the repeated search came from the cache");
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert!(
        grew("admin_portal_okta_calls_total", &okta) >= 1.0,
        "Okta's 200 for the search is counted in the users bucket:\n{after}"
    );
    let user_bucket = [("bucket", "GET /api/v1/users/{id}"), ("status", "200")];
    assert!(grew("admin_portal_okta_calls_total", &user_bucket) >= 1.0);
    assert!(grew(latency, &users_route) >= 2.0, "{after}");
    assert!(
        grew(latency, &[("endpoint", "/users/{id}"), ("status", "200")]) >= 1.0,
        "{after}"
    );
    assert!(
        grew(
            latency,
            &[("endpoint", "/api/v1/users/{id}"), ("status", "200")]
        ) >= 1.0
    );
    assert!(grew(latency, &[("endpoint", "unmatched"), ("status", "404")]) >= 1.0);
    assert!(
        grew("admin_portal_search_cache_total", &hits) >= 1.0,
        "the repeated search came from the cache"
    );
    assert!(
        sample(
            &after,
            "admin_portal_okta_budget_remaining",
            &[("bucket", USERS_BUCKET)]
        ) > 0.0,
        "Okta's remaining budget for the bucket is a gauge"
    );
    assert_eq!(
        sample(&after, "admin_portal_cluster_health", &[("state", "local")]),
        1.0
    );
    // Only route templates: neither the id, the login nor the unknown path is a label.
    for raw in [user.id.as_str(), user.login.as_str(), missing.as_str()] {
        assert!(!after.contains(raw), "{raw} appears in the metrics");
    }
}

#[tokio::test]
async fn budget_refusals_and_an_agent_over_its_limit_are_counted() {
    let t = TestApp::spawn_with(|c| {
        c.okta.budget.read_wait_ms = 100;
        c.okta.budget.search_cache_seconds = 0;
        c.session.agent_requests_per_minute = 600;
    })
    .await;
    // 10 a minute: the portal's half less the write reserve is 4 reads.
    t.sim().set_rate_limit(USERS_BUCKET, 10);
    let agent = t.signed_in(AGENT).await;
    let before = scrape(&t).await;
    let mut busy = 0.0;
    for i in 0..7 {
        let page = agent.get(&format!("/users?q=refused{i}")).await;
        match page.status.as_u16() {
            200 => {}
            429 => {
                assert!(page.body.contains("Okta is busy"), "{}", page.body);
                busy += 1.0;
            }
            other => panic!("search answered {other}: {}", page.body),
        }
    }
    assert!(busy >= 3.0, "{busy} searches refused");
    assert_eq!(t.sim().rate_limited_answers(), 0);
    let after = scrape(&t).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let read = [("bucket", USERS_BUCKET), ("kind", "read")];
    assert!(
        grew("admin_portal_okta_budget_refusals_total", &read) >= busy,
        "{after}"
    );
    assert!(
        grew("admin_portal_okta_budget_wait_seconds_count", &read) >= busy,
        "each refused read waited first"
    );
    // Each waited the whole read_wait_ms (100 ms); a little room for float rounding.
    let waited = grew("admin_portal_okta_budget_wait_seconds_sum", &read);
    assert!(
        waited >= 0.099 * busy,
        "{busy} refused reads waited {waited} s in all"
    );

    // The portal's own limit: 8 a minute with a burst of 2.
    let t = TestApp::spawn_with(|c| c.session.agent_requests_per_minute = 8).await;
    let agent = t.signed_in(AGENT).await;
    let before = scrape(&t).await;
    let statuses = [
        agent.get("/me").await.status,
        agent.get("/me").await.status,
        agent.get("/me").await.status,
    ];
    assert_eq!(statuses[2], 429);
    let after = scrape(&t).await;
    let agent_kind = [("kind", "agent")];
    let name = "admin_portal_rate_limit_refusals_total";
    assert!(sample(&after, name, &agent_kind) - sample(&before, name, &agent_kind) >= 1.0);
}

/// GET /metrics from a client bound to `from`, with extra headers.
async fn metrics_from(t: &TestApp, from: &str, headers: &[(&str, &str)]) -> Page {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut request = client.get(t.url("/metrics"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Page::from(request.send().await.unwrap()).await
}

fn is_metrics(page: &Page) -> bool {
    page.status == 200 && page.body.contains("admin_portal_")
}

fn is_not_found(page: &Page) -> bool {
    page.status == 404 && !page.body.contains("admin_portal_") && page.body.contains("<html")
}

#[tokio::test]
async fn only_allowed_client_addresses_read_metrics_and_others_get_404() {
    let t = TestApp::spawn_with(|c| c.metrics.allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let audit_before = t.audit().await.len();
    assert!(is_metrics(&metrics_from(&t, "127.0.0.1", &[]).await));
    let other = metrics_from(&t, "127.0.0.2", &[]).await;
    assert!(is_not_found(&other), "{} {}", other.status, other.body);
    // Through a proxy the portal does not trust, the peer says nothing about the client.
    let forwarded = [("x-forwarded-for", "127.0.0.1")];
    assert!(is_not_found(
        &metrics_from(&t, "127.0.0.1", &forwarded).await
    ));
    assert_eq!(t.audit().await.len(), audit_before, "nothing is audited");

    // Behind a trusted proxy, the client is the address the proxy reports.
    let t = TestApp::spawn_with(|c| {
        c.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let outside = [("x-forwarded-for", "203.0.113.9")];
    assert!(is_not_found(&metrics_from(&t, "127.0.0.1", &outside).await));
    let inside = [("x-forwarded-for", "203.0.113.9, 127.0.0.7")];
    assert!(is_metrics(&metrics_from(&t, "127.0.0.1", &inside).await));

    let t = TestApp::spawn_with(|c| c.metrics.enabled = false).await;
    assert!(is_not_found(&metrics_from(&t, "127.0.0.1", &[]).await));
}

/// Runs `serve` on port 0 against an unreachable provider and returns its stdout lines up
/// to "admin-portal listening".
fn serve_lines(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/admin-portal.example.toml");
    let db = std::env::temp_dir().join(format!(
        "admin-portal-tests/{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_admin-portal"));
    cmd.args(["serve", "--config", example])
        .args(args)
        .env("ADMIN_PORTAL__SERVER__BIND", "127.0.0.1:0")
        .env(
            "ADMIN_PORTAL__DATABASE__URL",
            format!("sqlite://{}", db.display()),
        )
        .env(
            "ADMIN_PORTAL__OIDC__ISSUER",
            "http://127.0.0.1:9/oauth2/default",
        )
        .env(
            "ADMIN_PORTAL__OIDC__CLIENT_SECRET",
            "oidc-secret-not-for-logs",
        )
        .env("ADMIN_PORTAL__OKTA__API_TOKEN", "ssws-token-not-for-logs")
        .env(
            "ADMIN_PORTAL__SESSION__ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run admin-portal serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains("admin-portal listening");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("admin-portal listening")),
        "the portal started: {lines:?}"
    );
    for line in &lines {
        assert!(
            !line.contains("not-for-logs") && !line.contains("MDEyMzQ1Njc4"),
            "a secret in the log: {line}"
        );
    }
    lines
}

#[test]
fn log_format_json_prints_one_json_object_per_line() {
    let lines = serve_lines(&["--log-format", "json"], &[]);
    assert!(lines.len() >= 2, "{lines:?}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let listening = events
        .iter()
        .find(|e| e["message"] == "admin-portal listening")
        .expect("the listening event");
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["url"], "https://admin.example.com");
    assert!(listening["timestamp"].is_string());
    let discovery = events
        .iter()
        .find(|e| e["level"] == "WARN")
        .expect("the provider warning");
    assert_eq!(discovery["issuer"], "http://127.0.0.1:9/oauth2/default");

    // `log.format` in the configuration does the same; the flag wins over it.
    let from_config = serve_lines(&[], &[("ADMIN_PORTAL__LOG__FORMAT", "json")]);
    assert!(
        from_config.iter().all(|l| l.starts_with('{')),
        "{from_config:?}"
    );
    let flag_wins = serve_lines(
        &["--log-format", "text"],
        &[("ADMIN_PORTAL__LOG__FORMAT", "json")],
    );
    assert!(
        flag_wins.iter().all(|l| !l.starts_with('{'))
            && flag_wins.iter().any(|l| l.contains(" INFO ")),
        "{flag_wins:?}"
    );
}

#[tokio::test]
async fn the_registration_edge_counts_its_limits_refusals_on_its_own_metrics() {
    let e = crate::registration::spawn_edge(|c| c.limits.per_ip_burst = 1).await;
    let scrape_edge = || async {
        let response = reqwest::get(e.url("/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    let kind = [("kind", "registration")];
    let name = "admin_portal_rate_limit_refusals_total";
    let before = scrape_edge().await;
    let first = e
        .register_json("Rae", "Limit", "rae.limit@example.com")
        .await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let second = e
        .register_json("Rae", "Limit", "rae.again@example.com")
        .await;
    assert_eq!(second.status, 429, "{:?}", second.body);
    let after = scrape_edge().await;
    assert!(sample(&after, name, &kind) - sample(&before, name, &kind) >= 1.0);

    // Forwarded by a proxy the edge does not trust: the peer says nothing, a 404.
    let forwarded = reqwest::Client::new()
        .get(e.url("/metrics"))
        .header("x-forwarded-for", "127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 404);
    let off = crate::registration::spawn_edge(|c| c.metrics.enabled = false).await;
    let page = reqwest::get(off.url("/metrics")).await.unwrap();
    assert_eq!(page.status(), 404);
    assert!(!page.text().await.unwrap().contains("admin_portal_"));
}

#[tokio::test]
async fn a_velocity_cap_refusal_is_counted() {
    let t = TestApp::spawn_with(|c| c.limits.velocity.deactivate = 1).await;
    let users = plain_active_users(t.sim());
    let agent = t.signed_in(AGENT).await;
    let before = scrape(&t).await;
    let mut statuses = Vec::new();
    for id in &users[..2] {
        let token = agent.csrf_token().await;
        let form = [
            ("_csrf", token.as_str()),
            ("reason", "Offboarding batch from HR"),
        ];
        let page = agent
            .post_form(&format!("/users/{id}/deactivate"), &form)
            .await;
        statuses.push(page.status.as_u16());
    }
    assert_eq!(statuses, [303, 429], "the second is over the cap");
    let after = scrape(&t).await;
    let kind = [("kind", "velocity")];
    let name = "admin_portal_rate_limit_refusals_total";
    assert!(sample(&after, name, &kind) - sample(&before, name, &kind) >= 1.0);
}
