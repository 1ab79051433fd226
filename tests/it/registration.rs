//! The public registration edge: the journeys through the pages (plain HTTP form posts, no
//! JavaScript) and JSON, through the simulator's outbox to activation and sign-in; no
//! enumeration; the blast radius of its token; its configuration; the abuse controls; one
//! headless-Chromium run.

use std::net::SocketAddr;

use admin_portal::registration::{Edge, RegistrationConfig, RunningEdge};
use fantoccini::Locator;
use okta_sim::UserStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::ROUTES;
use crate::api::{Answer, call};
use crate::api_matrix::{concrete, scope_of};
use crate::browser::{artifact, driver, wait_for};
use crate::helpers::{Browser, Page, TestApp};

pub(crate) struct EdgeApp {
    pub(crate) t: TestApp,
    _edge: RunningEdge,
    base: String,
}

/// The simulator, the portal (registration group `Customers`) and an edge in front of it,
/// whose configuration `adjust` may change (the proof of work is kept light for tests).
pub(crate) async fn spawn_edge(adjust: impl FnOnce(&mut RegistrationConfig)) -> EdgeApp {
    let t = TestApp::spawn().await;
    let mut config = admin_portal::demo::registration_config_for(
        t.sim.issuer(),
        &t.base,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    config.limits.pow_max_number = 1_000;
    adjust(&mut config);
    let edge = Edge::build(config).await.unwrap().spawn();
    let base = edge.base_url.clone();
    EdgeApp {
        t,
        _edge: edge,
        base,
    }
}

impl EdgeApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// A solved challenge from the edge, as the page's script or an app would send it.
    async fn solved(&self) -> String {
        let challenge: altcha_lib_rs::Challenge = reqwest::get(self.url("/v1/challenge"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        admin_portal::registration::solve_challenge(&challenge).unwrap()
    }

    async fn json(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = reqwest::Client::new().post(self.url(path)).json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        answer(request.send().await.unwrap()).await
    }

    pub(crate) async fn register_json(&self, first: &str, last: &str, email: &str) -> Answer {
        let pow = self.solved().await;
        let body = json!({ "firstName": first, "lastName": last, "email": email, "altcha": pow });
        self.json("/v1/register", body, &[]).await
    }

    async fn forgot_json(&self, email: &str) -> Answer {
        let pow = self.solved().await;
        self.json(
            "/v1/forgot-password",
            json!({ "email": email, "altcha": pow }),
            &[],
        )
        .await
    }

    /// The newest link the simulator mailed to `email`.
    /// The newest link the simulator mailed to `email` since `after` links were mailed to
    /// it (the mail is sent just after the edge's answer; waits up to five seconds).
    async fn mailed_link_after(&self, email: &str, after: usize) -> String {
        let mut outbox: Vec<Value> = Vec::new();
        for _ in 0..100 {
            outbox = reqwest::get(format!("{}/dev/outbox.json", self.t.sim.base_url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let links: Vec<&str> = outbox
                .iter()
                .filter(|m| m["destination"] == email)
                .filter_map(|m| m["link"].as_str())
                .collect();
            if links.len() > after {
                return links[0].to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no new link mailed to {email}: {outbox:?}")
    }

    async fn mailed_link(&self, email: &str) -> String {
        self.mailed_link_after(email, 0).await
    }

    /// Follows an emailed link and chooses `password` on the simulator's page.
    async fn set_password(&self, link: &str, password: &str) -> Page {
        let browser = Browser::new(self.t.sim.base_url());
        let form = browser.get(link).await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert_eq!(form.count("form#sim-set-password"), 1);
        browser
            .post_form(link, &[("password", password), ("confirm", password)])
            .await
    }

    /// Whether the simulator's sign-in page accepts these credentials.
    async fn can_sign_in(&self, login: &str, password: &str) -> bool {
        let browser = self.t.browser();
        let authorize = browser.start_sign_in("/").await;
        browser
            .provider_sign_in(&authorize, login, password)
            .await
            .status
            == 302
    }
}

async fn answer(response: reqwest::Response) -> Answer {
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

const NEW_PASSWORD: &str = "Correct-Horse-7-Battery";

fn customer_groups(t: &TestApp, login: &str) -> Vec<String> {
    let store = t.sim().store();
    let user = store.user_by_login(login).unwrap();
    store.group_names(user)
}

#[tokio::test]
async fn a_person_registers_on_the_page_without_javascript_activates_and_signs_in() {
    let e = spawn_edge(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let browser = e.browser();
    let page = browser.get("/register").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .contains("script-src 'self'")
    );
    assert_eq!(page.count("form#register-form input[name=altcha]"), 1);
    assert_eq!(page.count("script:not([src])"), 0, "no inline script");
    // A browser without JavaScript sends the form without a proof of work.
    let form = [
        ("first_name", "Pat"),
        ("last_name", "Public"),
        ("email", "pat.public@example.com"),
        ("altcha", ""),
        ("website", ""),
    ];
    let posted = Page::from(
        browser
            .client
            .post(e.url("/register"))
            .header("x-forwarded-for", "203.0.113.9")
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (posted.status.as_u16(), posted.location().as_str()),
        (303, "/check-email")
    );
    let check = browser.get("/check-email").await;
    assert_eq!(check.text("h1").as_deref(), Some("Check your email"));

    e.t.audit_of("user.register", 1).await;
    let user = e.t.sim().user("pat.public@example.com").unwrap();
    assert_eq!(user.status, UserStatus::Provisioned);
    assert_eq!(
        (user.first_name.as_str(), user.last_name.as_str()),
        ("Pat", "Public")
    );
    assert!(customer_groups(&e.t, "pat.public@example.com").contains(&"Customers".to_string()));
    assert!(!e.can_sign_in("pat.public@example.com", NEW_PASSWORD).await);

    let link = e.mailed_link("pat.public@example.com").await;
    let done = e.set_password(&link, NEW_PASSWORD).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.count("#sim-done"), 1);
    assert_eq!(
        e.t.sim().user("pat.public@example.com").unwrap().status,
        UserStatus::Active
    );
    assert!(e.can_sign_in("pat.public@example.com", NEW_PASSWORD).await);
    // The link works once.
    assert_eq!(
        Browser::new(e.t.sim.base_url()).get(&link).await.status,
        404
    );

    let record = e.t.audit_of("user.register", 1).await.remove(0);
    assert_eq!(record.outcome, "success");
    assert_eq!(
        record.client_id.as_deref(),
        Some(okta_sim::CUSTOMER_APP_CLIENT_ID)
    );
    assert_eq!(
        record.client_ip.as_deref(),
        Some("203.0.113.9 (reported by client 127.0.0.1)")
    );
}

#[tokio::test]
async fn a_refused_form_keeps_what_was_typed_and_says_why() {
    let e = spawn_edge(|_| {}).await;
    let page = e
        .browser()
        .post_form(
            "/register",
            &[
                ("first_name", "Pat"),
                ("last_name", ""),
                ("email", "pat@example"),
                ("altcha", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert_eq!(
        page.text("#last_name-error").as_deref(),
        Some("Enter your last name.")
    );
    assert_eq!(
        page.text("#email-error").as_deref(),
        Some("Enter an email address like name@example.com.")
    );
    assert_eq!(page.count("input#first_name[value=Pat]"), 1);
    assert_eq!(page.count("input#email[value='pat@example']"), 1);
    assert_eq!(e.t.sim().request_count("POST", "/api/v1/users"), 0);
}

#[tokio::test]
async fn json_registration_then_forgot_password_for_an_active_customer() {
    let e = spawn_edge(|_| {}).await;
    let registered = e
        .register_json("Robin", "Reader", "robin.reader@example.com")
        .await;
    assert_eq!(registered.status, 202, "{:?}", registered.body);
    assert_eq!(registered.body["status"], "accepted");
    let link = e.mailed_link("robin.reader@example.com").await;
    assert_eq!(e.set_password(&link, NEW_PASSWORD).await.status, 200);

    let recovery = e.forgot_json("robin.reader@example.com").await;
    assert_eq!(recovery.status, 202, "{:?}", recovery.body);
    let sim = e.t.sim();
    crate::helpers::eventually("the recovery", || {
        sim.user("robin.reader@example.com").unwrap().status == UserStatus::Recovery
    })
    .await;
    let reset = e.mailed_link_after("robin.reader@example.com", 1).await;
    assert!(reset.contains("/signin/reset-password/"), "{reset}");
    let again = "Another-Horse-8-Battery";
    let done = e.set_password(&reset, again).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(e.can_sign_in("robin.reader@example.com", again).await);
    assert!(
        !e.can_sign_in("robin.reader@example.com", NEW_PASSWORD)
            .await
    );
    let recorded = e.t.audit_of("user.recover", 1).await.remove(0);
    assert_eq!(recorded.outcome, "success");
}

/// Status, headers other than ids and dates, and body.
#[tokio::test]
async fn the_edge_may_authenticate_by_private_key_jwt_and_keeps_its_token() {
    let e = spawn_edge(|c| {
        c.client_secret = None;
        c.private_key = Some(okta_sim::SERVICE_APP_KEY_PEM.to_string().into());
        c.key_id = Some(okta_sim::SERVICE_APP_KID.to_string());
    })
    .await;
    let jwk = okta_sim::org_as::demo_service_app().unwrap().public_jwk;
    e.t.sim()
        .register_client_key(okta_sim::CUSTOMER_APP_CLIENT_ID, jwk);
    let before = e.t.sim().token_calls("client_credentials");
    for email in ["key.one@example.com", "key.two@example.com"] {
        let answer = e.register_json("Kay", "Jwt", email).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    let sim = e.t.sim();
    crate::helpers::eventually("the second registration", || {
        sim.user("key.two@example.com").is_some()
    })
    .await;
    // One token for both calls, fetched with an assertion, not a secret.
    assert_eq!(e.t.sim().token_calls("client_credentials"), before + 1);
    let headers =
        e.t.sim()
            .last_request_headers("POST", "/oauth2/default/v1/token")
            .unwrap();
    assert!(headers.get("authorization").is_none());
}

fn comparable(a: &Answer) -> (u16, Vec<(String, String)>, Value) {
    let mut headers: Vec<(String, String)> = a
        .headers
        .iter()
        .filter(|(k, _)| !["x-request-id", "date"].contains(&k.as_str()))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    headers.sort();
    (a.status.as_u16(), headers, a.body.clone())
}

#[tokio::test]
async fn existing_and_new_emails_and_known_and_unknown_recoveries_answer_identically() {
    // The same address is used four times here: keep the per-email limit out of the way.
    let e = spawn_edge(|c| c.limits.per_email_burst = 10).await;
    let new = e.register_json("Sam", "Same", "sam.same@example.com").await;
    let existing = e.register_json("Sam", "Same", "sam.same@example.com").await;
    let agent = e
        .register_json("Alex", "Agent", crate::helpers::AGENT)
        .await;
    assert_eq!(new.status, 202);
    assert_eq!(comparable(&existing), comparable(&new));
    assert_eq!(comparable(&agent), comparable(&new));
    let mut details: Vec<_> =
        e.t.audit_of("user.register", 3)
            .await
            .into_iter()
            .map(|r| (r.outcome, r.detail))
            .collect();
    details.sort();
    let exists = ("failure".to_string(), Some("already exists".to_string()));
    assert_eq!(
        details,
        [exists.clone(), exists, ("success".to_string(), None)]
    );

    let link = e.mailed_link("sam.same@example.com").await;
    assert_eq!(e.set_password(&link, NEW_PASSWORD).await.status, 200);
    let known = e.forgot_json("sam.same@example.com").await;
    let unknown = e.forgot_json("nobody.at.all@example.com").await;
    let privileged = e.forgot_json(crate::helpers::AGENT).await;
    assert_eq!(known.status, 202);
    assert_eq!(comparable(&unknown), comparable(&known));
    assert_eq!(comparable(&privileged), comparable(&known));
    // All three were carried out (after their answers), and the agent was left alone.
    e.t.audit_of("user.recover", 3).await;
    assert_eq!(
        e.t.sim().user(crate::helpers::AGENT).unwrap().status,
        UserStatus::Active
    );

    // The pages too: the same redirect whether or not the account existed.
    let form = |email: &'static str| {
        [
            ("first_name", "Sam"),
            ("last_name", "Same"),
            ("email", email),
            ("altcha", ""),
        ]
    };
    let page_new = e
        .browser()
        .post_form("/register", &form("page.new@example.com"))
        .await;
    let page_old = e
        .browser()
        .post_form("/register", &form("sam.same@example.com"))
        .await;
    assert_eq!(
        (page_new.status, page_new.location()),
        (page_old.status, page_old.location())
    );
    assert_eq!(page_new.body, page_old.body);
}

#[tokio::test]
async fn the_edge_token_is_refused_on_every_other_route_and_changes_nothing() {
    let e = spawn_edge(|_| {}).await;
    // The edge's own token: its client and secret, its scopes, at its token endpoint.
    let token: Value = reqwest::Client::new()
        .post(format!("{}/v1/token", e.t.sim.issuer()))
        .basic_auth(
            okta_sim::CUSTOMER_APP_CLIENT_ID,
            Some(okta_sim::CUSTOMER_APP_SECRET),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.users.register admin.users.recover"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let user = e.t.plain_active_user();
    let before = e.t.sim().store().users.clone();
    let mutations = || e.t.sim().request_count("*", "/api/v1/users/");
    let sent = mutations();
    for (method, path) in ROUTES
        .iter()
        .filter(|(_, p)| !p.contains("/registrations") && !p.contains("/recoveries"))
    {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let answer = call(
            &e.t,
            m,
            &concrete(path, &user),
            Some(&token),
            Some(json!({"reason": "edge breach"})),
            &[],
        )
        .await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "insufficient_scope"),
            "{method} {path}: {:?}",
            answer.body
        );
        assert_eq!(answer.body["scope"], json!(scope_of(method, path)));
    }
    assert_eq!(mutations(), sent, "a refused call reached Okta");
    let after = e.t.sim().store().users.clone();
    assert_eq!(
        before
            .values()
            .map(|u| (&u.id, u.status, &u.password))
            .collect::<Vec<_>>(),
        after
            .values()
            .map(|u| (&u.id, u.status, &u.password))
            .collect::<Vec<_>>()
    );
    // And the authorization server will not give the customer app any other scope.
    let wider = reqwest::Client::new()
        .post(format!("{}/v1/token", e.t.sim.issuer()))
        .basic_auth(
            okta_sim::CUSTOMER_APP_CLIENT_ID,
            Some(okta_sim::CUSTOMER_APP_SECRET),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.users.lifecycle"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wider.status(), StatusCode::BAD_REQUEST);
}

fn write_config(text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("admin-portal-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-edge.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_admin-portal"))
        .args(args)
        .env_remove("ADMIN_PORTAL__OKTA__API_TOKEN")
        .env_remove("ADMIN_PORTAL__DATABASE__URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

const EDGE_TOML: &str = r#"
[registration]
bind = "127.0.0.1:0"
api_base_url = "http://127.0.0.1:9"
token_endpoint = "http://127.0.0.1:9/oauth2/default/v1/token"
client_id = "0oaCustomerAppClient"
client_secret = "edge-secret-do-not-print"
"#;

#[test]
fn check_config_refuses_an_edge_config_holding_okta_or_database_credentials() {
    let clean = write_config(EDGE_TOML);
    let (code, out) = run(&["check-config", "--config", clean.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Registration edge configuration is valid."),
        "{out}"
    );
    assert!(!out.contains("edge-secret-do-not-print"), "{out}");

    let tainted = write_config(&format!(
        "{EDGE_TOML}\n[okta]\norg_url = \"https://example.okta.com\"\napi_token = \"ssws-x\"\n[okta.oauth]\nclient_id = \"0oa\"\nkey_id = \"k\"\nprivate_key_path = \"/k.pem\"\n[database]\nurl = \"postgres://u:p@db/x\"\n"
    ));
    let (code, out) = run(&["check-config", "--config", tainted.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    for needle in ["an Okta API token", "an Okta OAuth key", "a database URL"] {
        assert!(out.contains(needle), "missing {needle:?} in {out}");
    }
    assert!(!out.contains("ssws-x") && !out.contains("u:p@"), "{out}");
    // The edge itself refuses to start with it.
    let (code, out) = run(&["registration", "--config", tainted.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("must not hold"), "{out}");
}

#[tokio::test]
async fn rate_limits_trip_at_the_configured_numbers() {
    let e = spawn_edge(|c| {
        c.limits.per_ip_burst = 3;
        c.limits.per_email_burst = 1;
        c.limits.no_pow_per_ip_per_hour = 1;
    })
    .await;
    let first = e.forgot_json("limit.one@example.com").await;
    let same_email = e.forgot_json("limit.one@example.com").await;
    assert_eq!(first.status, 202);
    assert_eq!(
        (same_email.status.as_u16(), same_email.code()),
        (429, "rate_limited")
    );
    let wait: u64 = same_email.header("retry-after").parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(e.forgot_json("limit.two@example.com").await.status, 202);
    // The address's third submission was the last of its burst.
    let over = e.forgot_json("limit.three@example.com").await;
    assert_eq!((over.status.as_u16(), over.code()), (429, "rate_limited"));
    assert!(over.header("retry-after").parse::<u64>().unwrap() >= 1);
}

/// Two edges behind one balancer, sharing Redis (`[registration.cluster]`) and the
/// proof-of-work key: one limit and one set of spent challenges for both.
#[tokio::test]
async fn edges_that_share_redis_share_their_limits_and_spent_challenges() {
    let prefix = format!("test:edge:{}:", uuid::Uuid::new_v4());
    let share = |c: &mut RegistrationConfig| {
        c.limits.per_ip_burst = 3;
        c.pow_hmac_key = Some("shared-test-key".to_string().into());
        c.cluster.redis_url = Some(crate::helpers::redis_url().into());
        c.cluster.key_prefix = prefix.clone();
    };
    let a = spawn_edge(share).await;
    let mut config = admin_portal::demo::registration_config_for(
        a.t.sim.issuer(),
        &a.t.base,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    config.limits.pow_max_number = 1_000;
    share(&mut config);
    let b = Edge::build(config).await.unwrap().spawn();
    let to_b = |pow: &str, email: &str| {
        let body = json!({ "email": email, "altcha": pow });
        let url = format!("{}/v1/forgot-password", b.base_url);
        async move {
            answer(
                reqwest::Client::new()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // A challenge solved for edge a and spent there is refused by edge b.
    let pow = a.solved().await;
    let spent = a
        .json(
            "/v1/forgot-password",
            json!({ "email": "x1@example.com", "altcha": pow }),
            &[],
        )
        .await;
    assert_eq!(spent.status, 202);
    let replay = to_b(&pow, "x2@example.com").await;
    assert_eq!((replay.status.as_u16(), replay.code()), (400, "pow_reused"));
    // That replay was the address's second submission; a fresh one on b is its third, the
    // last of the burst, and the next one on a is over the shared limit.
    assert_eq!(to_b(&a.solved().await, "x3@example.com").await.status, 202);
    let over = a.forgot_json("x4@example.com").await;
    assert_eq!((over.status.as_u16(), over.code()), (429, "rate_limited"));
}

#[tokio::test]
async fn forms_without_proof_of_work_have_their_own_smaller_budget() {
    let e = spawn_edge(|c| c.limits.no_pow_per_ip_per_hour = 1).await;
    let form = |email: &'static str| [("email", email), ("altcha", "")];
    let first = e
        .browser()
        .post_form("/forgot-password", &form("a@example.com"))
        .await;
    assert_eq!(first.status, 303);
    let second = e
        .browser()
        .post_form("/forgot-password", &form("b@example.com"))
        .await;
    assert_eq!(second.status, 429);
    assert!(second.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(
        second
            .text("#form-error")
            .unwrap()
            .contains("Too many attempts")
    );
    assert_eq!(second.count("input#email[value='b@example.com']"), 1);
    // With a proof of work the same address may go on.
    let pow = e.solved().await;
    let third = e
        .browser()
        .post_form(
            "/forgot-password",
            &[("email", "c@example.com"), ("altcha", &pow)],
        )
        .await;
    assert_eq!(third.status, 303);
    // JSON never goes without one.
    let bare = e
        .json(
            "/v1/forgot-password",
            json!({ "email": "d@example.com" }),
            &[],
        )
        .await;
    assert_eq!((bare.status.as_u16(), bare.code()), (400, "pow_missing"));
}

#[tokio::test]
async fn a_reused_proof_of_work_is_refused() {
    let e = spawn_edge(|_| {}).await;
    let pow = e.solved().await;
    let body = |email: &str| json!({ "firstName": "Re", "lastName": "Play", "email": email, "altcha": pow });
    let first = e
        .json("/v1/register", body("replay.one@example.com"), &[])
        .await;
    let replay = e
        .json("/v1/register", body("replay.two@example.com"), &[])
        .await;
    assert_eq!(first.status, 202);
    assert_eq!((replay.status.as_u16(), replay.code()), (400, "pow_reused"));
    // The edge answers 202 before the admin service has created the user.
    let sim = e.t.sim();
    crate::helpers::eventually("the first registration", || {
        sim.user("replay.one@example.com").is_some()
    })
    .await;
    assert!(sim.user("replay.two@example.com").is_none());
    let forged = e.json("/v1/register", json!({ "firstName": "F", "lastName": "G", "email": "f@example.com", "altcha": "e30=" }), &[]).await;
    assert_eq!(
        (forged.status.as_u16(), forged.code()),
        (400, "pow_invalid")
    );
}

#[tokio::test]
async fn the_honeypot_refuses_and_nothing_reaches_the_admin_service() {
    let e = spawn_edge(|_| {}).await;
    let pow = e.solved().await;
    let bot = json!({ "firstName": "B", "lastName": "Ot", "email": "bot@example.com", "altcha": pow, "website": "http://spam.example" });
    let answer = e.json("/v1/register", bot, &[]).await;
    assert_eq!((answer.status.as_u16(), answer.code()), (400, "rejected"));
    let page = e
        .browser()
        .post_form(
            "/register",
            &[
                ("first_name", "B"),
                ("last_name", "Ot"),
                ("email", "bot2@example.com"),
                ("website", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        e.t.sim().user("bot@example.com").is_none() && e.t.sim().user("bot2@example.com").is_none()
    );
    assert!(
        e.t.audit()
            .await
            .iter()
            .all(|r| r.action != "user.register")
    );
}

#[tokio::test]
async fn oversize_bodies_get_413_and_malformed_json_gets_a_problem() {
    let e = spawn_edge(|c| c.limits.max_body_bytes = 2048).await;
    let big = "x".repeat(4096);
    let answer = e
        .json(
            "/v1/register",
            json!({ "firstName": big, "lastName": "L", "email": "big@example.com" }),
            &[],
        )
        .await;
    assert_eq!((answer.status.as_u16(), answer.code()), (413, "too_large"));
    assert_eq!(answer.header("content-type"), "application/problem+json");
    let page = e
        .browser()
        .post_form("/register", &[("first_name", big.as_str())])
        .await;
    assert_eq!(page.status, 413);

    let junk = reqwest::Client::new()
        .post(e.url("/v1/forgot-password"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let junk = answer_of(junk).await;
    assert_eq!((junk.status.as_u16(), junk.code()), (400, "malformed_json"));
    assert_eq!(junk.header("content-type"), "application/problem+json");
    assert!(
        junk.body["request_id"]
            .as_str()
            .is_some_and(|id| id == junk.header("x-request-id"))
    );
    let unknown = e
        .json(
            "/v1/forgot-password",
            json!({ "email": "a@example.com", "admin": true }),
            &[],
        )
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (422, "invalid_body")
    );
    let text = reqwest::Client::new()
        .post(e.url("/v1/register"))
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(answer_of(text).await.code(), "unsupported_media_type");
}

async fn answer_of(response: reqwest::Response) -> Answer {
    answer(response).await
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let e = spawn_edge(|c| c.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(Method::OPTIONS, e.url("/v1/register"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example.com")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_browser_registers_and_lands_on_check_your_email() {
    let Some(driver) = driver().await else { return };
    // No budget for forms without a proof of work: only the page's script can get through.
    let e = spawn_edge(|c| c.limits.no_pow_per_ip_per_hour = 0).await;
    let c = &driver.client;
    c.goto(&e.url("/register")).await.unwrap();
    for (field, value) in [
        ("#first_name", "Bea"),
        ("#last_name", "Browser"),
        ("#email", "bea.browser@example.com"),
    ] {
        wait_for(c, field).await.send_keys(value).await.unwrap();
    }
    c.find(Locator::Css("#register-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let heading = wait_for(c, "#check-email h1").await.text().await.unwrap();
    assert_eq!(heading, "Check your email");
    std::fs::write(
        artifact("registration-check-email.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    let sim = e.t.sim();
    crate::helpers::eventually("the registration", || {
        sim.user("bea.browser@example.com").is_some()
    })
    .await;
    assert_eq!(
        e.t.sim().user("bea.browser@example.com").unwrap().status,
        UserStatus::Provisioned
    );
    driver.client.clone().close().await.unwrap();
}
