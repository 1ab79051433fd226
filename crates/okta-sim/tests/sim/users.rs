//! Simulator Management API conformance (Users, Groups, System Log, rate limits, faults).
//!
//! Each test starts its own simulator (50 end users besides the demo accounts) and calls it
//! over HTTP as the portal's Okta client would, against OKTA-FACTS.md §0–6 and §8.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use okta_sim::{
    self, Fault, FaultKind, RunningSim, SERVICE_APP_CLIENT_ID, SERVICE_APP_KEY_PEM,
    SERVICE_APP_KID, SimOptions, SimState, UserStatus,
};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const SSWS: &str = "SSWS demo-ssws-token";

struct Sim {
    sim: RunningSim,
    base: String,
    http: reqwest::Client,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["errorCode"].as_str().unwrap_or("").to_string()
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    /// The URL of the `rel="next"` link, if any.
    fn next(&self) -> Option<String> {
        self.headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.ends_with("rel=\"next\""))
            .map(|v| v[1..v.find('>').unwrap()].to_string())
    }

    fn ids(&self) -> Vec<String> {
        self.json()
            .as_array()
            .unwrap_or_else(|| panic!("array expected: {}", self.text))
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["errorLink"], code);
        assert!(body["errorSummary"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(
            body["errorId"]
                .as_str()
                .is_some_and(|s| s.starts_with("oae"))
        );
        assert!(body["errorCauses"].is_array());
    }
}

impl Sim {
    async fn new() -> Sim {
        crate::harness::init_tls();
        let sim = okta_sim::spawn(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SimOptions {
                end_users: 50,
                ..Default::default()
            },
        )
        .await
        .expect("simulator starts");
        // These tests are about bearer tokens: the demo service app as apps were before
        // "Require DPoP" (tests/sim/dpop.rs covers DPoP).
        sim.state.set_service_app_dpop(SERVICE_APP_CLIENT_ID, false);
        let base = sim.base_url().to_string();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("sim-users-test/1.0")
            .build()
            .unwrap();
        Sim { sim, base, http }
    }

    fn state(&self) -> &SimState {
        &self.sim.state
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let bodiless_write = method == Method::POST || method == Method::PUT;
        if let Some(body) = body {
            request = request.json(&body);
        } else if bodiless_write {
            // Okta requires `Content-Length: 0` on a bodiless POST/PUT. reqwest (hyper 1)
            // sends no length for an empty body, even `.body("")`: set it explicitly.
            request = request.header("content-length", "0");
        }
        let response = request.send().await.unwrap();
        Resp {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(SSWS), None).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Resp {
        self.send(Method::POST, path, Some(SSWS), body).await
    }

    async fn put(&self, path: &str, body: Option<Value>) -> Resp {
        self.send(Method::PUT, path, Some(SSWS), body).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(SSWS), None).await
    }

    /// Seeded end users (not the demo accounts) with this status, by id.
    fn users_with(&self, status: UserStatus) -> Vec<String> {
        self.state()
            .store()
            .users
            .values()
            // Seeded end users have `first.last{n}@example.com` logins.
            .filter(|u| u.status == status && u.login.split('@').next().unwrap().contains('.'))
            .map(|u| u.id.clone())
            .collect()
    }

    /// An ACTIVE end user with a password.
    fn active_user(&self) -> String {
        self.users_with(UserStatus::Active)[0].clone()
    }

    fn all_users(&self) -> Vec<(String, UserStatus)> {
        self.state()
            .store()
            .users
            .values()
            .map(|u| (u.id.clone(), u.status))
            .collect()
    }

    fn status(&self, id: &str) -> UserStatus {
        self.state().user(id).expect("user exists").status
    }

    fn events(&self) -> Vec<Value> {
        self.state().log_events()
    }

