//! Sign-in, sign-out, sessions and token verification through the real OIDC flow.

use std::time::Duration;

use okta_sim::{AccessTokenTamper, IdTokenTamper};

use crate::helpers::*;

#[tokio::test]
async fn each_demo_account_signs_in_and_sees_its_identity_groups_and_scopes() {
    let t = TestApp::spawn().await;
    let cases = [
        (
            AGENT,
            "Alex Agent",
            vec!["Everyone", "Portal-Agents"],
            true,
            false,
        ),
        (
            MANAGER,
            "Morgan Manager",
            vec!["Everyone", "Portal-Agents", "Portal-Managers"],
            true,
            true,
        ),
        (VIEWER, "Val Viewer", vec!["Everyone"], false, false),
    ];
    for (login, name, groups, reads_users, reads_audit) in cases {
        let b = t.signed_in(login).await;
        let me = b.get("/me").await;
        assert_eq!(me.status, 200);
        assert_eq!(me.text("#agent-name").as_deref(), Some(name));
        assert_eq!(me.text("#me-login").as_deref(), Some(login));
        let shown_groups: Vec<String> = me
            .html()
            .select(&scraper::Selector::parse("#me-groups .chip").unwrap())
            .map(|e| e.text().collect())
            .collect();
        assert_eq!(shown_groups, groups, "{login}");
        let scopes = me.text("#me-scopes").unwrap_or_default();
        assert!(
            scopes.contains("openid") && scopes.contains("profile"),
            "{login}: {scopes}"
        );
        assert_eq!(
            scopes.contains("admin.users.read"),
            reads_users,
            "{login}: {scopes}"
        );
        assert_eq!(
            scopes.contains("admin.audit.read"),
            reads_audit,
            "{login}: {scopes}"
        );
        let allowed = |p: &str| {
            me.count(&format!(
                "tr[data-permission=\"{p}\"][data-allowed=\"true\"]"
            )) == 1
        };
        assert_eq!(allowed("users.read"), reads_users, "{login}");
        assert_eq!(allowed("users.delete"), reads_audit, "{login}");
        assert_eq!(allowed("audit.read"), reads_audit, "{login}");
        assert!(!allowed("users.protected"), "{login}");
    }
    let sign_ins: Vec<_> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "auth.sign_in" && r.outcome == "success")
        .collect();
    let logins: Vec<_> = sign_ins
        .iter()
        .filter_map(|r| r.actor_login.clone())
        .collect();
    assert_eq!(logins, vec![AGENT, MANAGER, VIEWER]);
    let first = &sign_ins[0];
    assert_eq!(first.actor_name.as_deref(), Some("Alex Agent"));
    assert_eq!(first.actor_sub.as_ref().map(|s| s.len()), Some(20));
    assert_eq!(first.client_ip.as_deref(), Some("127.0.0.1"));
    assert!(first.request_id.len() >= 32, "{first:?}");
}

#[tokio::test]
async fn session_id_is_cycled_at_sign_in_and_cookie_is_hardened() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let authorize = b.start_sign_in("/").await;
    let before = b
        .session_cookie()
        .expect("a pre-login session holds the pending sign-in");
    let redirect = b.provider_sign_in(&authorize, AGENT, PASSWORD).await;
    let callback = b.get(&redirect.location()).await;
    assert_eq!(callback.status, 303);
    let set_cookie = callback.header("set-cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain http on loopback: {set_cookie}"
    );
    let after = b.session_cookie().expect("session after sign-in");
    assert_ne!(before, after, "session id must change at sign-in");
    // The old id no longer grants anything.
    let old = Browser::new(&t.base);
    old.jar.add_cookie_str(
        &format!("portal_session={before}; Path=/"),
        &reqwest::Url::parse(&t.base).unwrap(),
    );
    assert_eq!(old.get("/me").await.status, 303);
}

#[tokio::test]
async fn https_public_url_gives_secure_host_prefixed_cookie() {
    let t = TestApp::spawn_with(|c| c.server.tls_terminated = true).await;
    let b = t.browser();
    let page = b.get("/auth/login").await;
    let set_cookie = page.header("set-cookie");
    assert!(
        set_cookie.starts_with("__Host-portal_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
}

#[tokio::test]
async fn return_to_brings_the_agent_back_to_the_page_they_asked_for() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let page = b.get("/me?tab=permissions").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        "/auth/login?return_to=%2Fme%3Ftab%3Dpermissions"
    );
    let authorize = b.get(&page.location()).await.location();
    let redirect = b.provider_sign_in(&authorize, AGENT, PASSWORD).await;
    let callback = b.get(&redirect.location()).await;
    assert_eq!(callback.location(), "/me?tab=permissions");
}

