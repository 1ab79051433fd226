//! With the simulator failing on purpose, pages show a plain message with the request id,
//! nothing panics, nothing is sent twice, and the audit trail records the failure.

use std::time::Duration;

use okta_sim::{Fault, FaultKind, UserStatus as SimStatus};

use crate::helpers::*;

#[tokio::test]
async fn search_failures_show_a_plain_message_with_oktas_request_id() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    for (kind, status, words) in [
        (
            FaultKind::Status(500),
            502,
            "Okta is not available right now",
        ),
        (FaultKind::MalformedBody, 502, "could not read"),
    ] {
        // Reads are retried once: fail both attempts.
        t.sim()
            .inject_fault(Fault::new("GET", "/api/v1/users", kind).times(2));
        let page = b.get("/users?q=ada").await;
        assert_eq!(page.status.as_u16(), status, "{}", page.body);
        let message = page.text("#search-error").unwrap();
        assert!(message.contains(words), "{message}");
        assert!(message.contains("Request id"), "{message}");
        assert!(!page.body.contains("E0000009") || page.body.contains("Okta request id"));
        t.sim().clear_faults();
    }
    // The htmx fragment says the same, and the next search works again.
    t.sim()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Status(503)).times(2));
    let fragment = b.get_htmx("/users?q=ada").await;
    assert_eq!(fragment.status, 502);
    assert!(fragment.text("#search-error").is_some());
    assert_eq!(b.get("/users?q=ada").await.status, 200);
}

#[tokio::test]
async fn a_transient_read_failure_is_retried_once() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let before = t.sim().request_count("GET", "/api/v1/users");
    t.sim()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Status(503)));
    let page = b.get("/users?q=ada").await;
    assert_eq!(page.status, 200, "the retry succeeded: {}", page.body);
    assert_eq!(t.sim().request_count("GET", "/api/v1/users") - before, 2);
}

#[tokio::test]
async fn a_rate_limited_read_is_retried_after_the_reset_with_retry_headers() {
    let t = TestApp::spawn_with(|c| c.okta.max_retry_wait_seconds = 5).await;
    let b = t.signed_in(AGENT).await;
    let id = t.plain_active_user();
    t.sim().inject_fault(Fault::new(
        "GET",
        &format!("/api/v1/users/{id}"),
        FaultKind::RateLimited,
    ));
    let page = b.get(&format!("/users/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The user, groups and factors are read; the one that was rate-limited is sent again
    // with Okta's retry headers.
    let requests = t.sim().requests("GET", &format!("/api/v1/users/{id}"));
    let retries: Vec<_> = requests
        .iter()
        .filter(|r| r.headers.get("x-okta-retry-for").is_some())
        .collect();
    assert_eq!(retries.len(), 1, "X-Okta-Retry-For sent once");
    assert_eq!(
        retries[0]
            .headers
            .get("x-okta-retry-count")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
}

#[tokio::test]
async fn a_rate_limited_create_is_not_sent_twice_and_is_audited() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    t.sim()
        .inject_fault(Fault::new("POST", "/api/v1/users", FaultKind::RateLimited));
    let form = [
        ("_csrf", token.as_str()),
        ("first_name", "Rate"),
        ("last_name", "Limited"),
        ("email", "rate.limited@example.com"),
        ("activation", "activate"),
        ("credential", "email"),
        ("reason", "Testing the rate limit path"),
    ];
    let page = b.post_form("/users", &form).await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(
        page.text("#create-error")
            .unwrap()
            .contains("rate-limiting")
    );
    assert!(
        page.text("#create-error")
            .unwrap()
            .contains("Okta request id")
    );
    assert_eq!(
        t.sim().request_count("POST", "/api/v1/users"),
        1,
        "a create is never retried"
    );
    assert!(t.sim().user("rate.limited@example.com").is_none());
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.create", "failure")
    );
    assert_eq!(row.okta_error_code.as_deref(), Some("E0000047"));
    assert!(row.okta_request_id.is_some());
    // While the window is spent, the next create is refused without spending a request.
    let page = b.post_form("/users", &form).await;
    assert_eq!(page.status, 429);
    assert_eq!(
        t.sim().request_count("POST", "/api/v1/users"),
        1,
        "no request into a spent window"
    );
}

#[tokio::test]
async fn a_server_error_on_create_is_not_retried() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    t.sim()
        .inject_fault(Fault::new("POST", "/api/v1/users", FaultKind::Status(500)));
    let form = [
        ("_csrf", token.as_str()),
        ("first_name", "Server"),
        ("last_name", "Error"),
        ("email", "server.error@example.com"),
        ("activation", "stage"),
        ("credential", "email"),
        ("reason", "Testing the server error path"),
    ];
    let page = b.post_form("/users", &form).await;
    assert_eq!(page.status, 502);
    assert!(
        page.text("#create-error")
            .unwrap()
            .contains("Okta is not available")
    );
    assert_eq!(t.sim().request_count("POST", "/api/v1/users"), 1);
    assert!(t.sim().user("server.error@example.com").is_none());
}

