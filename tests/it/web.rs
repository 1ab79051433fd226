//! The web shell: security headers, assets, error pages, health.

use crate::helpers::*;

#[tokio::test]
async fn pages_carry_strict_security_headers() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    for path in ["/", "/me", "/no-such-page", "/signed-out"] {
        let page = b.get(path).await;
        let csp = page.header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains(&format!("form-action 'self' {}", t.sim.base_url())),
            "{csp}"
        );
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("referrer-policy"), "same-origin");
        assert_eq!(page.header("cache-control"), "no-store");
        assert_eq!(page.header("vary"), "HX-Request");
        assert!(!page.header("x-request-id").is_empty());
    }
}

#[tokio::test]
async fn pages_have_no_inline_script_or_style_and_load_vendored_htmx() {
    let t = TestApp::spawn().await;
    let page = t.signed_in(MANAGER).await.get("/me").await;
    let html = page.html();
    for script in html.select(&scraper::Selector::parse("script").unwrap()) {
        let src = script.value().attr("src").expect("every script has a src");
        assert!(src.starts_with("/static/"), "{src}");
        assert!(
            script.text().collect::<String>().trim().is_empty(),
            "no inline script"
        );
    }
    assert_eq!(page.count("style"), 0);
    assert_eq!(page.count("[style]"), 0);
    assert!(page.body.contains("/static/htmx-2.0.11.min.js?v="));
}

#[tokio::test]
async fn assets_are_cached_for_a_year_behind_versioned_urls() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let url = admin_portal::web::assets::Assets::embedded().url("app.css");
    assert!(url.contains("?v="), "{url}");
    let page = b.get(&url).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(page.header("content-type"), "text/css; charset=utf-8");
    let stale = b.get("/static/app.css?v=old").await;
    assert_eq!(stale.header("cache-control"), "no-cache");
    let htmx = b
        .get(&admin_portal::web::assets::Assets::embedded().url("htmx-2.0.11.min.js"))
        .await;
    assert!(htmx.body.contains("htmx"), "vendored htmx is served");
}

#[tokio::test]
async fn not_found_page_shows_the_request_id() {
    let t = TestApp::spawn().await;
    let page = t.browser().get("/no-such-page").await;
    assert_eq!(page.status, 404);
    assert_eq!(page.text("#error-title").as_deref(), Some("Not found"));
    assert!(page.body.contains(&page.header("x-request-id")));
}

#[tokio::test]
async fn readiness_reports_database_and_provider() {
    let t = TestApp::spawn().await;
    let page = t.browser().get("/readyz").await;
    assert_eq!(page.status, 200);
    let body: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["provider"], "ok");
    assert_eq!(t.browser().get("/healthz").await.body, "ok");
}

#[tokio::test]
async fn readiness_fails_when_the_provider_is_unreachable() {
    // A portal whose provider was never started.
    let t = TestApp::spawn_with(|c| {
        c.oidc.issuer = url::Url::parse("http://127.0.0.1:9/oauth2/default").unwrap();
    })
    .await;
    let page = t.browser().get("/readyz").await;
    assert_eq!(page.status, 503);
    let body: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["provider"], "unavailable");
    // Signing in says so plainly, with a request id, and no internals.
    let login = t.browser().get("/auth/login").await;
    assert_eq!(login.status, 502);
    assert!(login.body.contains(&login.header("x-request-id")));
    assert!(
        !login.body.contains("127.0.0.1:9"),
        "no internals on the page"
    );
}

#[tokio::test]
async fn audit_trail_refuses_updates_and_deletes() {
    let t = TestApp::spawn().await;
    t.signed_in(AGENT).await;
    use admin_portal::db::Database;
    let (update, delete) = match &t.app.state.db {
        Database::Sqlite(pool) => (
            sqlx::query("UPDATE audit_events SET outcome = 'success'")
                .execute(pool)
                .await
                .is_err(),
            sqlx::query("DELETE FROM audit_events")
                .execute(pool)
                .await
                .is_err(),
        ),
        Database::Postgres(pool) => (
            sqlx::query("UPDATE audit_events SET outcome = 'success'")
                .execute(pool)
                .await
                .is_err(),
            sqlx::query("DELETE FROM audit_events")
                .execute(pool)
                .await
                .is_err(),
        ),
    };
    assert!(update, "UPDATE must be refused");
    assert!(delete, "DELETE must be refused");
    assert_eq!(t.audit().await.len(), 1);
}

#[tokio::test]
async fn every_signed_in_page_sends_a_stranger_to_sign_in_before_any_okta_call() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let id = t.plain_active_user();
    let calls_before = t.sim().request_count("*", "/api/v1/");
    for path in [
        "/".to_string(),
        "/me".into(),
        "/activity".into(),
        "/activity/export.csv".into(),
        "/users".into(),
        "/users/new".into(),
        format!("/users/{id}"),
        format!("/users/{id}/suspend"),
        format!("/users/{id}/clear-sessions"),
        format!("/users/{id}/profile"),
        format!("/users/{id}/groups"),
        format!("/users/{id}/factors/new"),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(
            page.location(),
            format!("/auth/login?return_to={}", url_encode(&path)),
            "{path}"
        );
    }
    assert_eq!(t.sim().request_count("*", "/api/v1/"), calls_before);
}