#[tokio::test]
async fn open_redirects_in_return_to_are_refused() {
    let t = TestApp::spawn().await;
    for evil in [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:evil.example",
        "/..//evil.example/x",
        "/%2e%2e//evil.example",
    ] {
        let b = t.browser();
        let landed = b.sign_in(AGENT, PASSWORD, evil).await;
        assert_eq!(landed, "/", "return_to {evil:?} must land on /");
    }
}

#[tokio::test]
async fn a_signed_in_agent_is_not_redirected_off_site_either() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    for evil in [
        "/..//evil.example/x",
        "/%2e%2e//evil.example",
        "//evil.example",
        "https://evil.example",
    ] {
        let page = b
            .get(&format!("/auth/login?return_to={}", url_encode(evil)))
            .await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location(), "/", "{evil}");
    }
}

#[tokio::test]
async fn state_mismatch_is_refused_with_a_clear_page_and_audited() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let authorize = b.start_sign_in("/").await;
    let redirect = b.provider_sign_in(&authorize, AGENT, PASSWORD).await;
    let code = query_param(&redirect.location(), "code").unwrap();
    let page = b
        .get(&format!("/auth/callback?code={code}&state=forged-state"))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(page.text("#error-title").as_deref(), Some("Sign-in failed"));
    assert!(
        page.text("#error-message")
            .unwrap()
            .contains("state mismatch")
    );
    assert!(
        page.body.contains(&page.header("x-request-id")),
        "request id shown"
    );
    assert_eq!(page.count("a#try-again[href=\"/auth/login\"]"), 1);
    assert_eq!(b.get("/me").await.status, 303, "no session was created");
    let failures: Vec<_> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "auth.sign_in" && r.outcome == "failure")
        .collect();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("state mismatch")
    );
    assert_eq!(failures[0].request_id, page.header("x-request-id"));
}

#[tokio::test]
async fn provider_error_at_callback_is_shown_and_audited() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let authorize = b.start_sign_in("/").await;
    let state = query_param(&authorize, "state").unwrap();
    let page = b
        .get(&format!(
            "/auth/callback?error=access_denied&error_description=User+is+not+assigned&state={state}"
        ))
        .await;
    assert_eq!(page.status, 400);
    let message = page.text("#error-message").unwrap();
    assert!(
        message.contains("access_denied") && message.contains("not be assigned"),
        "{message}"
    );
    assert!(
        !page.body.contains("User is not assigned"),
        "the provider's free text is not echoed"
    );
    let audit = t.audit().await;
    let last = audit.last().unwrap();
    assert_eq!(last.outcome, "failure");
    assert!(
        last.detail
            .as_deref()
            .unwrap()
            .contains("User is not assigned"),
        "it is kept in the audit trail"
    );
}

#[tokio::test]
async fn a_replayed_authorization_code_is_refused() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let authorize = b.start_sign_in("/").await;
    let redirect = b.provider_sign_in(&authorize, AGENT, PASSWORD).await;
    let code = query_param(&redirect.location(), "code").unwrap();
    assert_eq!(
        b.get(&redirect.location()).await.status,
        303,
        "first use works"
    );
    // An attacker's browser starts its own sign-in and plays the stolen code into it.
    let attacker = t.browser();
    let authorize = attacker.start_sign_in("/").await;
    let state = query_param(&authorize, "state").unwrap();
    let page = attacker
        .get(&format!("/auth/callback?code={code}&state={state}"))
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.text("#error-message")
            .unwrap()
            .contains("invalid_grant"),
        "{}",
        page.body
    );
    assert_eq!(attacker.get("/me").await.status, 303);
}

async fn sign_in_fails_with(tamper: IdTokenTamper, expected: &str) {
    let t = TestApp::spawn().await;
    t.sim().tamper_next_id_token(tamper);
    let b = t.browser();
    let page = b.sign_in_callback(AGENT).await;
    assert_eq!(page.status, 400, "{tamper:?} must be refused");
    let message = page.text("#error-message").unwrap();
    assert!(
        message.to_lowercase().contains(&expected.to_lowercase()),
        "{tamper:?}: {message}"
    );
    assert_eq!(b.get("/me").await.status, 303, "{tamper:?}: no session");
    let audit = t.audit().await;
    let last = audit.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("auth.sign_in", "failure")
    );
}

#[tokio::test]
async fn id_token_with_wrong_nonce_is_refused() {
    sign_in_fails_with(IdTokenTamper::WrongNonce, "nonce").await;
}