#[tokio::test]
async fn a_hanging_okta_times_out_with_a_plain_page() {
    let t = TestApp::spawn_with(|c| c.okta.timeout_seconds = 1).await;
    let b = t.signed_in(AGENT).await;
    let id = t.plain_active_user();
    // The user, the user's groups and factors are read (and each read is retried once).
    t.sim()
        .inject_fault(Fault::new("GET", &format!("/api/v1/users/{id}"), FaultKind::Hang).times(6));
    let started = std::time::Instant::now();
    let page = b.get(&format!("/users/{id}")).await;
    assert_eq!(page.status, 504, "{}", page.body);
    assert!(
        page.text("#error-message")
            .unwrap()
            .contains("did not answer in time")
    );
    assert!(page.body.contains(&page.header("x-request-id")));
    assert!(started.elapsed() < Duration::from_secs(10));
    t.sim().clear_faults();
}

#[tokio::test]
async fn a_failed_lifecycle_call_changes_nothing_and_is_audited() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = t.plain_active_user();
    t.sim().inject_fault(Fault::new(
        "POST",
        &format!("/api/v1/users/{id}/lifecycle/suspend"),
        FaultKind::Status(500),
    ));
    let page = b
        .post_form(
            &format!("/users/{id}/suspend"),
            &[("_csrf", &token), ("reason", "Suspending during an outage")],
        )
        .await;
    assert_eq!(page.status, 502);
    assert!(
        page.text("#action-error")
            .unwrap()
            .contains("Okta is not available")
    );
    assert_eq!(page.count("#okta-request-id"), 1);
    assert_eq!(t.sim().user(&id).unwrap().status, SimStatus::Active);
    assert_eq!(
        t.sim()
            .request_count("POST", &format!("/api/v1/users/{id}/lifecycle/suspend")),
        1,
        "not retried"
    );
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.suspend", "failure")
    );
    assert_eq!(row.okta_error_code.as_deref(), Some("E0000009"));
    assert_eq!(row.reason.as_deref(), Some("Suspending during an outage"));
}

#[tokio::test]
async fn the_portal_works_with_oauth_for_okta_instead_of_an_api_token() {
    let t = TestApp::spawn_with(use_service_app).await;
    // A bearer-token app (before "Require DPoP"); tests/it/dpop.rs covers DPoP-bound apps.
    t.sim()
        .set_service_app_dpop(okta_sim::SERVICE_APP_CLIENT_ID, false);
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/users?q=a").await.status, 200);
    assert_eq!(b.get("/users?q=b").await.status, 200);
    let calls = t.sim().requests("GET", "/api/v1/users");
    assert!(calls.iter().all(|r| {
        r.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "))
    }));
    assert_eq!(
        t.sim().request_count("POST", "/oauth2/v1/token"),
        1,
        "the service token is cached"
    );
}

#[tokio::test]
async fn a_rejected_service_token_is_replaced_once() {
    let t = TestApp::spawn_with(use_service_app).await;
    // A bearer-token app (before "Require DPoP"); tests/it/dpop.rs covers DPoP-bound apps.
    t.sim()
        .set_service_app_dpop(okta_sim::SERVICE_APP_CLIENT_ID, false);
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/users?q=a").await.status, 200);
    assert_eq!(t.sim().request_count("POST", "/oauth2/v1/token"), 1);
    // The token is revoked at Okta: the next call gets 401 once, then works with a new token.
    t.sim()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Status(401)));
    assert_eq!(b.get("/users?q=b").await.status, 200);
    assert_eq!(
        t.sim().request_count("POST", "/oauth2/v1/token"),
        2,
        "a new service token was fetched"
    );
}

/// Portal configuration: OAuth 2.0 for Okta with the simulator's demo service app.
fn use_service_app(c: &mut admin_portal::config::Config) {
    c.okta.api_token = None;
    c.okta.oauth = Some(admin_portal::config::OktaOAuthConfig {
        client_id: okta_sim::SERVICE_APP_CLIENT_ID.to_string(),
        private_key: Some(okta_sim::SERVICE_APP_KEY_PEM.to_string().into()),
        private_key_file: None,
        key_id: okta_sim::SERVICE_APP_KID.to_string(),
        scopes: vec![
            "okta.users.read".into(),
            "okta.users.manage".into(),
            "okta.groups.read".into(),
        ],
        dpop: Default::default(),
    });
}

