//! CSRF: a per-session token on every state-changing request, plus Origin/Sec-Fetch-Site.

use crate::helpers::*;

#[tokio::test]
async fn post_without_token_is_refused_and_changes_nothing() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let page = b.post_form("/auth/logout", &[]).await;
    assert_eq!(page.status, 403);
    assert_eq!(
        page.text("#error-title").as_deref(),
        Some("Request refused")
    );
    assert_eq!(b.get("/me").await.status, 200, "still signed in");
}

#[tokio::test]
async fn post_with_a_wrong_token_is_refused() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let page = b
        .post_form("/auth/logout", &[("_csrf", "not-the-token")])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(b.get("/me").await.status, 200);
}

#[tokio::test]
async fn another_sessions_token_is_refused() {
    let t = TestApp::spawn().await;
    let victim = t.signed_in(AGENT).await;
    let attacker = t.signed_in(MANAGER).await;
    let attackers_token = attacker.csrf_token().await;
    let page = victim
        .post_form("/auth/logout", &[("_csrf", &attackers_token)])
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn cross_site_request_is_refused_even_with_the_token() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://evil.example"),
    ] {
        let response = b
            .client
            .post(t.url("/auth/logout"))
            .header(header, value)
            .form(&[("_csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
    }
    assert_eq!(b.get("/me").await.status, 200);
}

#[tokio::test]
async fn token_in_the_htmx_header_is_accepted() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let response = b
        .client
        .post(t.url("/auth/logout"))
        .header("x-csrf-token", &token)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(b.get("/me").await.status, 303, "signed out");
}