#[tokio::test]
async fn id_token_signed_by_unknown_key_is_refused() {
    sign_in_fails_with(IdTokenTamper::UnknownKey, "ID token failed verification").await;
}

#[tokio::test]
async fn id_token_for_another_audience_is_refused() {
    sign_in_fails_with(IdTokenTamper::WrongAudience, "audience").await;
}

#[tokio::test]
async fn id_token_from_another_issuer_is_refused() {
    sign_in_fails_with(IdTokenTamper::WrongIssuer, "issuer").await;
}

#[tokio::test]
async fn expired_id_token_is_refused() {
    sign_in_fails_with(IdTokenTamper::Expired, "expired").await;
}

#[tokio::test]
async fn id_token_with_alg_none_is_refused() {
    sign_in_fails_with(IdTokenTamper::AlgNone, "ID token failed verification").await;
}

#[tokio::test]
async fn id_token_with_hs256_signed_by_client_secret_is_refused() {
    sign_in_fails_with(
        IdTokenTamper::Hs256WithClientSecret,
        "ID token failed verification",
    )
    .await;
}

#[tokio::test]
async fn access_token_for_another_audience_is_refused() {
    let t = TestApp::spawn().await;
    t.sim()
        .tamper_next_access_token(AccessTokenTamper::WrongAudience);
    let page = t.browser().sign_in_callback(AGENT).await;
    assert_eq!(page.status, 400);
    assert!(
        page.text("#error-message")
            .unwrap()
            .contains("access token failed verification")
    );
}

#[tokio::test]
async fn access_token_signed_by_unknown_key_is_refused() {
    let t = TestApp::spawn().await;
    t.sim()
        .tamper_next_access_token(AccessTokenTamper::UnknownKey);
    let page = t.browser().sign_in_callback(AGENT).await;
    assert_eq!(page.status, 400);
    assert!(
        page.text("#error-message")
            .unwrap()
            .contains("key the provider does not publish")
    );
}

#[tokio::test]
async fn signing_key_rotation_is_followed_by_fetching_the_jwks_again() {
    let t = TestApp::spawn().await;
    t.signed_in(AGENT).await;
    t.sim().rotate_keys();
    // The portal's cached JWKS lacks the new key: it must fetch it and accept the token.
    let b = t.signed_in(MANAGER).await;
    assert_eq!(b.get("/activity").await.status, 200);
}

#[tokio::test]
async fn sign_out_ends_both_sessions_and_is_audited() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let out = b.post_form("/auth/logout", &[("_csrf", &token)]).await;
    assert_eq!(out.status, 303);
    let end_session = out.location();
    assert!(
        end_session.starts_with(&format!("{}/v1/logout?", t.sim.issuer())),
        "{end_session}"
    );
    assert!(query_param(&end_session, "id_token_hint").is_some());
    assert_eq!(
        query_param(&end_session, "post_logout_redirect_uri").as_deref(),
        Some(t.url("/signed-out").as_str())
    );
    let back = b.get(&end_session).await;
    assert_eq!(back.status, 302);
    assert!(
        back.location().starts_with(&t.url("/signed-out")),
        "{}",
        back.location()
    );
    let signed_out = b.get(&back.location()).await;
    assert_eq!(signed_out.status, 200);
    assert_eq!(signed_out.count("a#sign-in-again"), 1);
    assert_eq!(b.get("/me").await.status, 303, "portal session ended");
    // The provider session ended too: signing in again asks for the password.
    let authorize = b.start_sign_in("/").await;
    assert_eq!(
        b.get(&authorize).await.status,
        200,
        "provider shows its sign-in form again"
    );
    let audit = t.audit().await;
    let last = audit.last().unwrap();
    assert_eq!(last.action, "auth.sign_out");
    assert_eq!(last.actor_login.as_deref(), Some(AGENT));
}

#[tokio::test]
async fn sign_out_by_get_is_not_possible() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/auth/logout").await.status, 405);
    assert_eq!(b.get("/me").await.status, 200, "still signed in");
}

#[tokio::test]
async fn expired_token_is_refreshed_and_a_failed_refresh_ends_the_session() {
    let t = TestApp::spawn().await;
    // Tokens that live less than the refresh margin are refreshed on every request.
    t.sim().set_access_token_ttl(Duration::from_secs(5));
    let b = t.signed_in(AGENT).await;
    assert_eq!(t.sim().token_calls("refresh_token"), 0);
    let me = b.get("/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(
        t.sim().token_calls("refresh_token"),
        1,
        "the access token was refreshed"
    );
    assert_eq!(me.text("#me-login").as_deref(), Some(AGENT));
    t.sim().revoke_all_refresh_tokens();
    let page = b.get("/me").await;
    assert_eq!(page.status, 303, "failed refresh ends the session");
    assert!(page.location().starts_with("/auth/login"));
    assert_eq!(b.get("/").await.status, 303, "and it stays ended");
}

