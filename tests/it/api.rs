//! The service API: the authentication matrix, behaviour per endpoint on the simulator,
//! idempotency, If-Match, paging, rate limits and the OpenAPI document.

use okta_sim::{SimClient, UserStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{AGENT, TestApp};

pub const SUPPORT: &str = "0oaSupportAppClient1";
pub const CUSTOMER: &str = "0oaCustomerAppClient";
pub const ROGUE: &str = "0oaRogueServiceApp";

pub const SUPPORT_SCOPES: &[&str] = &[
    "admin.users.read",
    "admin.users.create",
    "admin.users.lifecycle",
    "admin.users.profile",
    "admin.users.groups",
    "admin.users.sessions",
    "admin.factors.read",
    "admin.factors.manage",
];
pub const CUSTOMER_SCOPES: &[&str] = &["admin.users.register", "admin.users.recover"];

/// A portal whose registration group exists in the simulator.
pub async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.api.registration_groups = vec!["Sales".into()]).await
}

/// A client_credentials token from the simulator, for a client registered with `scopes`.
pub async fn token(t: &TestApp, client: &str, scopes: &[&str]) -> String {
    token_from(&t.sim, client, scopes).await
}

/// The same from any running simulator.
pub async fn token_from(sim: &okta_sim::RunningSim, client: &str, scopes: &[&str]) -> String {
    let secret = format!("{client}-secret");
    sim.state.register_client(SimClient {
        id: client.into(),
        secret: secret.clone(),
        name: client.into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        service_scopes: scopes.iter().map(|s| s.to_string()).collect(),
    });
    let response = reqwest::Client::new()
        .post(format!("{}/v1/token", sim.issuer()))
        .basic_auth(client, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", &scopes.join(" ")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn call(
    t: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new().request(method, t.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

fn why() -> Value {
    json!({ "reason": "Requested by the support app for a test" })
}

/// Mutating Management API calls the simulator has seen.
fn changes(t: &TestApp) -> usize {
    ["POST", "PUT", "DELETE"]
        .iter()
        .map(|m| t.sim().requests(m, "/api/v1/").len())
        .sum()
}

#[tokio::test]
async fn a_support_app_token_searches_and_reads_users_with_paging_and_etag() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let page = call(
        &t,
        Method::GET,
        "/api/v1/users?limit=5",
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(page.body.as_array().unwrap().len(), 5);
    let link = page.header("link").to_string();
    assert!(link.ends_with("rel=\"next\""), "{link}");
    assert!(page.header("ratelimit").starts_with("\"per-client\";r="));
    assert_eq!(page.header("ratelimit-policy"), "\"per-client\";q=600;w=60");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let next = next.strip_prefix(&t.base).unwrap();
    let second = call(&t, Method::GET, next, Some(&token), None, &[]).await;
    assert_eq!(second.status, 200);
    let first_ids: Vec<&Value> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["id"])
        .collect();
    assert!(
        second
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|u| !first_ids.contains(&&u["id"]))
    );

    let id = t.plain_active_user();
    let user = call(
        &t,
        Method::GET,
        &format!("/api/v1/users/{id}"),
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(user.status, 200);
    assert_eq!(user.body["id"], json!(id));
    let last_updated = user.body["lastUpdated"].as_str().unwrap();
    assert_eq!(user.header("etag"), format!("\"{last_updated}\""));
    let bad = call(
        &t,
        Method::GET,
        "/api/v1/users?limit=500",
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), bad.code()),
        (422, "validation_failed")
    );
    assert!(bad.body["errors"]["limit"].is_string());
    let missing = call(
        &t,
        Method::GET,
        "/api/v1/users/nobody@example.com",
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "not_found")
    );
    assert_eq!(missing.header("content-type"), "application/problem+json");
}

