//! MFA through the portal: enroll and activate each factor type, wrong codes, attempt
//! limits, resend cool-down, reset one and all, permissions, and secrets kept out of the
//! audit trail and the session store.

use crate::helpers::*;

fn totp_now(secret_base32: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now).to_string()
}

/// The factor id in the activation form's action.
fn factor_id(page: &Page) -> String {
    let action = page
        .html()
        .select(&scraper::Selector::parse("#activate-form").unwrap())
        .next()
        .and_then(|e| e.value().attr("action").map(str::to_string))
        .unwrap_or_else(|| panic!("an activation form: {}", page.body));
    action.split('/').nth(4).unwrap().to_string()
}

async fn enroll(b: &Browser, user: &str, token: &str, fields: &[(&str, &str)]) -> Page {
    let mut form = vec![
        ("_csrf", token),
        ("reason", "Caller has a new phone"),
        ("ticket", "SUP-9"),
    ];
    form.extend_from_slice(fields);
    b.post_form(&format!("/users/{user}/factors"), &form).await
}

async fn activate(b: &Browser, user: &str, factor: &str, token: &str, code: &str) -> Page {
    b.post_form(
        &format!("/users/{user}/factors/{factor}/activate"),
        &[
            ("_csrf", token),
            ("passcode", code),
            ("reason", "Caller has a new phone"),
            ("ticket", "SUP-9"),
        ],
    )
    .await
}

#[tokio::test]
async fn totp_enrollment_shows_a_qr_code_and_activates_with_a_computed_code() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    for (kind, provider) in [
        ("google_authenticator", "GOOGLE"),
        ("okta_verify_totp", "OKTA"),
    ] {
        let page = enroll(&b, &user, &token, &[("kind", kind)]).await;
        assert_eq!(page.status, 200, "{kind}: {}", page.body);
        assert_eq!(
            page.count("svg#totp-qr path.qr-fg"),
            1,
            "a server-rendered QR code"
        );
        let shown = page.text("#totp-secret").unwrap();
        let secret: String = shown.split_whitespace().collect();
        let factor = factor_id(&page);
        assert_eq!(
            Some(secret.clone()),
            t.sim().totp_secret(&factor),
            "the page shows Okta's secret"
        );
        assert_eq!(t.sim().factor(&factor).unwrap().provider, provider);
        let done = activate(&b, &user, &factor, &token, &totp_now(&secret)).await;
        assert_eq!(done.status, 303, "{kind}: {}", done.body);
        let detail = b.get(&done.location()).await;
        assert!(detail.text(".flash").unwrap().contains("is now active"));
        let row = detail
            .html()
            .select(&scraper::Selector::parse(&format!("tr[data-factor=\"{factor}\"]")).unwrap())
            .next()
            .map(|e| e.value().attr("data-status").unwrap_or("").to_string());
        assert_eq!(row.as_deref(), Some("ACTIVE"));
        // The secret is never shown again.
        assert!(!detail.body.contains(&secret) && !detail.body.contains(&shown));
        let audit = format!("{:?}", t.audit().await);
        assert!(!audit.contains(&secret), "no secret in the audit trail");
    }
    let actions: Vec<String> = t
        .audit()
        .await
        .into_iter()
        .map(|r| r.action)
        .filter(|a| a.starts_with("factors."))
        .collect();
    assert_eq!(
        actions,
        vec![
            "factors.enroll",
            "factors.activate",
            "factors.enroll",
            "factors.activate"
        ]
    );
}