#[tokio::test]
async fn expired_session_sends_pages_to_sign_in_and_htmx_gets_hx_redirect() {
    // The test ages the row in the database: no cached copy may hide that.
    let t = TestApp::spawn_with(|c| c.session.cache_recheck_seconds = 0).await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/me").await.status, 200);
    t.expire_session_of(&b).await;
    let page = b.get("/me").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/auth/login?return_to=%2Fme");
    let fragment = b.get_htmx("/me").await;
    assert_eq!(fragment.status, 401);
    assert_eq!(
        fragment.header("hx-redirect"),
        "/auth/login?return_to=%2Fme"
    );
}

#[tokio::test]
async fn wrong_password_at_the_provider_creates_no_session() {
    let t = TestApp::spawn().await;
    let b = t.browser();
    let authorize = b.start_sign_in("/").await;
    let page = b
        .provider_sign_in(&authorize, AGENT, "wrong-password")
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(
        page.text("#sim-error").as_deref(),
        Some("Unable to sign in")
    );
    assert_eq!(b.get("/me").await.status, 303);
}

#[tokio::test]
async fn each_request_moves_the_idle_expiry() {
    // The test ages the row in the database: no cached copy may hide that.
    let t = TestApp::spawn_with(|c| c.session.cache_recheck_seconds = 0).await;
    let b = t.signed_in(AGENT).await;
    // Nearly idle for the configured 30 minutes: one more page keeps the session alive.
    t.set_session_seconds_left(&b, 60).await;
    assert!(t.session_seconds_left(&b).await <= 60);
    assert_eq!(b.get("/me").await.status, 200);
    let left = t.session_seconds_left(&b).await;
    assert!(
        left > 29 * 60,
        "idle expiry extended to about 30 minutes, got {left}s"
    );
}

/// The cookie `name` the browser holds for `url`.
fn cookie(browser: &Browser, url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let header = reqwest::cookie::CookieStore::cookies(browser.jar.as_ref(), &url)?;
    header
        .to_str()
        .ok()?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Sign in, keep only the simulator's SSO cookie, sign in again: the simulator answers at
/// once from the SSO session (no password form) and the portal stays healthy throughout.
async fn sso_re_sign_in() {
    let t = TestApp::spawn().await;
    let patience = Duration::from_secs(30);
    let first = t.signed_in(AGENT).await;
    let sso = cookie(&first, t.sim.base_url(), "okta_sim_sid").expect("the simulator's SSO cookie");
    assert_eq!(first.get("/healthz").await.status, 200);
    // A second browser with only the simulator's cookie: the portal's session is gone.
    let second = t.browser();
    let sim_url = reqwest::Url::parse(t.sim.base_url()).expect("simulator URL");
    second
        .jar
        .add_cookie_str(&format!("okta_sim_sid={sso}; Path=/"), &sim_url);
    assert_eq!(
        second.get("/me").await.status,
        303,
        "not signed in to the portal"
    );
    let authorize = second.start_sign_in("/me").await;
    let answer = tokio::time::timeout(patience, second.get(&authorize))
        .await
        .expect("the simulator answers an SSO sign-in (it deadlocked before)");
    assert_eq!(answer.status, 302, "SSO: no sign-in form: {}", answer.body);
    let health = tokio::time::timeout(patience, second.get("/healthz"))
        .await
        .expect("the portal answers /healthz");
    assert_eq!(health.status, 200);
    let callback = second.get(&answer.location()).await;
    assert_eq!(callback.status, 303, "callback: {}", callback.body);
    assert_eq!(callback.location(), "/me");
    let me = second.get("/me").await;
    assert_eq!(me.text("#me-login").as_deref(), Some(AGENT));
    let health = tokio::time::timeout(patience, first.get("/healthz"))
        .await
        .expect("the portal answers /healthz");
    assert_eq!(health.status, 200);
}

/// A deadlock would block runtime threads for good, so the scenario runs on its own thread
/// and runtime: if it does not finish in time the test fails instead of hanging.
#[test]
fn sso_sign_in_again_does_not_deadlock_the_simulator() {
    let (done, finished) = std::sync::mpsc::channel();
    let scenario = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(sso_re_sign_in());
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(90)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = scenario.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the SSO re-sign-in hung: the simulator or the portal stopped answering")
        }
    }
}