    /// Collects every page of a collection by following `next` links.
    async fn all_pages(&self, first: &str) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut pages = 0;
        let mut url = Some(first.to_string());
        while let Some(u) = url {
            let r = self.get(&u).await;
            assert_eq!(r.status, 200, "{}", r.text);
            ids.extend(r.ids());
            pages += 1;
            url = r.next();
            assert!(pages < 100, "runaway paging");
        }
        (ids, pages)
    }

    /// A client assertion for the demo service app.
    fn assertion(&self, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(SERVICE_APP_KID.into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(SERVICE_APP_KEY_PEM.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn assertion_claims(&self) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": SERVICE_APP_CLIENT_ID,
            "sub": SERVICE_APP_CLIENT_ID,
            "aud": format!("{}/oauth2/v1/token", self.base),
            "iat": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    async fn token_request(&self, assertion: &str, scope: &str) -> Resp {
        let response = self
            .http
            .post(self.url("/oauth2/v1/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
            ])
            .send()
            .await
            .unwrap();
        Resp {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    /// An org access token for the demo service app with these scopes.
    async fn bearer(&self, scope: &str) -> String {
        let r = self
            .token_request(&self.assertion(self.assertion_claims()), scope)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        format!("Bearer {}", r.json()["access_token"].as_str().unwrap())
    }
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn is_okta_timestamp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 24
            && s.ends_with('Z')
            && s.as_bytes()[19] == b'.'
            && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .is_ok()
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn new_user(login: &str) -> Value {
    json!({
        "profile": {
            "firstName": "Test",
            "lastName": "User",
            "email": login,
            "login": login,
        }
    })
}

// ---------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn management_api_authentication_errors() {
    let s = Sim::new().await;
    let r = s.send(Method::GET, "/api/v1/users", None, None).await;
    r.assert_error(403, "E0000005");
    assert_eq!(r.json()["errorSummary"], "Invalid session");
    for malformed in [
        "Basic Zm9vOmJhcg==",
        "SSWS",
        "demo-ssws-token",
        "Bearer",
        "Token x",
    ] {
        s.send(Method::GET, "/api/v1/users", Some(malformed), None)
            .await
            .assert_error(403, "E0000005");
    }
    let r = s
        .send(Method::GET, "/api/v1/users", Some("SSWS not-a-token"), None)
        .await;
    r.assert_error(401, "E0000011");
    assert_eq!(r.json()["errorSummary"], "Invalid token provided");
    assert_eq!(r.json()["errorCauses"], json!([]));
    assert!(!r.header("x-okta-request-id").is_empty());
    assert!(!r.header("x-rate-limit-limit").is_empty());

    let ok = s.get("/api/v1/users").await;
    assert_eq!(ok.status, 200);
    assert!(ok.header("content-type").starts_with("application/json"));
    assert!(!ok.header("date").is_empty(), "Date header");

    // A revoked token stops working; a new one works.
    s.state().add_api_token("second-token");
    assert_eq!(
        s.send(
            Method::GET,
            "/api/v1/users",
            Some("SSWS second-token"),
            None
        )
        .await
        .status,
        200
    );
    s.state().revoke_api_token("second-token");
    s.send(
        Method::GET,
        "/api/v1/users",
        Some("SSWS second-token"),
        None,
    )
    .await
    .assert_error(401, "E0000011");

    // A bogus bearer token and a token from the custom authorization server are refused.
    s.send(
        Method::GET,
        "/api/v1/users",
        Some("Bearer abc.def.ghi"),
        None,
    )
    .await
    .assert_error(401, "E0000011");
    let custom = s
        .http
        .post(format!("{}/v1/token", s.sim.issuer()))
        .basic_auth("0oaSupportAppClient1", Some("demo-support-app-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.users.read"),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let custom = format!("Bearer {}", custom["access_token"].as_str().unwrap());
    s.send(Method::GET, "/api/v1/users", Some(&custom), None)
        .await
        .assert_error(401, "E0000011");
}

#[tokio::test]
async fn org_authorization_server_issues_scoped_tokens() {
    let s = Sim::new().await;
    let r = s
        .token_request(
            &s.assertion(s.assertion_claims()),
            "okta.users.read okta.logs.read",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "okta.users.read okta.logs.read");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["sub"], SERVICE_APP_CLIENT_ID);
    assert_eq!(claims["cid"], SERVICE_APP_CLIENT_ID);
    assert!(claims.get("uid").is_none());
    assert_eq!(claims["scp"], json!(["okta.users.read", "okta.logs.read"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    // The token's key is published at /oauth2/v1/keys.
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwks = s
        .send(Method::GET, "/oauth2/v1/keys", None, None)
        .await
        .json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str())
    );

    let bearer = format!("Bearer {token}");
    assert_eq!(
        s.send(Method::GET, "/api/v1/users?limit=1", Some(&bearer), None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.send(Method::GET, "/api/v1/logs", Some(&bearer), None)
            .await
            .status,
        200
    );
    // Missing scopes: 403, empty body, WWW-Authenticate naming the scope.
    let id = s.active_user();
    for (method, path, scope) in [
        (
            Method::POST,
            format!("/api/v1/users/{id}/lifecycle/suspend"),
            "okta.users.manage",
        ),
        (
            Method::GET,
            "/api/v1/groups".to_string(),
            "okta.groups.read",
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{id}"),
            "okta.users.manage",
        ),
    ] {
        let r = s.send(method, &path, Some(&bearer), None).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.text, "", "{path}");
        let challenge = r.header("www-authenticate");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(r#"error="insufficient_scope""#));
        assert!(
            challenge.contains(&format!(r#"scope="{scope}""#)),
            "{challenge}"
        );
        assert!(challenge.contains(&format!(r#"realm="{}""#, s.base)));
        assert!(challenge.contains(&format!(r#"resource="{path}""#)));
    }
    assert_eq!(s.status(&id), UserStatus::Active, "nothing changed");
    // `okta.users.manage` includes reading.
    let manage = s.bearer("okta.users.manage").await;
    assert_eq!(
        s.send(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            Some(&manage),
            None
        )
        .await
        .status,
        200
    );
    let r = s
        .send(
            Method::GET,
            "/api/v1/logs",
            Some(&s.bearer("okta.users.manage").await),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .contains(r#"scope="okta.logs.read""#)
    );
}

#[tokio::test]
async fn client_assertion_rules() {
    let s = Sim::new().await;
    let scope = "okta.users.read";
    // A jti is accepted once.
    let assertion = s.assertion(s.assertion_claims());
    assert_eq!(s.token_request(&assertion, scope).await.status, 200);
    let replay = s.token_request(&assertion, scope).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.json()["error"], "invalid_client");

    let bad = |change: &dyn Fn(&mut Value)| {
        let mut claims = s.assertion_claims();
        change(&mut claims);
        s.assertion(claims)
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            bad(&|c| c["aud"] = json!(format!("{}/oauth2/default/v1/token", s.base))),
        ),
        ("exp 2 h ahead", bad(&|c| c["exp"] = json!(now + 7200))),
        ("expired", bad(&|c| c["exp"] = json!(now - 600))),
        ("iat in the future", bad(&|c| c["iat"] = json!(now + 600))),
        (
            "iss differs",
            bad(&|c| c["iss"] = json!("0oaSomebodyElse00001")),
        ),
        (
            "unknown client",
            bad(&|c| {
                c["iss"] = json!("0oaSomebodyElse00001");
                c["sub"] = json!("0oaSomebodyElse00001");
            }),
        ),
    ];
    for (what, assertion) in cases {
        let r = s.token_request(&assertion, scope).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}: {}",
            r.text
        );
    }
    // Signed by another key.
    let rogue = include_str!("../../src/keys/rogue-key.pem");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(SERVICE_APP_KID.into());
    let forged = jsonwebtoken::encode(
        &header,
        &s.assertion_claims(),
        &jsonwebtoken::EncodingKey::from_rsa_pem(rogue.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(s.token_request(&forged, scope).await.status, 401);

    // Another registered service app, granted fewer scopes, with the same key.
    let mut other = okta_sim::org_as::demo_service_app().unwrap();
    other.client_id = "0oaReadOnlyService01".into();
    other.granted_scopes = vec!["okta.users.read".into()];
    other.dpop_bound_access_tokens = false;
    s.state().register_service_app(other);
    let claims_for = |client: &str| {
        let mut c = s.assertion_claims();
        c["iss"] = json!(client);
        c["sub"] = json!(client);
        s.assertion(c)
    };
    let r = s
        .token_request(&claims_for("0oaReadOnlyService01"), "okta.users.read")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        claims_of(r.json()["access_token"].as_str().unwrap())["cid"],
        "0oaReadOnlyService01"
    );
    let r = s
        .token_request(&claims_for("0oaReadOnlyService01"), "okta.users.manage")
        .await;
    assert_eq!(r.json()["error"], "invalid_scope");

    // Scopes must be granted to the app.
    let r = s
        .token_request(
            &s.assertion(s.assertion_claims()),
            "okta.users.read okta.roles.read",
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let r = s
        .token_request(&s.assertion(s.assertion_claims()), "")
        .await;
    assert_eq!(r.json()["error"], "invalid_scope");
    // No credentials; wrong assertion type; unsupported grant.
    let form = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s.http.post(s.url("/oauth2/v1/token")).form(&pairs).send()
    };
    let r = form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let a = s.assertion(s.assertion_claims());
    let r = form(&[
        ("grant_type", "client_credentials"),
        ("scope", scope),
        ("client_assertion_type", "urn:example:wrong"),
        ("client_assertion", &a),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let a = s.assertion(s.assertion_claims());
    let r = form(&[
        ("grant_type", "password"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &a),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

// ---------------------------------------------------------------------------------------
// Listing, finding, filtering, searching

#[tokio::test]
async fn list_excludes_deprovisioned_and_pages_with_link_headers() {
    let s = Sim::new().await;
    let expected: BTreeSet<String> = s
        .all_users()
        .into_iter()
        .filter(|(_, st)| *st != UserStatus::Deprovisioned)
        .map(|(id, _)| id)
        .collect();
    assert!(expected.len() > 20);

    let first = s.get("/api/v1/users?limit=7").await;
    assert_eq!(first.status, 200);
    let links: Vec<String> = first
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(links.len(), 2, "separate self and next headers: {links:?}");
    assert_eq!(
        links[0],
        format!("<{}/api/v1/users?limit=7>; rel=\"self\"", s.base)
    );
    let next = first.next().unwrap();
    assert!(next.starts_with(&format!("{}/api/v1/users?", s.base)));
    assert!(next.contains("after=") && next.contains("limit=7"));
    // Collection members carry only `_links.self`.
    for u in first.json().as_array().unwrap() {
        let links = u["_links"].as_object().unwrap();
        assert_eq!(links.keys().collect::<Vec<_>>(), vec!["self"]);
        assert_eq!(
            u["_links"]["self"]["href"],
            format!("{}/api/v1/users/{}", s.base, u["id"].as_str().unwrap())
        );
    }

    let (ids, pages) = s.all_pages("/api/v1/users?limit=7").await;
    assert_eq!(pages, expected.len().div_ceil(7));
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    assert_eq!(unique, expected, "every user seen once, no DEPROVISIONED");

    // Default limit 200: one page, no next link.
    let all = s.get("/api/v1/users").await;
    assert_eq!(all.ids().len(), expected.len());
    assert!(all.next().is_none());
    // Limits above 200 are capped; bad limits and cursors are refused.
    assert_eq!(
        s.get("/api/v1/users?limit=1000").await.ids().len(),
        expected.len()
    );
    for bad in ["limit=abc", "limit=0", "limit=-5", "after=not-a-cursor"] {
        s.get(&format!("/api/v1/users?{bad}"))
            .await
            .assert_error(400, "E0000029");
    }
}

#[tokio::test]
async fn find_with_q_is_a_prefix_match_limited_to_ten() {
    let s = Sim::new().await;
    let store_users: Vec<_> = s.state().store().users.values().cloned().collect();
    let expect = |q: &str| -> BTreeSet<String> {
        let q = q.to_lowercase();
        store_users
            .iter()
            .filter(|u| u.status != UserStatus::Deprovisioned)
            .filter(|u| {
                [&u.first_name, &u.last_name, &u.email]
                    .iter()
                    .any(|f| f.to_lowercase().starts_with(&q))
            })
            .map(|u| u.id.clone())
            .collect()
    };
    // A first name that occurs, queried in a different case.
    let name = store_users[5].first_name.clone();
    let q: String = name.chars().take(2).collect::<String>().to_uppercase();
    let want = expect(&q);
    assert!(!want.is_empty());
    let r = s
        .get(&format!("/api/v1/users?q={}&limit=200", enc(&q)))
        .await;
    assert_eq!(r.ids().into_iter().collect::<BTreeSet<_>>(), want);
    // Default limit 10, and no next link for `q`.
    let r = s.get("/api/v1/users?q=a").await;
    assert!(r.ids().len() <= 10);
    if expect("a").len() > 10 {
        assert_eq!(r.ids().len(), 10);
    }
    assert!(r.next().is_none());
    // Last name and email prefixes.
    let last = store_users[7].last_name.clone();
    let r = s
        .get(&format!("/api/v1/users?q={}&limit=200", enc(&last)))
        .await;
    assert_eq!(r.ids().into_iter().collect::<BTreeSet<_>>(), expect(&last));
    let r = s.get("/api/v1/users?q=agent%40&limit=200").await;
    assert_eq!(r.ids().len(), 1);
    // Deprovisioned users are not found.
    let gone = s.users_with(UserStatus::Deprovisioned)[0].clone();
    let login = s.state().user(&gone).unwrap().login;
    assert!(
        s.get(&format!("/api/v1/users?q={}", enc(&login)))
            .await
            .ids()
            .is_empty()
    );
    // Nothing matches: [] with 200.
    let r = s.get("/api/v1/users?q=zzzzzz").await;
    assert_eq!((r.status, r.text.as_str()), (200, "[]"));
}

#[tokio::test]
async fn filter_supports_only_its_fields_and_eq() {
    let s = Sim::new().await;
    let users = s.all_users();
    let with = |st: UserStatus| -> BTreeSet<String> {
        users
            .iter()
            .filter(|(_, x)| *x == st)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let f = |expr: &str| format!("/api/v1/users?filter={}", enc(expr));
    let r = s.get(&f(r#"status eq "LOCKED_OUT""#)).await;
    assert_eq!(
        r.ids().into_iter().collect::<BTreeSet<_>>(),
        with(UserStatus::LockedOut)
    );
    // Filter includes DEPROVISIONED users.
    let r = s.get(&f(r#"status eq "DEPROVISIONED""#)).await;
    assert_eq!(
        r.ids().into_iter().collect::<BTreeSet<_>>(),
        with(UserStatus::Deprovisioned)
    );
    assert!(!r.ids().is_empty());
    // Values are case-sensitive in `filter`.
    assert!(
        s.get(&f(r#"status eq "locked_out""#))
            .await
            .ids()
            .is_empty()
    );
    // or / and / parentheses.
    let r = s
        .get(&f(r#"(status eq "LOCKED_OUT" or status eq "SUSPENDED") and lastUpdated gt "2000-01-01T00:00:00.000Z""#))
        .await;
    let mut want = with(UserStatus::LockedOut);
    want.extend(with(UserStatus::Suspended));
    assert_eq!(r.ids().into_iter().collect::<BTreeSet<_>>(), want);
    let r = s.get(&f(r#"profile.login eq "agent@example.com""#)).await;
    assert_eq!(r.ids().len(), 1);
    assert!(
        s.get(&f(r#"lastUpdated lt "2000-01-01T00:00:00.000Z""#))
            .await
            .ids()
            .is_empty()
    );
    for bad in [
        r#"profile.login sw "agent""#,
        r#"status ne "ACTIVE""#,
        r#"profile.department eq "Support""#,
        r#"created gt "2000-01-01T00:00:00.000Z""#,
        r#"not (status eq "ACTIVE")"#,
        r#"status eq ACTIVE"#,
        r#"status eq "ACTIVE" and"#,
    ] {
        s.get(&f(bad)).await.assert_error(400, "E0000031");
    }
}

#[tokio::test]
async fn search_operators_logic_escaping_and_sorting() {
    let s = Sim::new().await;
    let store_users: Vec<_> = s.state().store().users.values().cloned().collect();
    let search = |expr: &str| format!("/api/v1/users?search={}", enc(expr));
    let found = |r: Resp| r.ids().into_iter().collect::<BTreeSet<String>>();
    let expect = |pred: &dyn Fn(&okta_sim::SimUser) -> bool| -> BTreeSet<String> {
        store_users
            .iter()
            .filter(|u| pred(u))
            .map(|u| u.id.clone())
            .collect()
    };

    // eq: case-insensitive operator and value; includes DEPROVISIONED.
    let r = s.get(&search(r#"status EQ "deprovisioned""#)).await;
    assert_eq!(found(r), expect(&|u| u.status == UserStatus::Deprovisioned));
    // sw
    let last = store_users[10].last_name.clone();
    let prefix: String = last.chars().take(3).collect::<String>().to_lowercase();
    let r = s
        .get(&search(&format!(r#"profile.lastName sw "{prefix}""#)))
        .await;
    assert_eq!(
        found(r),
        expect(&|u| u.last_name.to_lowercase().starts_with(&prefix))
    );
    // co on the four allowed attributes only.
    let r = s.get(&search(r#"profile.email co "AGENT""#)).await;
    assert_eq!(found(r), expect(&|u| u.email.contains("agent")));
    s.get(&search(r#"profile.department co "Sup""#))
        .await
        .assert_error(400, "E0000031");
    // pr
    let r = s.get(&search("profile.mobilePhone pr")).await;
    assert_eq!(found(r), expect(&|u| u.mobile_phone.is_some()));
    assert!(!expect(&|u| u.mobile_phone.is_some()).is_empty());
    // gt / ge / lt / le on dates.
    let pivot = store_users[20].created;
    let pivot_s = okta_sim::users::timestamp(pivot);
    for op in ["gt", "ge", "lt", "le"] {
        let r = s
            .get(&search(&format!(r#"created {op} "{pivot_s}""#)))
            .await;
        // Seeded timestamps have sub-millisecond precision; compare at milliseconds.
        let want = expect(&|u| {
            let ms = |t: time::OffsetDateTime| t.unix_timestamp_nanos() / 1_000_000;
            let (a, b) = (ms(u.created), ms(pivot));
            match op {
                "gt" => a > b,
                "ge" => a >= b,
                "lt" => a < b,
                _ => a <= b,
            }
        });
        assert!(!want.is_empty());
        assert_eq!(found(r), want, "created {op}");
    }
    // The documented `ne` workaround.
    let r = s
        .get(&search(r#"(status lt "STAGED" or status gt "STAGED")"#))
        .await;
    assert_eq!(found(r), expect(&|u| u.status != UserStatus::Staged));
    // Precedence: `and` binds tighter than `or`.
    let r = s
        .get(&search(
            r#"status eq "SUSPENDED" or status eq "ACTIVE" and profile.login eq "agent@example.com""#,
        ))
        .await;
    assert_eq!(
        found(r),
        expect(&|u| u.status == UserStatus::Suspended
            || (u.status == UserStatus::Active && u.login == "agent@example.com"))
    );
    let r = s
        .get(&search(
            r#"(status eq "SUSPENDED" or status eq "ACTIVE") and profile.login eq "agent@example.com""#,
        ))
        .await;
    assert_eq!(found(r).len(), 1);
    // JSON string escapes.
    let created = s
        .post(
            "/api/v1/users?activate=false",
            Some(json!({"profile": {
                "firstName": "Quote", "lastName": "Tester", "email": "quote@example.com",
                "login": "quote@example.com", "nickName": "say \"hi\" \\o/"
            }})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let r = s
        .get(&search(r#"profile.nickName eq "SAY \"HI\" \\o/""#))
        .await;
    assert_eq!(
        r.ids(),
        vec![created.json()["id"].as_str().unwrap().to_string()]
    );
    // Unsupported operators and malformed expressions.
    for bad in [
        r#"status ne "ACTIVE""#,
        r#"profile.email ew "example.com""#,
        r#"status eqq "ACTIVE""#,
        r#"status eq "ACTIVE" and (profile.firstName sw "A""#,
        r#"lastLogin gt "2020-01-01T00:00:00.000Z""#,
        r#"not (status eq "ACTIVE")"#,
        "",
    ] {
        s.get(&search(bad)).await.assert_error(400, "E0000031");
    }
    // search and filter together.
    s.get(&format!(
        "/api/v1/users?search={}&filter={}",
        enc(r#"status eq "ACTIVE""#),
        enc(r#"status eq "ACTIVE""#)
    ))
    .await
    .assert_error(400, "E0000033");

    // sortBy / sortOrder, ties by id, paged through next links.
    let path = format!(
        "/api/v1/users?search={}&sortBy=profile.lastName&sortOrder=desc&limit=6",
        enc(r#"status pr"#)
    );
    let (ids, pages) = s.all_pages(&path).await;
    assert!(pages > 1);
    let mut want: Vec<_> = s
        .state()
        .store()
        .users
        .values()
        .map(|u| (u.last_name.to_lowercase(), u.id.clone()))
        .collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(ids, want.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// Get, create, update

#[tokio::test]
async fn get_user_by_id_and_login_and_404() {
    let s = Sim::new().await;
    let id = s.state().user("agent@example.com").unwrap().id;
    let r = s.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(r.status, 200);
    let u = r.json();
    assert_eq!(u["id"], id.as_str());
    assert_eq!(u["status"], "ACTIVE");
    for field in [
        "created",
        "activated",
        "statusChanged",
        "lastLogin",
        "lastUpdated",
        "passwordChanged",
    ] {
        assert!(is_okta_timestamp(&u[field]), "{field}: {}", u[field]);
    }
    assert!(u["type"]["id"].as_str().unwrap().starts_with("oty"));
    assert_eq!(u["profile"]["login"], "agent@example.com");
    assert_eq!(u["profile"]["firstName"], "Alex");
    assert_eq!(u["credentials"]["password"], json!({}));
    assert_eq!(
        u["credentials"]["provider"],
        json!({"type": "OKTA", "name": "OKTA"})
    );
    assert_eq!(
        u["_links"]["suspend"],
        json!({"href": format!("{}/api/v1/users/{id}/lifecycle/suspend", s.base), "method": "POST"})
    );
    // By login: URL-encoded, case-insensitive; and by short name.
    for login in ["agent%40example.com", "AGENT%40Example.COM", "agent"] {
        let r = s.get(&format!("/api/v1/users/{login}")).await;
        assert_eq!(
            (r.status, r.json()["id"].as_str()),
            (200, Some(id.as_str())),
            "{login}"
        );
    }
    let r = s.get("/api/v1/users/ghost%40example.com").await;
    r.assert_error(404, "E0000007");
    assert_eq!(
        r.json()["errorSummary"],
        "Not found: Resource not found: ghost@example.com (User)"
    );
    assert_eq!(r.json()["errorCauses"], json!([]));
    // Deprovisioned users can still be fetched.
    let gone = s.users_with(UserStatus::Deprovisioned)[0].clone();
    assert_eq!(
        s.get(&format!("/api/v1/users/{gone}")).await.json()["status"],
        "DEPROVISIONED"
    );
    // Unknown paths and methods.
    s.get("/api/v1/nothing-here")
        .await
        .assert_error(404, "E0000007");
    s.send(Method::PATCH, "/api/v1/users", Some(SSWS), None)
        .await
        .assert_error(405, "E0000022");
}

#[tokio::test]
async fn lifecycle_links_depend_on_status() {
    use UserStatus::*;
    let s = Sim::new().await;
    let id = s.active_user();
    let expected = |st: UserStatus| -> BTreeSet<&'static str> {
        let mut l = BTreeSet::from(["self", "type", "schema"]);
        if matches!(st, Staged | Deprovisioned) {
            l.insert("activate");
        }
        if matches!(st, Provisioned | Recovery) {
            l.insert("reactivate");
        }
        if st != Deprovisioned {
            l.insert("deactivate");
        }
        if st == Active {
            l.extend([
                "suspend",
                "forgotPassword",
                "changePassword",
                "changeRecoveryQuestion",
            ]);
        }
        if st == PasswordExpired {
            l.extend(["changePassword", "changeRecoveryQuestion"]);
        }
        if st == Suspended {
            l.insert("unsuspend");
        }
        if st == LockedOut {
            l.insert("unlock");
        }
        if matches!(st, Active | PasswordExpired | LockedOut | Recovery) {
            l.insert("resetPassword");
        }
        if matches!(st, Active | PasswordExpired) {
            l.insert("expirePassword");
        }
        l
    };
    for st in UserStatus::ALL {
        assert!(s.state().set_user_status(&id, st));
        let u = s.get(&format!("/api/v1/users/{id}")).await.json();
        let links: BTreeSet<&str> = u["_links"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(links, expected(st), "{st:?}");
        assert!(!links.contains("resetFactors"), "no factors enrolled");
    }
}

#[tokio::test]
async fn create_user_outcomes() {
    let s = Sim::new().await;
    let password = json!({"password": {"value": "Correct-Horse-7-battery"}});
    let portal_agents = s
        .state()
        .store()
        .groups
        .values()
        .find(|g| g.name == "Support Tier 1")
        .unwrap()
        .id
        .clone();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("?activate=false", new_user("staged@example.com"), "STAGED"),
        ("", new_user("provisioned@example.com"), "PROVISIONED"),
        (
            "?activate=true",
            {
                let mut b = new_user("active@example.com");
                b["credentials"] = password.clone();
                b["groupIds"] = json!([portal_agents]);
                b
            },
            "ACTIVE",
        ),
        (
            "?activate=false",
            {
                let mut b = new_user("staged-pw@example.com");
                b["credentials"] = password.clone();
                b
            },
            "STAGED",
        ),
        (
            "?activate=true&nextLogin=changePassword",
            {
                let mut b = new_user("expired@example.com");
                b["credentials"] = password.clone();
                b
            },
            "PASSWORD_EXPIRED",
        ),
        (
            "?provider=true",
            {
                let mut b = new_user("federated@example.com");
                b["credentials"] =
                    json!({"provider": {"type": "FEDERATION", "name": "FEDERATION"}});
                b
            },
            "ACTIVE",
        ),
        (
            "?activate=false&provider=true",
            {
                let mut b = new_user("federated-staged@example.com");
                b["credentials"] = json!({"provider": {"type": "SOCIAL", "name": "SOCIAL"}});
                b
            },
            "STAGED",
        ),
    ];
    for (query, body, status) in cases {
        let before = s.events().len();
        let r = s
            .post(&format!("/api/v1/users{query}"), Some(body.clone()))
            .await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        let u = r.json();
        assert_eq!(u["status"], status, "{query}");
        assert!(u["id"].as_str().unwrap().starts_with("00u"));
        assert_eq!(u["id"].as_str().unwrap().len(), 20);
        assert_eq!(u["profile"]["login"], body["profile"]["login"]);
        assert!(is_okta_timestamp(&u["created"]));
        assert!(u["_links"]["self"].is_object());
        let id = u["id"].as_str().unwrap();
        assert_eq!(s.status(id).as_str(), status);
        let has_password = body["credentials"]["password"].is_object();
        assert_eq!(
            u["credentials"]["password"].is_object(),
            has_password,
            "{query}"
        );
        assert_eq!(is_okta_timestamp(&u["passwordChanged"]), has_password);
        if status == "STAGED" {
            assert!(u["_links"]["activate"].is_object());
            assert_eq!(u["activated"], Value::Null);
            assert_eq!(u["statusChanged"], Value::Null);
        } else {
            assert!(is_okta_timestamp(&u["activated"]));
        }
        let types: Vec<String> = s.events()[before..]
            .iter()
            .map(|e| e["eventType"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types[0], "user.lifecycle.create");
        assert_eq!(
            types.contains(&"user.lifecycle.activate".to_string()),
            status != "STAGED"
        );
        // Membership: Everyone plus the requested groups.
        let groups = s.get(&format!("/api/v1/users/{id}/groups")).await.json();
        let names: Vec<&str> = groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["profile"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"Everyone"));
        assert_eq!(
            names.contains(&"Support Tier 1"),
            body.get("groupIds").is_some()
        );
    }
    // The created user is visible by login.
    assert_eq!(
        s.get("/api/v1/users/active%40example.com").await.status,
        200
    );
}

#[tokio::test]
async fn create_user_validation_errors() {
    let s = Sim::new().await;
    let count = s.all_users().len();
    let post = |query: &'static str, body: Value| {
        let s = &s;
        async move { s.post(&format!("/api/v1/users{query}"), Some(body)).await }
    };
    // Each blank required field.
    for field in ["login", "email", "firstName", "lastName"] {
        for blank in [Value::Null, json!(""), json!("   ")] {
            let mut body = new_user("blank@example.com");
            body["profile"][field] = blank.clone();
            let r = post("", body).await;
            r.assert_error(400, "E0000001");
            assert_eq!(
                r.json()["errorSummary"],
                format!("Api validation failed: {field}")
            );
            assert_eq!(
                r.json()["errorCauses"],
                json!([{ "errorSummary": format!("{field}: The field cannot be left blank") }])
            );
        }
        let mut body = new_user("blank@example.com");
        body["profile"].as_object_mut().unwrap().remove(field);
        post("", body).await.assert_error(400, "E0000001");
    }
    // No profile at all: every required field.
    let r = post("", json!({})).await;
    r.assert_error(400, "E0000001");
    assert_eq!(r.json()["errorCauses"].as_array().unwrap().len(), 4);
    // Login format and lengths.
    let r = post("", new_user("not-an-email")).await;
    r.assert_error(400, "E0000001");
    assert_eq!(r.json()["errorSummary"], "Api validation failed: login");
    let long = format!("{}@example.com", "a".repeat(95));
    post("", new_user(&long))
        .await
        .assert_error(400, "E0000001");
    let mut body = new_user("long-name@example.com");
    body["profile"]["firstName"] = json!("x".repeat(51));
    let r = post("", body).await;
    r.assert_error(400, "E0000001");
    assert_eq!(r.json()["errorSummary"], "Api validation failed: firstName");
    let mut body = new_user("bad-email@example.com");
    body["profile"]["email"] = json!("nope");
    assert_eq!(
        post("", body).await.json()["errorSummary"],
        "Api validation failed: email"
    );
    let mut body = new_user("unknown-attr@example.com");
    body["profile"]["favouriteColour"] = json!("blue");
    post("", body).await.assert_error(400, "E0000001");
    // Duplicate login, ignoring case and diacritics.
    for dup in [
        "AGENT@example.com",
        "agent@EXAMPLE.com",
        "àgent@example.com",
    ] {
        let r = post("", new_user(dup)).await;
        r.assert_error(400, "E0000001");
        assert_eq!(r.json()["errorSummary"], "Api validation failed: login");
        assert_eq!(
            r.json()["errorCauses"],
            json!([{ "errorSummary": "login: An object with this field already exists in the current organization" }])
        );
    }
    // More than 20 groups.
    let mut body = new_user("groups@example.com");
    body["groupIds"] = json!((0..21).map(|i| format!("00g{i:017}")).collect::<Vec<_>>());
    let r = post("", body).await;
    r.assert_error(400, "E0000093");
    assert_eq!(r.json()["errorSummary"], "Target count limit exceeded");
    // An unknown group.
    let mut body = new_user("groups@example.com");
    body["groupIds"] = json!(["00gDoesNotExist00000"]);
    let r = post("", body).await;
    r.assert_error(404, "E0000007");
    assert_eq!(
        r.json()["errorSummary"],
        "Not found: Resource not found: 00gDoesNotExist00000 (UserGroup)"
    );
    // nextLogin rules.
    post("?nextLogin=changePassword", new_user("np@example.com"))
        .await
        .assert_error(400, "E0000124");
    let mut body = new_user("np@example.com");
    body["credentials"] = json!({"password": {"value": "Correct-Horse-7-battery"}});
    post("?activate=false&nextLogin=changePassword", body)
        .await
        .assert_error(400, "E0000125");
    // Password policy.
    let mut body = new_user("weak@example.com");
    body["credentials"] = json!({"password": {"value": "short"}});
    let r = post("", body).await;
    r.assert_error(400, "E0000001");
    assert_eq!(r.json()["errorSummary"], "Api validation failed: password");
    // 4-byte UTF-8 characters.
    let mut body = new_user("emoji@example.com");
    body["profile"]["firstName"] = json!("Smile 😀");
    let r = post("", body).await;
    r.assert_error(400, "E0000001");
    assert_eq!(r.json()["errorSummary"], "Api validation failed: firstName");
    // 3-byte characters are fine.
    let mut body = new_user("cjk@example.com");
    body["profile"]["firstName"] = json!("漢字 Zoë");
    assert_eq!(post("", body).await.status, 200);
    // Malformed JSON.
    let r = s
        .http
        .post(s.url("/api/v1/users"))
        .header("authorization", SSWS)
        .header("content-type", "application/json")
        .body("{\"profile\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], "E0000003");
    // Only the one valid request created a user.
    assert_eq!(s.all_users().len(), count + 1);
}

#[tokio::test]
async fn update_user_partial_and_full() {
    let s = Sim::new().await;
    let id = s.active_user();
    let before = s.state().user(&id).unwrap();
    let r = s
        .post(
            &format!("/api/v1/users/{id}"),
            Some(json!({"profile": {"firstName": "Renamed", "title": "Engineer"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json();
    assert_eq!(u["profile"]["firstName"], "Renamed");
    assert_eq!(u["profile"]["title"], "Engineer");
    assert_eq!(u["profile"]["lastName"], before.last_name.as_str());
    assert_eq!(u["profile"]["login"], before.login.as_str());
    assert!(u["lastUpdated"].as_str().unwrap() > crate_ts(before.last_updated).as_str());
    let event = s.events().last().cloned().unwrap();
    assert_eq!(event["eventType"], "user.account.update_profile");
    assert_eq!(event["target"][0]["id"], id.as_str());
    // A duplicate login is refused, the user unchanged.
    let r = s
        .post(
            &format!("/api/v1/users/{id}"),
            Some(json!({"profile": {"login": "Manager@example.com"}})),
        )
        .await;
    r.assert_error(400, "E0000001");
    assert_eq!(s.state().user(&id).unwrap().login, before.login);
    // PUT replaces the whole profile.
    let r = s
        .put(
            &format!("/api/v1/users/{id}"),
            Some(json!({"profile": {
                "firstName": "Full", "lastName": "Replace",
                "email": "full.replace@example.com", "login": "full.replace@example.com"
            }})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json();
    assert_eq!(u["profile"]["login"], "full.replace@example.com");
    assert!(u["profile"].get("title").is_none());
    assert!(u["profile"].get("department").is_none());
    // A password set by the admin.
    let r = s
        .post(
            &format!("/api/v1/users/{id}"),
            Some(json!({"credentials": {"password": {"value": "Another-Passw0rd"}}})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.events().last().unwrap()["eventType"],
        "user.account.update_password"
    );
    // Deprovisioned users cannot be updated.
    let gone = s.users_with(UserStatus::Deprovisioned)[0].clone();
    s.post(
        &format!("/api/v1/users/{gone}"),
        Some(json!({"profile": {"firstName": "X"}})),
    )
    .await
    .assert_error(404, "E0000007");
    s.post(
        "/api/v1/users/00uNobodyAtAll000000",
        Some(json!({"profile": {"firstName": "X"}})),
    )
    .await
    .assert_error(404, "E0000007");
}

fn crate_ts(t: time::OffsetDateTime) -> String {
    okta_sim::users::timestamp(t)
}

// ---------------------------------------------------------------------------------------
// Lifecycle

#[derive(Debug)]
enum Outcome {
    Ok(Option<UserStatus>, &'static str),
    Err(u16, &'static str),
}

fn lifecycle_expectation(op: &str, from: UserStatus) -> Outcome {
    use Outcome::*;
    use UserStatus::*;
    match op {
        "activate" => match from {
            // The seeded user has a password, so activation makes it ACTIVE.
            Staged | Deprovisioned => Ok(Some(Active), "user.lifecycle.activate"),
            Active => Err(403, "E0000016"),
            _ => Err(403, "E0000038"),
        },
        "reactivate" => match from {
            Provisioned | Recovery => Ok(None, "user.lifecycle.reactivate"),
            _ => Err(403, "E0000038"),
        },
        "deactivate" => match from {
            Deprovisioned => Err(404, "E0000007"),
            _ => Ok(Some(Deprovisioned), "user.lifecycle.deactivate"),
        },
        "suspend" => match from {
            Active => Ok(Some(Suspended), "user.lifecycle.suspend"),
            _ => Err(400, "E0000001"),
        },
        "unsuspend" => match from {
            Suspended => Ok(Some(Active), "user.lifecycle.unsuspend"),
            _ => Err(400, "E0000001"),
        },
        "unlock" => match from {
            LockedOut => Ok(Some(Active), "user.account.unlock_by_admin"),
            _ => Err(403, "E0000032"),
        },
        "reset_password" => match from {
            Active | PasswordExpired | LockedOut | Recovery => {
                Ok(Some(Recovery), "user.account.reset_password")
            }
            _ => Err(403, "E0000038"),
        },
        "expire_password" | "expire_password_with_temp_password" => match from {
            Active | PasswordExpired => Ok(Some(PasswordExpired), "user.account.expire_password"),
            _ => Err(403, "E0000038"),
        },
        "reset_factors" => match from {
            Staged | Provisioned | Deprovisioned => Err(403, "E0000038"),
            _ => Ok(None, "user.mfa.factor.reset_all"),
        },
        _ => unreachable!(),
    }
}

const OPS: &[&str] = &[
    "activate",
    "reactivate",
    "deactivate",
    "suspend",
    "unsuspend",
    "unlock",
    "reset_password",
    "expire_password",
    "expire_password_with_temp_password",
    "reset_factors",
];

#[tokio::test]
async fn every_lifecycle_operation_from_every_status() {
    let s = Sim::new().await;
    let id = s.active_user();
    let login = s.state().user(&id).unwrap().login;
    for op in OPS {
        for from in UserStatus::ALL {
            assert!(s.state().set_user_status(&id, from));
            let before = s.state().user(&id).unwrap();
            let events_before = s.events().len();
            let query = if *op == "reset_password" {
                "?sendEmail=false"
            } else {
                ""
            };
            // Lifecycle paths accept the login too.
            let who = if from == UserStatus::Suspended {
                enc(&login)
            } else {
                id.clone()
            };
            let r = s
                .post(&format!("/api/v1/users/{who}/lifecycle/{op}{query}"), None)
                .await;
            let after = s.state().user(&id).unwrap();
            match lifecycle_expectation(op, from) {
                Outcome::Ok(to, event) => {
                    assert_eq!(r.status, 200, "{op} from {from:?}: {}", r.text);
                    let to = to.unwrap_or(from);
                    assert_eq!(after.status, to, "{op} from {from:?}");
                    assert!(after.last_updated > before.last_updated);
                    if to != from {
                        assert!(after.status_changed > before.status_changed);
                    } else {
                        assert_eq!(after.status_changed, before.status_changed);
                    }
                    let body = r.json();
                    match *op {
                        "activate" => assert_eq!(body, json!({})),
                        "reactivate" => {
                            let token = body["activationToken"].as_str().unwrap();
                            assert_eq!(
                                body["activationUrl"],
                                format!("{}/tokens/{token}/verify", s.base)
                            );
                        }
                        "reset_password" => assert!(
                            body["resetPasswordUrl"]
                                .as_str()
                                .unwrap()
                                .starts_with(&format!("{}/signin/reset-password/", s.base))
                        ),
                        "expire_password" => {
                            assert_eq!(body["id"], id.as_str());
                            assert_eq!(body["status"], "PASSWORD_EXPIRED");
                            assert!(body["_links"]["resetPassword"].is_object());
                        }
                        "expire_password_with_temp_password" => {
                            let temp = body["tempPassword"].as_str().unwrap();
                            assert!(temp.len() >= 8);
                            assert_eq!(after.password.as_deref(), Some(temp));
                            assert!(after.password_changed > before.password_changed);
                        }
                        _ => assert_eq!(r.text, "", "{op}: empty body"),
                    }
                    let events = s.events();
                    assert_eq!(events.len(), events_before + 1, "{op} from {from:?}");
                    let e = events.last().unwrap();
                    assert_eq!(e["eventType"], event);
                    assert_eq!(e["target"][0]["id"], id.as_str());
                    assert_eq!(
                        e["debugContext"]["debugData"]["requestId"],
                        r.header("x-okta-request-id").as_str()
                    );
                }
                Outcome::Err(status, code) => {
                    r.assert_error(status, code);
                    assert_eq!(after.status, from, "{op} from {from:?} changed nothing");
                    assert_eq!(after.last_updated, before.last_updated);
                    assert_eq!(s.events().len(), events_before);
                }
            }
        }
    }
}

#[tokio::test]
async fn lifecycle_bodies_and_parameters() {
    let s = Sim::new().await;
    // Activation without a password yields PROVISIONED; sendEmail=false returns the link.
    let r = s
        .post(
            "/api/v1/users?activate=false",
            Some(new_user("nopw@example.com")),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("/api/v1/users/{id}/lifecycle/activate?sendEmail=false"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let token = body["activationToken"].as_str().unwrap();
    assert_eq!(
        body["activationUrl"],
        format!("{}/tokens/{token}/verify", s.base)
    );
    assert_eq!(s.status(&id), UserStatus::Provisioned);
    // reactivate with sendEmail=true answers {}.
    let r = s
        .post(
            &format!("/api/v1/users/{id}/lifecycle/reactivate?sendEmail=true"),
            None,
        )
        .await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    // reset_password: sendEmail is required; true answers {}.
    let active = s.active_user();
    s.post(
        &format!("/api/v1/users/{active}/lifecycle/reset_password"),
        None,
    )
    .await
    .assert_error(400, "E0000028");
    assert_eq!(s.status(&active), UserStatus::Active);
    let r = s
        .post(
            &format!(
                "/api/v1/users/{active}/lifecycle/reset_password?sendEmail=true&revokeSessions=true"
            ),
            None,
        )
        .await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    assert_eq!(s.status(&active), UserStatus::Recovery);
    // Unknown users and unknown operations.
    for op in OPS {
        s.post(
            &format!("/api/v1/users/00uNobodyAtAll000000/lifecycle/{op}?sendEmail=false"),
            None,
        )
        .await
        .assert_error(404, "E0000007");
    }
    let r = s
        .post("/api/v1/users/ghost%40example.com/lifecycle/suspend", None)
        .await;
    assert_eq!(
        r.json()["errorSummary"],
        "Not found: Resource not found: ghost@example.com (User)"
    );
    s.post(&format!("/api/v1/users/{active}/lifecycle/explode"), None)
        .await
        .assert_error(404, "E0000007");
    // Clear sessions: by id only.
    let r = s
        .delete(&format!("/api/v1/users/{active}/sessions?oauthTokens=true"))
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(
        s.events().last().unwrap()["eventType"],
        "user.session.clear"
    );
    s.delete("/api/v1/users/agent%40example.com/sessions")
        .await
        .assert_error(404, "E0000007");
}

#[tokio::test]
async fn delete_is_two_steps() {
    let s = Sim::new().await;
    let id = s.active_user();
    let before = s.events().len();
    let r = s.delete(&format!("/api/v1/users/{id}")).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(s.status(&id), UserStatus::Deprovisioned);
    assert_eq!(s.get(&format!("/api/v1/users/{id}")).await.status, 200);
    let r = s.delete(&format!("/api/v1/users/{id}")).await;
    assert_eq!(r.status, 204);
    assert!(s.state().user(&id).is_none());
    s.get(&format!("/api/v1/users/{id}"))
        .await
        .assert_error(404, "E0000007");
    s.delete(&format!("/api/v1/users/{id}"))
        .await
        .assert_error(404, "E0000007");
    let types: Vec<Value> = s.events()[before..]
        .iter()
        .map(|e| e["eventType"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("user.lifecycle.deactivate"),
            json!("user.lifecycle.delete.initiated"),
            json!("user.lifecycle.delete.completed")
        ]
    );
}

#[tokio::test]
async fn bodiless_post_needs_content_length() {
    let s = Sim::new().await;
    let id = s.active_user();
    // A POST with no body, or an empty one: reqwest (hyper 1) sends neither
    // Content-Length nor Transfer-Encoding, so Okta (and the simulator) answer 411.
    let path = format!("/api/v1/users/{id}/lifecycle/suspend");
    for request in [
        s.http.post(s.url(&path)),
        s.http.post(s.url(&path)).body(""),
        s.http.post(s.url(&path)).body(Vec::<u8>::new()),
    ] {
        let r = request.header("authorization", SSWS).send().await.unwrap();
        assert_eq!(r.status(), 411);
        assert!(r.headers().contains_key("x-rate-limit-limit"));
    }
    assert_eq!(s.status(&id), UserStatus::Active);
    // With an explicit `content-length: 0` header: accepted.
    let r = s
        .post(&format!("/api/v1/users/{id}/lifecycle/suspend"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let headers = s
        .state()
        .last_request_headers("POST", &format!("/api/v1/users/{id}/lifecycle/suspend"))
        .unwrap();
    assert_eq!(headers["content-length"], "0");
    assert_eq!(s.status(&id), UserStatus::Suspended);

    // Without Content-Length (and without Transfer-Encoding): 411, nothing changes.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(s.sim.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/users/{id}/lifecycle/unsuspend HTTP/1.1\r\nHost: {}\r\nAuthorization: {SSWS}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        s.sim.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 411"), "{raw}");
    assert!(raw.to_lowercase().contains("x-okta-request-id"));
    assert_eq!(s.status(&id), UserStatus::Suspended);
}

// ---------------------------------------------------------------------------------------
// Rate limits

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let s = Sim::new().await;
    let first = s.get("/api/v1/users?limit=1").await;
    let second = s.get("/api/v1/users?limit=1").await;
    let num = |r: &Resp, h: &str| r.header(h).parse::<i64>().unwrap();
    assert_eq!(num(&first, "x-rate-limit-limit"), 600);
    assert_eq!(num(&first, "x-rate-limit-remaining"), 599);
    assert_eq!(num(&second, "x-rate-limit-remaining"), 598);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let reset = num(&first, "x-rate-limit-reset");
    assert!(reset > now && reset <= now + 61, "reset {reset} now {now}");
    // Another bucket counts separately.
    let other = s.get("/api/v1/groups").await;
    assert_eq!(num(&other, "x-rate-limit-remaining"), 599);
    // Even errors carry the headers.
    let err = s.send(Method::GET, "/api/v1/logs", None, None).await;
    assert!(!err.header("x-rate-limit-limit").is_empty());

    s.state().set_rate_limit("GET /api/v1/users", 2);
    assert_eq!(s.get("/api/v1/users?limit=1").await.status, 200);
    let r = s.get("/api/v1/users?limit=1").await;
    assert_eq!((r.status, num(&r, "x-rate-limit-remaining")), (200, 0));
    let r = s.get("/api/v1/users?q=a").await;
    r.assert_error(429, "E0000047");
    assert_eq!(
        r.json()["errorSummary"],
        "API call exceeded rate limit due to too many requests."
    );
    assert_eq!(num(&r, "x-rate-limit-limit"), 2);
    assert_eq!(num(&r, "x-rate-limit-remaining"), 0);
    assert!(num(&r, "x-rate-limit-reset") >= now);
    assert!(
        !r.header("date").is_empty(),
        "Date header for the retry computation"
    );
    assert!(!r.header("x-okta-request-id").is_empty());
    // The single-user bucket is unaffected.
    let id = s.active_user();
    assert_eq!(s.get(&format!("/api/v1/users/{id}")).await.status, 200);
    assert_eq!(
        okta_sim::SimState::rate_limit_bucket(
            "POST",
            &format!("/api/v1/users/{id}/lifecycle/unlock")
        ),
        "POST /api/v1/users/{id}/lifecycle"
    );
    // Lifecycle bucket.
    s.state()
        .set_rate_limit("POST /api/v1/users/{id}/lifecycle", 1);
    assert_eq!(
        s.post(&format!("/api/v1/users/{id}/lifecycle/suspend"), None)
            .await
            .status,
        200
    );
    s.post(&format!("/api/v1/users/{id}/lifecycle/unsuspend"), None)
        .await
        .assert_error(429, "E0000047");
    assert_eq!(
        s.status(&id),
        UserStatus::Suspended,
        "a refused call changes nothing"
    );
}

// ---------------------------------------------------------------------------------------
// System Log

#[tokio::test]
async fn system_log_events_record_actor_target_and_request_id() {
    let s = Sim::new().await;
    let id = s.active_user();
    let user = s.state().user(&id).unwrap();
    let r = s
        .post(&format!("/api/v1/users/{id}/lifecycle/suspend"), None)
        .await;
    assert_eq!(r.status, 200);
    let request_id = r.header("x-okta-request-id");
    let e = s.events().last().cloned().unwrap();
    assert_eq!(e["eventType"], "user.lifecycle.suspend");
    assert_eq!(e["version"], "0");
    assert_eq!(e["severity"], "INFO");
    assert_eq!(e["displayMessage"], "Suspend Okta user");
    assert!(is_okta_timestamp(&e["published"]));
    assert!(uuid::Uuid::parse_str(e["uuid"].as_str().unwrap()).is_ok());
    assert_eq!(
        e["actor"],
        json!({"id": "00uPortalApiAdmin001", "type": "User", "alternateId": "portal-api@example.com",
               "displayName": "Portal API Admin", "detailEntry": null})
    );
    assert_eq!(
        e["client"]["userAgent"]["rawUserAgent"],
        "sim-users-test/1.0"
    );
    assert_eq!(e["client"]["ipAddress"], "127.0.0.1");
    assert_eq!(e["outcome"]["result"], "SUCCESS");
    assert_eq!(
        e["debugContext"]["debugData"]["requestId"],
        request_id.as_str()
    );
    assert_eq!(
        e["debugContext"]["debugData"]["requestUri"],
        format!("/api/v1/users/{id}/lifecycle/suspend")
    );
    assert_eq!(e["transaction"]["id"], request_id.as_str());
    assert_eq!(e["transaction"]["type"], "WEB");
    assert!(
        e["transaction"]["detail"]["requestApiTokenId"]
            .as_str()
            .unwrap()
            .starts_with("00T")
    );
    assert_eq!(
        e["target"],
        json!([{"id": id, "type": "User", "alternateId": user.login,
                "displayName": user.display_name(), "detailEntry": null}])
    );

    // With an OAuth token the actor is the service app.
    let bearer = s.bearer("okta.users.manage").await;
    let r = s
        .send(
            Method::POST,
            &format!("/api/v1/users/{id}/lifecycle/unsuspend"),
            Some(&bearer),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let e = s.events().last().cloned().unwrap();
    assert_eq!(e["eventType"], "user.lifecycle.unsuspend");
    assert_eq!(e["actor"]["type"], "PublicClientApp");
    assert_eq!(e["actor"]["id"], SERVICE_APP_CLIENT_ID);
    assert_eq!(
        e["transaction"]["id"],
        r.header("x-okta-request-id").as_str()
    );
    // The token grant itself was logged.
    assert!(s.events().iter().any(
        |e| e["eventType"] == "app.oauth2.as.token.grant.access_token"
            && e["actor"]["id"] == SERVICE_APP_CLIENT_ID
    ));
}

#[tokio::test]
async fn system_log_query_filters_and_paging() {
    let s = Sim::new().await;
    let users = s.users_with(UserStatus::Active);
    let (a, b) = (users[0].clone(), users[1].clone());
    for id in [&a, &b] {
        assert_eq!(
            s.post(&format!("/api/v1/users/{id}/lifecycle/suspend"), None)
                .await
                .status,
            200
        );
        assert_eq!(
            s.post(&format!("/api/v1/users/{id}/lifecycle/unsuspend"), None)
                .await
                .status,
            200
        );
    }
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{a}/lifecycle/expire_password"),
            None
        )
        .await
        .status,
        200
    );
    // 5 events.
    let logs = |q: &str| format!("/api/v1/logs?{q}");
    let filter = |f: &str| logs(&format!("filter={}", enc(f)));
    let types = |r: &Resp| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventType"].as_str().unwrap().to_string())
            .collect()
    };
    let r = s.get(&logs("")).await;
    assert_eq!(r.status, 200);
    assert_eq!(types(&r).len(), 5);
    let r = s
        .get(&filter(r#"eventType eq "user.lifecycle.suspend""#))
        .await;
    assert_eq!(types(&r), vec!["user.lifecycle.suspend"; 2]);
    let r = s.get(&filter(&format!(r#"target.id eq "{a}""#))).await;
    assert_eq!(types(&r).len(), 3);
    let r = s
        .get(&filter(r#"actor.id eq "00uPortalApiAdmin001""#))
        .await;
    assert_eq!(types(&r).len(), 5);
    let r = s.get(&filter(r#"outcome.result eq "FAILURE""#)).await;
    assert_eq!(types(&r).len(), 0);
    let r = s
        .get(&filter(
            r#"outcome.result eq "SUCCESS" and eventType sw "user.lifecycle""#,
        ))
        .await;
    assert_eq!(types(&r).len(), 4);
    let r = s.get(&filter(r#"eventType sw "user.account""#)).await;
    assert_eq!(types(&r), vec!["user.account.expire_password"]);
    let r = s
        .get(&filter(&format!(
            r#"eventType eq "user.lifecycle.suspend" and target.id eq "{b}""#
        )))
        .await;
    assert_eq!(types(&r).len(), 1);
    // Keyword search.
    let r = s.get(&logs("q=unsuspend")).await;
    assert_eq!(types(&r), vec!["user.lifecycle.unsuspend"; 2]);
    // Bad filters.
    for bad in [
        r#"eventType eqq "x""#,
        r#"eventType eq"#,
        r#"published gt "2024-01-01T00:00:00Z""#,
    ] {
        let r = s.get(&filter(bad)).await;
        r.assert_error(400, "E0000053");
        assert!(
            r.json()["errorSummary"]
                .as_str()
                .unwrap()
                .starts_with("Invalid filter")
        );
    }
    s.get(&filter(r#"debugContext.debugData.url co "lifecycle""#))
        .await
        .assert_error(400, "E0000031");
    s.get(&logs("limit=1001"))
        .await
        .assert_error(400, "E0000001");
    let old = crate_ts(time::OffsetDateTime::now_utc() - time::Duration::days(181));
    s.get(&logs(&format!("since={}", enc(&old))))
        .await
        .assert_error(400, "E0000053");
    s.get(&logs("since=yesterday"))
        .await
        .assert_error(400, "E0000001");

    // Bounded query: finite pages, no next on the last one.
    let now = time::OffsetDateTime::now_utc();
    let since = crate_ts(now - time::Duration::hours(1));
    let until = crate_ts(now + time::Duration::minutes(1));
    let first = format!(
        "/api/v1/logs?since={}&until={}&limit=2",
        enc(&since),
        enc(&until)
    );
    let mut url = Some(first);
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        let r = s.get(&u).await;
        assert_eq!(r.status, 200, "{}", r.text);
        seen.extend(types(&r));
        url = r.next();
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!((seen.len(), pages), (5, 3));
    // DESCENDING.
    let r = s.get(&logs("sortOrder=DESCENDING&limit=1")).await;
    assert_eq!(types(&r), vec!["user.account.expire_password"]);
    // Polling: next is always present, even on an empty page, and picks up new events.
    let r = s.get(&logs("limit=10")).await;
    assert_eq!(types(&r).len(), 5);
    let next = r.next().expect("polling query has next");
    let r = s.get(&next).await;
    assert_eq!(types(&r).len(), 0);
    let next = r.next().expect("empty polling page still has next");
    assert_eq!(
        s.post(
            &format!("/api/v1/users/{b}/lifecycle/expire_password"),
            None
        )
        .await
        .status,
        200
    );
    let r = s.get(&next).await;
    assert_eq!(types(&r), vec!["user.account.expire_password"]);
    assert!(r.next().is_some());
    // Bearer tokens need okta.logs.read.
    let bearer = s.bearer("okta.logs.read").await;
    assert_eq!(
        s.send(Method::GET, "/api/v1/logs", Some(&bearer), None)
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------
// Faults and observation hooks

#[tokio::test]
async fn injected_faults() {
    let s = Sim::new().await;
    let count = s.all_users().len();
    // Status: Okta-shaped body, and the faulted POST changes nothing.
    s.state()
        .inject_fault(Fault::new("POST", "/api/v1/users", FaultKind::Status(500)));
    s.post("/api/v1/users", Some(new_user("fault@example.com")))
        .await
        .assert_error(500, "E0000009");
    assert_eq!(s.all_users().len(), count);
    assert!(s.state().user("fault@example.com").is_none());
    // The fault was used up: the retry succeeds.
    assert_eq!(
        s.post("/api/v1/users", Some(new_user("fault@example.com")))
            .await
            .status,
        200
    );

    s.state()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::Status(503)).times(2));
    assert_eq!(s.get("/api/v1/users?limit=1").await.status, 503);
    assert_eq!(s.get("/api/v1/users?limit=1").await.status, 503);
    assert_eq!(s.get("/api/v1/users?limit=1").await.status, 200);

    // RateLimited: 429 with the headers and a reset a couple of seconds ahead.
    s.state()
        .inject_fault(Fault::new("GET", "/api/v1/users", FaultKind::RateLimited));
    let r = s.get("/api/v1/users?limit=1").await;
    r.assert_error(429, "E0000047");
    assert_eq!(r.header("x-rate-limit-remaining"), "0");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let reset: i64 = r.header("x-rate-limit-reset").parse().unwrap();
    assert!(
        (now + 1..=now + 3).contains(&reset),
        "reset {reset} now {now}"
    );
    assert!(!r.header("date").is_empty());
    // A retry as the Okta SDK sends it is recorded.
    let retry_for = r.header("x-okta-request-id");
    let retried = s
        .http
        .get(s.url("/api/v1/users?limit=1"))
        .header("authorization", SSWS)
        .header("x-okta-retry-for", &retry_for)
        .header("x-okta-retry-count", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);
    let headers = s
        .state()
        .last_request_headers("GET", "/api/v1/users")
        .unwrap();
    assert_eq!(headers["x-okta-retry-for"], retry_for.as_str());
    assert_eq!(headers["x-okta-retry-count"], "1");

    // Latency: slow, then the normal answer.
    s.state().inject_fault(Fault::new(
        "GET",
        "/api/v1/groups",
        FaultKind::Latency(Duration::from_millis(300)),
    ));
    let started = Instant::now();
    let r = s.get("/api/v1/groups").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 200);
    assert!(r.json().is_array());

    // MalformedBody: 200 with invalid JSON.
    s.state()
        .inject_fault(Fault::new("*", "/api/v1/users/", FaultKind::MalformedBody));
    let id = s.active_user();
    let r = s.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());

    // Hang: the client gives up; a faulted lifecycle call changes nothing.
    s.state()
        .inject_fault(Fault::new("POST", "/api/v1/users/", FaultKind::Hang));
    let result = s
        .http
        .post(s.url(&format!("/api/v1/users/{id}/lifecycle/suspend")))
        .header("authorization", SSWS)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert_eq!(s.status(&id), UserStatus::Active);

    // Faults apply to the org authorization server too.
    s.state().inject_fault(Fault::new(
        "POST",
        "/oauth2/v1/token",
        FaultKind::Status(500),
    ));
    let r = s
        .token_request(&s.assertion(s.assertion_claims()), "okta.users.read")
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (500, Some("server_error"))
    );

    // Request counts.
    assert_eq!(s.state().request_count("POST", "/api/v1/users/"), 1);
    assert!(s.state().request_count("GET", "/api/v1/users") >= 6);
    assert_eq!(s.state().request_count("DELETE", "/api/v1"), 0);
    assert_eq!(s.state().request_count("*", "/oauth2/v1/token"), 1);
    // Stopping does not wait for the hung request.
    let stopped = Instant::now();
    s.sim.stop().await;
    assert!(stopped.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------
// Groups

#[tokio::test]
async fn groups_and_membership() {
    let s = Sim::new().await;
    let r = s.get("/api/v1/groups").await;
    assert_eq!(r.status, 200);
    let groups = r.json();
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 10);
    let by_name = |name: &str| {
        groups
            .iter()
            .find(|g| g["profile"]["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let g0 = &groups[0];
    for field in ["created", "lastUpdated", "lastMembershipUpdated"] {
        assert!(is_okta_timestamp(&g0[field]), "{field}");
    }
    assert!(g0["objectClass"].is_array());
    assert!(
        g0["_links"]["users"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/users")
    );
    // q: prefix on the name, case-insensitive.
    let r = s.get("/api/v1/groups?q=portal").await;
    let names: HashSet<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["profile"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["Portal-Agents", "Portal-Managers", "Portal-Admins"].map(String::from))
    );
    // Paging with limit.
    let (ids, pages) = s.all_pages("/api/v1/groups?limit=4").await;
    assert_eq!((ids.len(), pages), (10, 3));

    let engineering = by_name("Engineering");
    let id = s.active_user();
    let before = s.events().len();
    let r = s
        .put(&format!("/api/v1/groups/{engineering}/users/{id}"), None)
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let mine = s.get(&format!("/api/v1/users/{id}/groups")).await;
    assert!(mine.ids().contains(&engineering));
    let members = s.get(&format!("/api/v1/groups/{engineering}/users")).await;
    assert!(members.ids().contains(&id));
    let e = s.events().last().cloned().unwrap();
    assert_eq!(e["eventType"], "group.user_membership.add");
    assert_eq!(e["target"][0]["id"], id.as_str());
    assert_eq!(e["target"][1]["id"], engineering.as_str());
    assert_eq!(e["target"][1]["type"], "UserGroup");
    // Adding again is idempotent.
    assert_eq!(
        s.put(&format!("/api/v1/groups/{engineering}/users/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(s.events().len(), before + 1);
    let r = s
        .delete(&format!("/api/v1/groups/{engineering}/users/{id}"))
        .await;
    assert_eq!(r.status, 204);
    assert!(
        !s.get(&format!("/api/v1/users/{id}/groups"))
            .await
            .ids()
            .contains(&engineering)
    );
    assert_eq!(
        s.events().last().unwrap()["eventType"],
        "group.user_membership.remove"
    );
    // Only OKTA_GROUP memberships change; unknown group or user → 404.
    for name in ["Everyone", "Contractors"] {
        s.put(
            &format!("/api/v1/groups/{}/users/{id}", by_name(name)),
            None,
        )
        .await
        .assert_error(403, "E0000006");
    }
    let r = s
        .put(
            &format!("/api/v1/groups/00gNoSuchGroup000000/users/{id}"),
            None,
        )
        .await;
    r.assert_error(404, "E0000007");
    assert_eq!(
        r.json()["errorSummary"],
        "Not found: Resource not found: 00gNoSuchGroup000000 (UserGroup)"
    );
    s.put(
        &format!("/api/v1/groups/{engineering}/users/00uNobodyAtAll000000"),
        None,
    )
    .await
    .assert_error(404, "E0000007");
    s.get("/api/v1/groups/00gNoSuchGroup000000")
        .await
        .assert_error(404, "E0000007");
    // Scopes: reading users does not allow membership changes.
    let bearer = s.bearer("okta.users.read okta.groups.read").await;
    assert_eq!(
        s.send(Method::GET, "/api/v1/groups", Some(&bearer), None)
            .await
            .status,
        200
    );
    let r = s
        .send(
            Method::PUT,
            &format!("/api/v1/groups/{engineering}/users/{id}"),
            Some(&bearer),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .contains(r#"scope="okta.groups.manage""#)
    );
    let manage = s.bearer("okta.groups.manage").await;
    assert_eq!(
        s.send(
            Method::PUT,
            &format!("/api/v1/groups/{engineering}/users/{id}"),
            Some(&manage),
            None
        )
        .await
        .status,
        204
    );
}

#[tokio::test]
async fn observation_hooks() {
    let s = Sim::new().await;
    let id = s.active_user();
    assert!(s.state().user(&id).is_some());
    let login = s.state().user(&id).unwrap().login;
    assert_eq!(s.state().user(&login.to_uppercase()).unwrap().id, id);
    assert!(s.state().user("nobody@example.com").is_none());
    assert!(s.state().set_user_status(&id, UserStatus::LockedOut));
    assert_eq!(
        s.get(&format!("/api/v1/users/{id}")).await.json()["status"],
        "LOCKED_OUT"
    );
    assert!(
        !s.state()
            .set_user_status("nobody@example.com", UserStatus::Active)
    );
    assert_eq!(s.state().request_count("GET", "/api/v1/users/"), 1);
    let recorded = s.state().requests("GET", "/api/v1/users/");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, format!("/api/v1/users/{id}"));
    assert!(s.state().log_events().is_empty(), "reads write no events");
}

#[tokio::test]
async fn faults_can_hit_a_rate_of_requests() {
    use okta_sim::{Fault, FaultKind};
    crate::harness::init_tls();
    let sim = okta_sim::spawn(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        okta_sim::SimOptions {
            end_users: 5,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sim.state.inject_fault(
        Fault::new("GET", "/api/v1/users", FaultKind::Status(500))
            .every(2)
            .times(3),
    );
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = client
            .get(format!("{}/api/v1/users", sim.base_url()))
            .header("authorization", "SSWS demo-ssws-token")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 500, 200, 500, 200, 500, 200, 200]);
}