#[tokio::test]
async fn sms_call_and_email_enrollments_activate_with_the_sent_code() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let email = t.sim().user(&user).unwrap().email;
    for (kind, phone, mail, shown) in [
        ("sms", "+1 555 555 1234", "", "••• 1234"),
        ("call", "+1 555 555 9876", "", "••• 9876"),
        ("email", "", email.as_str(), "@example.com"),
    ] {
        let page = enroll(
            &b,
            &user,
            &token,
            &[("kind", kind), ("phone", phone), ("email", mail)],
        )
        .await;
        assert_eq!(page.status, 200, "{kind}: {}", page.body);
        assert!(
            page.text("#factor-notice").unwrap().contains(shown),
            "{kind}: masked destination"
        );
        assert_eq!(page.count("#totp-secret"), 0);
        let factor = factor_id(&page);
        let code = t
            .sim()
            .last_passcode(&factor)
            .expect("the simulator sent a code");
        assert!(
            !page.body.contains(&code),
            "the portal never knows the code"
        );
        let done = activate(&b, &user, &factor, &token, &code).await;
        assert_eq!(done.status, 303, "{kind}: {}", done.body);
        assert_eq!(
            format!("{:?}", t.sim().factor(&factor).unwrap().status),
            "Active",
            "{kind}"
        );
        let audit = format!("{:?}", t.audit().await);
        assert!(
            !audit.contains(&format!("\"{code}\"")),
            "no passcode in the audit trail"
        );
    }
}

#[tokio::test]
async fn wrong_codes_and_too_many_attempts_are_explained() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let page = enroll(&b, &user, &token, &[("kind", "google_authenticator")]).await;
    let factor = factor_id(&page);
    let wrong = activate(&b, &user, &factor, &token, "000000").await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(
        wrong
            .text("#activate-error")
            .unwrap()
            .contains("That code is not right")
    );
    assert_eq!(
        wrong.count("#totp-secret"),
        0,
        "the secret is not shown again"
    );
    assert_eq!(factor_id(&wrong), factor, "the agent can try again");
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("factors.activate", "failure")
    );
    assert_eq!(row.okta_error_code.as_deref(), Some("E0000068"));
    assert!(
        !format!("{row:?}").contains("000000"),
        "no passcode in the audit row"
    );
    for _ in 0..4 {
        activate(&b, &user, &factor, &token, "111111").await;
    }
    let limited = activate(&b, &user, &factor, &token, "222222").await;
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .text("#activate-error")
            .unwrap()
            .contains("Too many attempts")
    );
    let bad_input = activate(&b, &user, &factor, &token, "abc").await;
    assert_eq!(bad_input.status, 422, "{}", bad_input.body);
    assert!(
        bad_input
            .text("#activate-error")
            .unwrap()
            .contains("digits only")
    );
}

#[tokio::test]
async fn resend_has_a_cool_down_and_abandon_removes_the_enrollment() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let page = enroll(
        &b,
        &user,
        &token,
        &[("kind", "sms"), ("phone", "+1 555 555 4321")],
    )
    .await;
    let factor = factor_id(&page);
    let resend = b
        .post_form(
            &format!("/users/{user}/factors/{factor}/resend"),
            &[("_csrf", &token), ("reason", "Caller has a new phone")],
        )
        .await;
    assert_eq!(resend.status, 429);
    assert!(
        resend
            .text("#activate-error")
            .unwrap()
            .contains("less than 30 seconds")
    );
    let abandon = b
        .post_form(
            &format!("/users/{user}/factors/{factor}/abandon"),
            &[("_csrf", &token), ("reason", "Caller has a new phone")],
        )
        .await;
    assert_eq!(abandon.status, 303);
    assert!(
        t.sim().factor(&factor).is_none(),
        "the pending enrollment is gone"
    );
}