#[tokio::test]
async fn lifecycle_changes_the_user_in_okta_and_is_audited_with_the_client() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let id = t.plain_active_user();
    let path = format!("/api/v1/users/{id}/lifecycle/suspend");
    let done = call(&t, Method::POST, &path, Some(&token), Some(why()), &[]).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["status"], "SUSPENDED");
    assert_eq!(t.sim().user(&id).unwrap().status, UserStatus::Suspended);
    let sent = t
        .sim()
        .last_request_headers("POST", &format!("/api/v1/users/{id}/lifecycle/suspend"))
        .unwrap();
    let agent = sent["user-agent"].to_str().unwrap();
    assert!(
        agent.starts_with("admin-portal/") && agent.ends_with(&format!("(for client {SUPPORT})")),
        "{agent}"
    );
    let audit = t.audit().await;
    let row = audit
        .iter()
        .rev()
        .find(|r| r.action == "user.suspend")
        .unwrap();
    assert_eq!(row.client_id.as_deref(), Some(SUPPORT));
    assert_eq!(row.actor_name.as_deref(), Some("Support app"));
    assert_eq!(row.outcome, "success");
    assert_eq!(row.target_id.as_deref(), Some(id.as_str()));
    assert_eq!(Some(row.id), done.body["auditRecordId"].as_i64());

    // Okta's state machine: suspending again is a conflict, recorded as refused.
    let again = call(&t, Method::POST, &path, Some(&token), Some(why()), &[]).await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "not_offered_in_status")
    );
    let no_reason = call(
        &t,
        Method::POST,
        &format!("/api/v1/users/{id}/lifecycle/unsuspend"),
        Some(&token),
        Some(json!({})),
        &[],
    )
    .await;
    assert_eq!(
        (no_reason.status.as_u16(), no_reason.code()),
        (422, "validation_failed")
    );
    assert!(no_reason.body["errors"]["reason"].is_string());
    let unknown = call(
        &t,
        Method::POST,
        &format!("/api/v1/users/{id}/lifecycle/teleport"),
        Some(&token),
        Some(why()),
        &[],
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn profile_updates_need_if_match_and_refuse_a_stale_etag() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let id = t.plain_active_user();
    let path = format!("/api/v1/users/{id}");
    let body = json!({ "profile": { "title": "Head of Testing" }, "reason": "Title changed per HR ticket" });
    let none = call(
        &t,
        Method::PATCH,
        &path,
        Some(&token),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(
        (none.status.as_u16(), none.code()),
        (428, "precondition_required")
    );
    let stale = call(
        &t,
        Method::PATCH,
        &path,
        Some(&token),
        Some(body.clone()),
        &[("if-match", "\"2001-01-01T00:00:00.000Z\"")],
    )
    .await;
    assert_eq!(
        (stale.status.as_u16(), stale.code()),
        (412, "precondition_failed")
    );
    assert!(
        t.sim().user(&id).unwrap().profile_extra.get("title") != Some(&json!("Head of Testing"))
    );
    let etag = call(&t, Method::GET, &path, Some(&token), None, &[])
        .await
        .header("etag")
        .to_string();
    let done = call(
        &t,
        Method::PATCH,
        &path,
        Some(&token),
        Some(body),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["profile"]["title"], "Head of Testing");
    assert_eq!(
        t.sim().user(&id).unwrap().profile_extra.get("title"),
        Some(&json!("Head of Testing"))
    );
    assert_ne!(done.header("etag"), etag);
}

fn new_user(login: &str) -> Value {
    json!({
        "profile": { "firstName": "Api", "lastName": "Created", "email": login },
        "credential": "email", "activate": false, "groups": ["Sales"],
        "reason": "Onboarding through the support app"
    })
}

#[tokio::test]
async fn create_is_idempotent_per_key_and_never_sent_twice() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let key = [("idempotency-key", "create-1")];
    let first = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(new_user("api.one@example.com")),
        &key,
    )
    .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(
        first
            .header("location")
            .ends_with(first.body["id"].as_str().unwrap())
    );
    assert_eq!(
        t.sim().user("api.one@example.com").unwrap().status,
        UserStatus::Staged
    );
    let replay = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(new_user("api.one@example.com")),
        &key,
    )
    .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.header("idempotent-replayed"), "true");
    let other = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(new_user("api.two@example.com")),
        &key,
    )
    .await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (422, "idempotency_key_reused")
    );
    assert_eq!(
        t.sim()
            .requests("POST", "/api/v1/users")
            .iter()
            .filter(|r| r.path == "/api/v1/users")
            .count(),
        1
    );
    let creates: Vec<_> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "user.create")
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].client_id.as_deref(), Some(SUPPORT));

    // Concurrent repeats: one create reaches Okta, the others wait their turn or replay.
    let key = [("idempotency-key", "create-2")];
    let body = new_user("api.three@example.com");
    let (a, b, c) = tokio::join!(
        call(
            &t,
            Method::POST,
            "/api/v1/users",
            Some(&token),
            Some(body.clone()),
            &key
        ),
        call(
            &t,
            Method::POST,
            "/api/v1/users",
            Some(&token),
            Some(body.clone()),
            &key
        ),
        call(
            &t,
            Method::POST,
            "/api/v1/users",
            Some(&token),
            Some(body.clone()),
            &key
        ),
    );
    for answer in [&a, &b, &c] {
        assert!(
            answer.status == 201
                || (answer.status == 409 && answer.code() == "idempotency_in_progress"),
            "{:?}",
            answer.body
        );
    }
    assert_eq!(
        t.sim()
            .requests("POST", "/api/v1/users")
            .iter()
            .filter(|r| r.path == "/api/v1/users")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_leave_its_key_running() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let slow = okta_sim::FaultKind::Latency(std::time::Duration::from_millis(700));
    t.sim()
        .inject_fault(okta_sim::Fault::new("POST", "/api/v1/users", slow));
    let body = new_user("api.hangup@example.com");
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(150))
        .build()
        .unwrap();
    let gone = impatient
        .post(t.url("/api/v1/users"))
        .bearer_auth(&token)
        .header("idempotency-key", "hangup-1")
        .json(&body)
        .send()
        .await;
    assert!(gone.is_err(), "the client should have timed out");
    let key = [("idempotency-key", "hangup-1")];
    let mut answer = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(body.clone()),
        &key,
    )
    .await;
    for _ in 0..50 {
        if answer.status != 409 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        answer = call(
            &t,
            Method::POST,
            "/api/v1/users",
            Some(&token),
            Some(body.clone()),
            &key,
        )
        .await;
    }
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.header("idempotent-replayed"), "true");
    assert!(t.sim().user("api.hangup@example.com").is_some());
    let creates = t.sim().requests("POST", "/api/v1/users");
    assert_eq!(
        creates.iter().filter(|r| r.path == "/api/v1/users").count(),
        1
    );
}

