//! The simulator answers as Okta's custom authorization server does (OKTA-FACTS.md §10).

use serde_json::Value;

use crate::harness::*;

async fn json(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn http() -> reqwest::Client {
    crate::harness::init_tls();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn discovery_documents_and_keys() {
    let t = SimApp::spawn().await;
    let iss = t.sim.issuer().to_string();
    let (status, headers, doc) = json(
        http()
            .get(format!("{iss}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-okta-request-id"));
    assert_eq!(doc["issuer"], iss);
    for (field, value) in [
        ("authorization_endpoint", format!("{iss}/v1/authorize")),
        ("token_endpoint", format!("{iss}/v1/token")),
        ("jwks_uri", format!("{iss}/v1/keys")),
        ("userinfo_endpoint", format!("{iss}/v1/userinfo")),
        ("end_session_endpoint", format!("{iss}/v1/logout")),
        ("revocation_endpoint", format!("{iss}/v1/revoke")),
        ("introspection_endpoint", format!("{iss}/v1/introspect")),
    ] {
        assert_eq!(doc[field], value, "{field}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let (status, _, meta) = json(
        http()
            .get(format!("{iss}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(meta["issuer"], iss);
    let (_, _, jwks) = json(http().get(format!("{iss}/v1/keys")).send().await.unwrap()).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["e"], "AQAB");
    t.sim().rotate_keys();
    let (_, _, jwks) = json(http().get(format!("{iss}/v1/keys")).send().await.unwrap()).await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "old and new key published"
    );
}

#[tokio::test]
async fn token_endpoint_client_authentication_errors() {
    let t = SimApp::spawn().await;
    let url = format!("{}/v1/token", t.sim.issuer());
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "admin.users.read"),
    ];
    let (status, headers, body) = json(http().post(&url).form(&form).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(body["error_description"], "No client credentials found.");
    assert_eq!(headers["cache-control"], "no-store");
    let (status, _, body) = json(
        http()
            .post(&url)
            .basic_auth("0oaSupportAppClient1", Some("wrong"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let both = [
        ("grant_type", "client_credentials"),
        ("scope", "admin.users.read"),
        ("client_id", "0oaSupportAppClient1"),
        ("client_secret", "demo-support-app-secret"),
    ];
    let (status, _, body) = json(
        http()
            .post(&url)
            .basic_auth("0oaSupportAppClient1", Some("demo-support-app-secret"))
            .form(&both)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn client_credentials_grants_only_the_clients_scopes() {
    let t = SimApp::spawn().await;
    let url = format!("{}/v1/token", t.sim.issuer());
    let post = |scope: &'static str| {
        http()
            .post(&url)
            .basic_auth("0oaSupportAppClient1", Some("demo-support-app-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
    };
    let (status, _, body) = json(
        post("admin.users.read admin.users.lifecycle")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "admin.users.read admin.users.lifecycle");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = {
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["sub"], "0oaSupportAppClient1");
    assert_eq!(claims["cid"], "0oaSupportAppClient1");
    assert!(claims.get("uid").is_none());
    assert_eq!(claims["aud"], "api://admin-portal");
    assert_eq!(
        claims["scp"],
        serde_json::json!(["admin.users.read", "admin.users.lifecycle"])
    );
    let (status, _, body) = json(post("admin.users.delete").await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // Introspection and revocation of that token.
    let introspect = format!("{}/v1/introspect", t.sim.issuer());
    let ask = || {
        http()
            .post(&introspect)
            .basic_auth("0oaSupportAppClient1", Some("demo-support-app-secret"))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
    };
    let (_, _, info) = json(ask().await.unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "admin.users.read admin.users.lifecycle");
    let revoked = http()
        .post(format!("{}/v1/revoke", t.sim.issuer()))
        .basic_auth("0oaSupportAppClient1", Some("demo-support-app-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (_, _, info) = json(ask().await.unwrap()).await;
    assert_eq!(info, serde_json::json!({ "active": false }));
}

#[tokio::test]
async fn authorize_refuses_unknown_redirect_uri_without_redirecting() {
    let t = SimApp::spawn().await;
    let url = format!(
        "{}/v1/authorize?client_id={}&response_type=code&scope=openid&state=s&redirect_uri={}",
        t.sim.issuer(),
        okta_sim::PORTAL_CLIENT_ID,
        url_encode("https://evil.example/cb")
    );
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn authorize_errors_are_redirected_with_state() {
    let t = SimApp::spawn().await;
    let redirect = url_encode(&t.url("/auth/callback"));
    let base = format!(
        "{}/v1/authorize?client_id={}&redirect_uri={redirect}",
        t.sim.issuer(),
        okta_sim::PORTAL_CLIENT_ID
    );
    let cases = [
        (
            "&response_type=token&scope=openid&state=s1",
            "unsupported_response_type",
            "s1",
        ),
        (
            "&response_type=code&scope=profile&state=s2",
            "invalid_scope",
            "s2",
        ),
        ("&response_type=code&scope=openid", "invalid_request", ""),
        (
            "&response_type=code&scope=openid&state=s3&code_challenge=abc&code_challenge_method=plain",
            "invalid_request",
            "s3",
        ),
        (
            "&response_type=code&scope=openid&state=s4&prompt=none",
            "login_required",
            "s4",
        ),
    ];
    for (query, error, state) in cases {
        let response = http().get(format!("{base}{query}")).send().await.unwrap();
        assert_eq!(response.status(), 302, "{query}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some(error),
            "{query}"
        );
        assert_eq!(
            query_param(&location, "state").unwrap_or_default(),
            state,
            "{query}"
        );
    }
}

#[tokio::test]
async fn userinfo_answers_by_scope_and_refuses_bad_tokens() {
    let t = SimApp::spawn().await;
    let response = http()
        .get(format!("{}/v1/userinfo", t.sim.issuer()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="The access token is invalid""#
    );
    // A service token has no profile scope.
    let token: Value = http()
        .post(format!("{}/v1/token", t.sim.issuer()))
        .basic_auth("0oaSupportAppClient1", Some("demo-support-app-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.users.read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = http()
        .get(format!("{}/v1/userinfo", t.sim.issuer()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn logout_requires_a_valid_hint_and_a_registered_redirect() {
    let t = SimApp::spawn().await;
    let url = format!("{}/v1/logout", t.sim.issuer());
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response = http()
        .get(format!(
            "{url}?id_token_hint=garbage&post_logout_redirect_uri={}",
            url_encode(&t.url("/signed-out"))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