#[tokio::test]
async fn reset_one_factor_and_reset_all() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let mut ids = Vec::new();
    for (kind, phone) in [("sms", "+1 555 555 1111"), ("google_authenticator", "")] {
        let page = enroll(&b, &user, &token, &[("kind", kind), ("phone", phone)]).await;
        ids.push(factor_id(&page));
    }
    let detail = b.get(&format!("/users/{user}")).await;
    assert_eq!(detail.count("#factor-table tr[data-factor]"), 2);
    let confirm = b
        .get(&format!("/users/{user}/factors/{}/reset", ids[0]))
        .await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text("#consequence").unwrap().contains("SMS"));
    let missing_reason = b
        .post_form(
            &format!("/users/{user}/factors/{}/reset", ids[0]),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(missing_reason.status, 422);
    assert_eq!(
        t.sim().factors(&user).len(),
        2,
        "nothing reset without a reason"
    );
    let done = b
        .post_form(
            &format!("/users/{user}/factors/{}/reset", ids[0]),
            &[("_csrf", &token), ("reason", "Lost the phone yesterday")],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(t.sim().factors(&user).len(), 1);
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("factors.reset", "success")
    );
    assert_eq!(row.reason.as_deref(), Some("Lost the phone yesterday"));
    let all = b
        .post_form(
            &format!("/users/{user}/factors/reset-all"),
            &[("_csrf", &token), ("reason", "Fresh start for the caller")],
        )
        .await;
    assert_eq!(all.status, 303, "{}", all.body);
    assert!(t.sim().factors(&user).is_empty());
    assert_eq!(
        t.audit().await.into_iter().last().unwrap().action,
        "factors.reset_all"
    );
}

#[tokio::test]
async fn viewers_and_read_only_agents_cannot_change_factors() {
    use admin_portal::auth::policy::RuleSpec;
    let t = TestApp::spawn_with(|c| {
        // Agents may only read factors; managers keep the default rules.
        let mut rules = admin_portal::auth::policy::Policy::default_rules();
        rules.remove("factors.enroll");
        rules.remove("factors.reset");
        rules.insert(
            "factors.enroll".into(),
            RuleSpec {
                scopes: vec!["admin.factors.manage".into()],
                groups: vec!["Portal-Managers".into()],
                clients: vec![],
            },
        );
        c.policy.permissions = Some(rules);
    })
    .await;
    let user = t.plain_active_user();
    let viewer = t.signed_in(VIEWER).await;
    for path in [
        format!("/users/{user}/factors/new"),
        format!("/users/{user}/factors/reset-all"),
    ] {
        assert_eq!(viewer.get(&path).await.status, 403, "{path}");
    }
    let agent = t.signed_in(AGENT).await;
    let token = agent.csrf_token().await;
    let detail = agent.get(&format!("/users/{user}")).await;
    assert_eq!(
        detail.count("#factors"),
        1,
        "the agent sees the factor list"
    );
    assert_eq!(detail.count("#enroll-factor"), 0);
    assert_eq!(
        agent
            .get(&format!("/users/{user}/factors/new"))
            .await
            .status,
        403
    );
    let refused = enroll(
        &agent,
        &user,
        &token,
        &[("kind", "sms"), ("phone", "+1 555 555 2222")],
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.text("#missing-permission").as_deref(),
        Some("factors.enroll")
    );
    assert!(t.sim().factors(&user).is_empty());
    let reset = agent
        .post_form(
            &format!("/users/{user}/factors/reset-all"),
            &[("_csrf", &token), ("reason", "Trying anyway today")],
        )
        .await;
    assert_eq!(reset.status, 403);
}

#[tokio::test]
async fn the_shared_secret_never_reaches_the_session_store() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let user = t.plain_active_user();
    let page = enroll(&b, &user, &token, &[("kind", "google_authenticator")]).await;
    let secret: String = page
        .text("#totp-secret")
        .unwrap()
        .split_whitespace()
        .collect();
    let sessions: Vec<Vec<u8>> = match &t.app.state.db {
        admin_portal::db::Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT data FROM portal_sessions")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        admin_portal::db::Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT data FROM portal_sessions")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    assert!(!sessions.is_empty());
    for data in sessions {
        assert!(
            !String::from_utf8_lossy(&data).contains(&secret),
            "secret found in a stored session"
        );
    }
    assert!(!format!("{:?}", t.audit().await).contains(&secret));
}