/// Faults on one request in five (5xx, 429, timeouts, malformed bodies) while service clients
/// create and suspend users and agents search and open user pages, for a bounded number of
/// rounds: every failure is a plain answer with a request id (never a 500), no create reaches
/// Okta twice, and every attempted action has exactly one audit record.
#[tokio::test]
async fn a_mixed_workload_under_okta_faults_fails_plainly_and_is_audited_once() {
    use crate::api::{SUPPORT, SUPPORT_SCOPES, call, token};
    use reqwest::Method;
    use serde_json::json;
    const ROUNDS: usize = 12;
    let t = TestApp::spawn_with(|c| {
        c.okta.timeout_seconds = 1;
        c.api.registration_groups = vec!["Sales".into()];
    })
    .await;
    let support = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let agent = t.signed_in(AGENT).await;
    let target = t.plain_active_user();
    for (method, prefix, kind) in [
        ("GET", "/api/v1/users", FaultKind::Status(503)),
        ("GET", "/api/v1/groups", FaultKind::MalformedBody),
        ("POST", "/api/v1/users", FaultKind::RateLimited),
        ("GET", "/api/v1/logs", FaultKind::Hang),
        ("*", "/api/v1", FaultKind::Status(500)),
    ] {
        t.sim()
            .inject_fault(Fault::new(method, prefix, kind).every(5).times(10_000));
    }
    let api_work = async {
        let (mut creates, mut lifecycle, mut answers) = (0, 0, Vec::new());
        for round in 0..ROUNDS {
            let login = format!("fault.load.{round}@example.com");
            let body = json!({ "profile": { "firstName": "Fault", "lastName": "Load", "email": login },
                "activate": false, "reason": "Load under faults",
                "groups": if round % 2 == 0 { json!(["Sales"]) } else { json!([]) } });
            let key = format!("fault-load-{round}");
            let created = call(
                &t,
                Method::POST,
                "/api/v1/users",
                Some(&support),
                Some(body),
                &[("idempotency-key", &key)],
            )
            .await;
            creates += 1;
            let op = if round % 2 == 0 {
                "suspend"
            } else {
                "unsuspend"
            };
            let path = format!("/api/v1/users/{target}/lifecycle/{op}");
            let why = json!({ "reason": "Load under faults" });
            let changed = call(&t, Method::POST, &path, Some(&support), Some(why), &[]).await;
            lifecycle += 1;
            answers.push((created.status.as_u16(), created.body));
            answers.push((changed.status.as_u16(), changed.body));
        }
        (creates, lifecycle, answers)
    };
    let web_work = async {
        let mut pages = Vec::new();
        for _ in 0..ROUNDS {
            for url in [
                "/users?q=ada".to_string(),
                format!("/users/{target}"),
                "/users/new".into(),
            ] {
                let page = agent.get(&url).await;
                pages.push((url, page.status.as_u16(), page.body));
            }
        }
        pages
    };
    let ((creates, lifecycle, answers), pages) = tokio::join!(api_work, web_work);
    t.sim().clear_faults();

    for (status, body) in &answers {
        assert_ne!(*status, 500, "{body}");
        if *status >= 500 {
            assert!(
                body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
                "{body}"
            );
            assert!(
                body["code"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("okta_")),
                "{body}"
            );
        }
    }
    for (url, status, body) in &pages {
        assert_ne!(*status, 500, "{url}");
        if *status >= 500 {
            assert!(body.contains("Request id"), "{url} {status}: no request id");
            assert!(
                !body.contains("panicked") && !body.contains("E0000009"),
                "{url}"
            );
        }
    }
    // Per login: no create reached Okta twice (the simulator's log holds each POST's body).
    let sent = t.sim().requests("POST", "/api/v1/users");
    let mut per_login = std::collections::BTreeMap::<String, usize>::new();
    for r in sent.iter().filter(|r| r.path == "/api/v1/users") {
        let body: serde_json::Value =
            serde_json::from_slice(r.body.as_deref().expect("a recorded create body"))
                .expect("a JSON create body");
        let login = body["profile"]["login"].as_str().unwrap_or_default();
        *per_login.entry(login.to_string()).or_default() += 1;
    }
    assert!(!per_login.is_empty(), "some creates reached Okta");
    for (login, sends) in &per_login {
        assert!(login.starts_with("fault.load."), "{login}");
        assert_eq!(
            *sends, 1,
            "the create of {login} reached Okta {sends} times"
        );
    }
    assert!(per_login.len() <= creates);
    let audit = t.audit().await;
    let count = |actions: &[&str]| {
        audit
            .iter()
            .filter(|r| {
                actions.contains(&r.action.as_str()) && r.client_id.as_deref() == Some(SUPPORT)
            })
            .count()
    };
    assert_eq!(
        count(&["user.create"]),
        creates,
        "one audit record per create attempt"
    );
    assert_eq!(
        count(&["user.suspend", "user.unsuspend"]),
        lifecycle,
        "one audit record per lifecycle attempt"
    );
    assert!(
        answers.iter().any(|(s, _)| *s < 300),
        "some calls should get through"
    );
    assert!(
        answers
            .iter()
            .chain(
                pages
                    .iter()
                    .map(|(_, s, _)| (*s, serde_json::Value::Null))
                    .collect::<Vec<_>>()
                    .iter()
            )
            .any(|(s, _)| *s >= 500 || *s == 429),
        "the faults should show"
    );
}