#[tokio::test]
async fn the_same_key_with_another_password_is_another_request() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let with = |password: &str| {
        let mut body = new_user("api.pw@example.com");
        body["credential"] = json!("password");
        body["password"] = json!(password);
        body
    };
    let key = [("idempotency-key", "pw-1")];
    let first = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(with("Correct-Horse-1")),
        &key,
    )
    .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let other = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(with("Battery-Staple-2")),
        &key,
    )
    .await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (422, "idempotency_key_reused")
    );
    let same = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(with("Correct-Horse-1")),
        &key,
    )
    .await;
    assert_eq!(same.status, 201);
    assert_eq!(same.header("idempotent-replayed"), "true");
}

#[tokio::test]
async fn okta_validation_errors_name_the_field() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let existing = t.sim().user(AGENT).unwrap().login;
    let taken = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(new_user(&existing)),
        &[],
    )
    .await;
    assert_eq!(
        (taken.status.as_u16(), taken.code()),
        (422, "okta_validation"),
        "{:?}",
        taken.body
    );
    assert!(
        taken.body["errors"]["login"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert!(taken.body["okta_request_id"].is_string());
    let bad_group = json!({ "profile": { "firstName": "A", "lastName": "B", "email": "ab@example.com" }, "groups": ["Portal-Admins"], "reason": "Onboarding through the support app" });
    let refused = call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(&token),
        Some(bad_group),
        &[],
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "validation_failed")
    );
    assert!(refused.body["errors"]["groups"].is_string());
    let junk = reqwest::Client::new()
        .post(t.url("/api/v1/users"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 422);
    assert_eq!(junk.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn registration_and_recovery_answer_the_same_whatever_exists() {
    let t = spawn().await;
    let token = token(&t, CUSTOMER, CUSTOMER_SCOPES).await;
    let person =
        json!({ "firstName": "Pat", "lastName": "Public", "email": "pat.public@example.com" });
    let new = call(
        &t,
        Method::POST,
        "/api/v1/registrations",
        Some(&token),
        Some(person.clone()),
        &[],
    )
    .await;
    let again = call(
        &t,
        Method::POST,
        "/api/v1/registrations",
        Some(&token),
        Some(person),
        &[],
    )
    .await;
    assert_eq!(new.status, 202, "{:?}", new.body);
    assert_eq!((again.status, &again.body), (new.status, &new.body));
    let registrations = t.audit_of("user.register", 2).await;
    let user = t.sim().user("pat.public@example.com").unwrap();
    assert_eq!(user.status, UserStatus::Provisioned);
    assert_eq!(registrations.len(), 2);
    let mut what: Vec<_> = registrations
        .iter()
        .map(|r| (r.outcome.as_str(), r.detail.as_deref()))
        .collect();
    what.sort();
    assert_eq!(
        what,
        [("failure", Some("already exists")), ("success", None)],
        "one created, one found to exist (in either order: both run after their answer)"
    );
    assert!(
        registrations
            .iter()
            .all(|r| r.client_id.as_deref() == Some(CUSTOMER))
    );

    let unknown = call(
        &t,
        Method::POST,
        "/api/v1/recoveries",
        Some(&token),
        Some(json!({ "login": "nobody@example.com" })),
        &[],
    )
    .await;
    let agent = call(
        &t,
        Method::POST,
        "/api/v1/recoveries",
        Some(&token),
        Some(json!({ "login": AGENT })),
        &[],
    )
    .await;
    assert_eq!(unknown.status, 202);
    assert_eq!((agent.status, &agent.body), (unknown.status, &unknown.body));
    let recoveries = t.audit_of("user.recover", 2).await;
    assert_eq!(t.sim().user(AGENT).unwrap().status, UserStatus::Active);
    let mut outcomes: Vec<_> = recoveries.iter().map(|r| r.outcome.as_str()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["denied", "failure"]);
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_api_routes() {
    let t = spawn().await;
    let doc = call(&t, Method::GET, "/api/openapi.json", None, None, &[]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} /api{path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut expected: Vec<String> = ROUTES.iter().map(|(m, p)| format!("{m} {p}")).collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Every documented route exists (401 from the gate, not 404/405 from the router).
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{id}", "00u1")
            .replace("{groupId}", "00g1")
            .replace("{factorId}", "f1")
            .replace("{operation}", "suspend");
        let answer = call(
            &t,
            Method::from_bytes(method.as_bytes()).unwrap(),
            &concrete,
            None,
            None,
            &[],
        )
        .await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (401, "missing_token"),
            "{method} {path}"
        );
    }
    let page = reqwest::Client::new()
        .get(t.url("/api/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("swagger-ui") && !html.contains("https://"),
        "no CDN"
    );
    let init = reqwest::get(t.url("/api/docs/swagger-initializer.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/openapi.json"));
}

/// Every route of the API router (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
    ("POST", "/api/v1/users/{id}/lifecycle/{operation}"),
    ("DELETE", "/api/v1/users/{id}/sessions"),
    ("PUT", "/api/v1/users/{id}/groups/{groupId}"),
    ("DELETE", "/api/v1/users/{id}/groups/{groupId}"),
    ("GET", "/api/v1/users/{id}/factors"),
    ("POST", "/api/v1/users/{id}/factors"),
    ("POST", "/api/v1/users/{id}/factors/{factorId}/activate"),
    ("POST", "/api/v1/users/{id}/factors/{factorId}/resend"),
    ("DELETE", "/api/v1/users/{id}/factors/{factorId}"),
    ("POST", "/api/v1/users/{id}/factors/reset"),
    ("POST", "/api/v1/registrations"),
    ("POST", "/api/v1/recoveries"),
    ("GET", "/api/v1/audit"),
];

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let t = TestApp::spawn_with(|c| {
        for client in &mut c.api.clients {
            client.requests_per_minute = 2;
            client.burst = 2;
        }
    })
    .await;
    let support = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let first = call(
        &t,
        Method::GET,
        "/api/v1/users?limit=1",
        Some(&support),
        None,
        &[],
    )
    .await;
    assert_eq!(first.header("ratelimit"), "\"per-client\";r=1;t=30");
    assert_eq!(first.header("ratelimit-policy"), "\"per-client\";q=2;w=60");
    call(
        &t,
        Method::GET,
        "/api/v1/users?limit=1",
        Some(&support),
        None,
        &[],
    )
    .await;
    let limited = call(
        &t,
        Method::GET,
        "/api/v1/users?limit=1",
        Some(&support),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (limited.status.as_u16(), limited.code()),
        (429, "rate_limited")
    );
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(
        limited
            .header("ratelimit")
            .starts_with("\"per-client\";r=0;")
    );
    // Another client has its own budget.
    let other = token(&t, CUSTOMER, CUSTOMER_SCOPES).await;
    let own = call(
        &t,
        Method::POST,
        "/api/v1/recoveries",
        Some(&other),
        Some(json!({"login": "x@example.com"})),
        &[],
    )
    .await;
    assert_eq!(own.status, 202);
}

#[tokio::test]
async fn refusals_change_nothing_in_okta() {
    let t = spawn().await;
    let before = changes(&t);
    let customer = token(&t, CUSTOMER, CUSTOMER_SCOPES).await;
    let id = t.plain_active_user();
    let answer = call(
        &t,
        Method::POST,
        &format!("/api/v1/users/{id}/lifecycle/suspend"),
        Some(&customer),
        Some(why()),
        &[],
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (403, "insufficient_scope")
    );
    assert_eq!(answer.body["scope"], "admin.users.lifecycle");
    assert!(
        answer
            .header("www-authenticate")
            .contains("error=\"insufficient_scope\", scope=\"admin.users.lifecycle\"")
    );
    assert_eq!(changes(&t), before);
    let denied = t
        .audit()
        .await
        .into_iter()
        .rev()
        .find(|r| r.outcome == "denied")
        .unwrap();
    assert_eq!(denied.client_id.as_deref(), Some(CUSTOMER));
}

fn group_id(t: &TestApp, name: &str) -> String {
    let store = t.sim().store();
    store
        .groups
        .values()
        .find(|g| g.name == name)
        .unwrap()
        .id
        .clone()
}

#[tokio::test]
async fn groups_sessions_and_factors_change_okta_through_the_operations() {
    let t = spawn().await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let id = t.plain_active_user();
    let sales = group_id(&t, "Sales");
    let path = format!("/api/v1/users/{id}/groups/{sales}");
    let added = call(&t, Method::PUT, &path, Some(&token), Some(why()), &[]).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert!(t.sim().user(&id).unwrap().group_ids.contains(&sales));
    let removed = call(&t, Method::DELETE, &path, Some(&token), Some(why()), &[]).await;
    assert_eq!(removed.status, 200);
    assert!(!t.sim().user(&id).unwrap().group_ids.contains(&sales));
    let admins = group_id(&t, "Portal-Admins");
    let path = format!("/api/v1/users/{id}/groups/{admins}");
    let refused = call(&t, Method::PUT, &path, Some(&token), Some(why()), &[]).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (403, "group_not_allowed")
    );
    assert!(!t.sim().user(&id).unwrap().group_ids.contains(&admins));

    let sessions = format!("/api/v1/users/{id}/sessions");
    let cleared = call(
        &t,
        Method::DELETE,
        &sessions,
        Some(&token),
        Some(json!({"reason": "Lost laptop reported by the user", "oauthTokens": true})),
        &[],
    )
    .await;
    assert_eq!(cleared.status, 200, "{:?}", cleared.body);
    assert_eq!(
        t.sim()
            .requests("DELETE", &format!("/api/v1/users/{id}/sessions"))[0]
            .query
            .as_deref(),
        Some("oauthTokens=true")
    );

    let factors = format!("/api/v1/users/{id}/factors");
    let body = json!({"factorType": "sms", "phoneNumber": "+1 555 555 0199", "reason": "Enrolling SMS on the user's request"});
    let key = [("idempotency-key", "enroll-1")];
    let enrolled = call(
        &t,
        Method::POST,
        &factors,
        Some(&token),
        Some(body.clone()),
        &key,
    )
    .await;
    assert_eq!(enrolled.status, 201, "{:?}", enrolled.body);
    assert_eq!(enrolled.body["status"], "PENDING_ACTIVATION");
    let replay = call(&t, Method::POST, &factors, Some(&token), Some(body), &key).await;
    assert_eq!(
        (replay.status.as_u16(), &replay.body["id"]),
        (201, &enrolled.body["id"])
    );
    assert_eq!(t.sim().factors(&id).len(), 1, "one enrollment in Okta");
    let fid = enrolled.body["id"].as_str().unwrap().to_string();
    let code = t.sim().last_passcode(&fid).unwrap();
    let activate = format!("{factors}/{fid}/activate");
    let wrong = call(
        &t,
        Method::POST,
        &activate,
        Some(&token),
        Some(json!({"passCode": "000000", "reason": "User read the code to me"})),
        &[],
    )
    .await;
    assert_eq!(wrong.status.as_u16(), 422, "{:?}", wrong.body);
    let active = call(
        &t,
        Method::POST,
        &activate,
        Some(&token),
        Some(json!({"passCode": code, "reason": "User read the code to me"})),
        &[],
    )
    .await;
    assert_eq!(
        (active.status.as_u16(), &active.body["status"]),
        (200, &json!("ACTIVE")),
        "{:?}",
        active.body
    );
    let list = call(&t, Method::GET, &factors, Some(&token), None, &[]).await;
    assert_eq!(list.body[0]["id"], json!(fid));
    assert!(list.body[0].get("activation").is_none());
    let reset = call(
        &t,
        Method::DELETE,
        &format!("{factors}/{fid}"),
        Some(&token),
        Some(why()),
        &[],
    )
    .await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    assert!(t.sim().factors(&id).is_empty());
    let actions: Vec<String> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.client_id.as_deref() == Some(SUPPORT))
        .map(|r| format!("{} {}", r.action, r.outcome))
        .collect();
    for expected in [
        "user.group_add success",
        "user.group_remove success",
        "user.group_add denied",
        "user.clear_sessions success",
        "factors.enroll success",
        "factors.activate failure",
        "factors.activate success",
        "factors.reset success",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_audit_trail_pages_with_link_for_a_client_granted_audit_read() {
    let t = TestApp::spawn_with(|c| {
        let mut rules = admin_portal::api::demo_rules();
        rules
            .get_mut("audit.read")
            .unwrap()
            .clients
            .push(SUPPORT.into());
        c.policy.permissions = Some(rules);
    })
    .await;
    let mut scopes = SUPPORT_SCOPES.to_vec();
    scopes.push("admin.audit.read");
    let token = token(&t, SUPPORT, &scopes).await;
    let id = t.plain_active_user();
    for op in ["suspend", "unsuspend", "suspend"] {
        let done = call(
            &t,
            Method::POST,
            &format!("/api/v1/users/{id}/lifecycle/{op}"),
            Some(&token),
            Some(why()),
            &[],
        )
        .await;
        assert_eq!(done.status, 200);
    }
    let first = call(
        &t,
        Method::GET,
        &format!("/api/v1/audit?client={SUPPORT}&limit=2"),
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body.as_array().unwrap().len(), 2);
    assert_eq!(first.body[0]["action"], "user.suspend");
    assert_eq!(first.body[0]["clientId"], SUPPORT);
    let link = first.header("link");
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .strip_prefix(&t.base)
        .unwrap()
        .to_string();
    assert!(
        next.contains("limit=2") && next.contains("client="),
        "{next}"
    );
    let second = call(&t, Method::GET, &next, Some(&token), None, &[]).await;
    assert_eq!(second.body.as_array().unwrap().len(), 1);
    assert_eq!(second.body[0]["action"], "user.suspend");
    assert!(second.header("link").is_empty());
    let bad = call(
        &t,
        Method::GET,
        "/api/v1/audit?from=yesterday",
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), bad.code()),
        (422, "validation_failed")
    );
}

