//! Every API route × every kind of token: exactly the expected status and problem code, and
//! nothing changed in Okta for any refusal.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{
    CUSTOMER, CUSTOMER_SCOPES, ROGUE, ROUTES, SUPPORT, SUPPORT_SCOPES, call, spawn, token,
};
use crate::helpers::TestApp;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(t: &TestApp, change: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({
        "ver": 1, "jti": "AT.test", "iss": t.sim.issuer(), "aud": "api://admin-portal",
        "iat": now(), "exp": now() + 600, "cid": SUPPORT, "sub": SUPPORT,
        "scp": SUPPORT_SCOPES,
    });
    change(&mut c);
    c
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// (name, token or none, kind) for every refused kind of credential.
fn bad_tokens(t: &TestApp) -> Vec<(&'static str, Option<String>, &'static str)> {
    let keys = t.sim().keys();
    let sign = |c: Value| keys.active().sign(&c).unwrap();
    let kid = keys.active().jwk()["kid"].as_str().unwrap().to_string();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": kid})),
        b64(&claims(t, |_| {}))
    );
    let public = keys.active().jwk().to_string();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &claims(t, |_| {}),
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()).unwrap(),
    )
    .unwrap();
    vec![
        ("no token", None, "missing_token"),
        ("malformed", Some("not-a-jwt".into()), "invalid_token"),
        (
            "expired",
            Some(sign(claims(t, |c| {
                c["exp"] = json!(now() - 3600);
                c["iat"] = json!(now() - 7200);
            }))),
            "token_expired",
        ),
        (
            "wrong audience",
            Some(sign(claims(t, |c| c["aud"] = json!("api://somebody-else")))),
            "invalid_token",
        ),
        (
            "wrong issuer",
            Some(sign(claims(t, |c| {
                c["iss"] = json!("http://127.0.0.1:9/oauth2/other")
            }))),
            "invalid_token",
        ),
        (
            "bad signature",
            Some(keys.rogue.sign(&claims(t, |_| {})).unwrap()),
            "invalid_token",
        ),
        ("alg none", Some(none), "invalid_token"),
        ("HS256 with the public key", Some(hs), "invalid_token"),
        (
            "an agent's access token",
            Some(sign(claims(t, |c| {
                c["uid"] = json!("00uAgent");
                c["sub"] = json!("agent@example.com");
                c["cid"] = json!("0oaPortalDemoClient1");
            }))),
            "not_a_service_token",
        ),
    ]
}

pub fn concrete(path: &str, user: &str) -> String {
    path.replace("{id}", user)
        .replace("{groupId}", "00gNoSuchGroup1")
        .replace("{factorId}", "fNoSuchFactor1")
        .replace("{operation}", "suspend")
}

/// The scope each route's default policy needs.
pub fn scope_of(method: &str, path: &str) -> &'static str {
    match (method, path) {
        (_, "/api/v1/registrations") => "admin.users.register",
        (_, "/api/v1/recoveries") => "admin.users.recover",
        (_, "/api/v1/audit") => "admin.audit.read",
        ("GET", p) if p.contains("/factors") => "admin.factors.read",
        (_, p) if p.contains("/factors") => "admin.factors.manage",
        ("GET", _) => "admin.users.read",
        ("POST", "/api/v1/users") => "admin.users.create",
        ("PATCH", _) => "admin.users.profile",
        ("DELETE", "/api/v1/users/{id}") => "admin.users.delete",
        (_, p) if p.contains("/lifecycle/") => "admin.users.lifecycle",
        (_, p) if p.contains("/sessions") => "admin.users.sessions",
        (_, p) if p.contains("/groups/") => "admin.users.groups",
        _ => unreachable!("{method} {path}"),
    }
}

fn changes(t: &TestApp) -> usize {
    ["POST", "PUT", "DELETE"]
        .iter()
        .map(|m| t.sim().requests(m, "/api/v1/").len())
        .sum()
}

#[tokio::test]
async fn every_route_refuses_every_bad_token_and_changes_nothing() {
    let t = spawn().await;
    let user = t.plain_active_user();
    let before = changes(&t);
    for (name, token, code) in bad_tokens(&t) {
        for (method, path) in ROUTES {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let answer = call(
                &t,
                m,
                &concrete(path, &user),
                token.as_deref(),
                Some(json!({"reason": "A reason that is long enough"})),
                &[],
            )
            .await;
            assert_eq!(
                (answer.status.as_u16(), answer.code()),
                (401, code),
                "{name}: {method} {path}: {:?}",
                answer.body
            );
            assert_eq!(answer.header("content-type"), "application/problem+json");
            let challenge = answer.header("www-authenticate");
            assert!(challenge.starts_with("Bearer"), "{name}: {challenge}");
            assert_eq!(
                challenge.contains("error=\"invalid_token\""),
                code != "missing_token",
                "{name}: {challenge}"
            );
            assert!(
                answer.body["request_id"]
                    .as_str()
                    .is_some_and(|r| r.len() > 8)
            );
        }
    }
    assert_eq!(changes(&t), before, "a refused request reached Okta");
}

#[tokio::test]
async fn each_client_gets_exactly_what_its_scopes_and_the_policy_allow() {
    let t = spawn().await;
    let user = t.plain_active_user();
    let support = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let customer = token(&t, CUSTOMER, CUSTOMER_SCOPES).await;
    let all: Vec<&str> = SUPPORT_SCOPES
        .iter()
        .chain(CUSTOMER_SCOPES)
        .copied()
        .chain(["admin.users.delete", "admin.audit.read"])
        .collect();
    let rogue = token(&t, ROGUE, &all).await;
    let before = changes(&t);
    // An empty body: an allowed mutation stops at validation (422), before Okta.
    for (method, path) in ROUTES {
        let m = || Method::from_bytes(method.as_bytes()).unwrap();
        let url = concrete(path, &user);
        let scope = scope_of(method, path);
        for (who, token, scopes) in [
            ("support", &support, SUPPORT_SCOPES),
            ("customer", &customer, CUSTOMER_SCOPES),
        ] {
            let answer = call(&t, m(), &url, Some(token), Some(json!({})), &[]).await;
            if scopes.contains(&scope) {
                assert!(
                    ![401, 403].contains(&answer.status.as_u16()),
                    "{who}: {method} {path}: {:?}",
                    answer.body
                );
            } else {
                assert_eq!(
                    (answer.status.as_u16(), answer.code()),
                    (403, "insufficient_scope"),
                    "{who}: {method} {path}: {:?}",
                    answer.body
                );
                assert_eq!(answer.body["scope"], json!(scope), "{who}: {method} {path}");
            }
        }
        let answer = call(&t, m(), &url, Some(&rogue), Some(json!({})), &[]).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "unknown_client"),
            "rogue: {method} {path}"
        );
    }
    assert_eq!(
        changes(&t),
        before,
        "a refused or invalid request reached Okta"
    );
}

#[tokio::test]
async fn an_unlisted_client_with_every_scope_gets_nothing_when_the_registry_is_empty() {
    let t = TestApp::spawn_with(|c| c.api.clients.clear()).await;
    let all: Vec<&str> = SUPPORT_SCOPES
        .iter()
        .chain(CUSTOMER_SCOPES)
        .copied()
        .collect();
    let rogue = token(&t, ROGUE, &all).await;
    let answer = call(&t, Method::GET, "/api/v1/users", Some(&rogue), None, &[]).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (403, "client_not_permitted")
    );
    assert!(
        answer
            .header("www-authenticate")
            .contains("scope=\"admin.users.read\"")
    );
    let denied = t
        .audit()
        .await
        .into_iter()
        .rev()
        .find(|r| r.action == "policy.denied")
        .unwrap();
    assert_eq!(denied.client_id.as_deref(), Some(ROGUE));
}