/// A client assertion for the custom authorization server's token endpoint.
fn assertion(t: &TestApp, client: &str, jti: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": client, "sub": client, "aud": format!("{}/v1/token", t.sim.issuer()),
        "iat": now, "exp": now + 300, "jti": jti,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(okta_sim::SERVICE_APP_KID.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(okta_sim::SERVICE_APP_KEY_PEM.as_bytes());
    jsonwebtoken::encode(&header, &claims, &key.unwrap()).unwrap()
}

async fn token_by_assertion(t: &TestApp, assertion: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/token", t.sim.issuer()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.users.read"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_client_may_authenticate_by_private_key_jwt() {
    let t = spawn().await;
    token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let jwk = okta_sim::org_as::demo_service_app().unwrap().public_jwk;
    t.sim().register_client_key(SUPPORT, jwk);
    let signed = assertion(&t, SUPPORT, "jti-1");
    let (status, body) = token_by_assertion(&t, &signed).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let users = call(
        &t,
        Method::GET,
        "/api/v1/users?q=ada",
        Some(access),
        None,
        &[],
    )
    .await;
    assert_eq!(users.status, 200, "{:?}", users.body);

    let (status, body) = token_by_assertion(&t, &signed).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let unknown = assertion(&t, "0oaNoSuchClient", "jti-2");
    let (status, body) = token_by_assertion(&t, &unknown).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

/// A hand-written client driven by the OpenAPI document: it finds each operation by its
/// `operationId` and builds the request from the documented method and path, so the
/// document, not this test, says where each call goes.
struct DocClient<'a> {
    t: &'a TestApp,
    doc: Value,
    token: String,
}

impl DocClient<'_> {
    fn route(&self, operation: &str) -> (Method, String) {
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op["operationId"] == operation {
                    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    return (method, format!("/api{path}"));
                }
            }
        }
        panic!("{operation} is not in the document");
    }

    async fn call(&self, operation: &str, params: &[(&str, &str)], body: Option<Value>) -> Answer {
        let (method, mut path) = self.route(operation);
        for (name, value) in params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        call(self.t, method, &path, Some(&self.token), body, &[]).await
    }
}

#[tokio::test]
async fn a_client_built_from_the_openapi_document_searches_reads_and_suspends() {
    let t = spawn().await;
    let doc = call(&t, Method::GET, "/api/openapi.json", None, None, &[])
        .await
        .body;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let client = DocClient { t: &t, doc, token };
    let id = t.plain_active_user();
    let login = t.sim().user(&id).unwrap().login;

    let found = client.call("search", &[], None).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    let read = client.call("get_user", &[("id", &login)], None).await;
    assert_eq!(
        (read.status.as_u16(), read.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
    let suspended = client
        .call(
            "lifecycle",
            &[("id", &id), ("operation", "suspend")],
            Some(why()),
        )
        .await;
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    assert_eq!(t.sim().user(&id).unwrap().status, UserStatus::Suspended);
}
