//! The operations agents gained with the operations layer — clear sessions, profile edits,
//! group membership — through the real pages: success, each refusal, Okta's errors, and the one
//! audit record each attempt writes.

use okta_sim::{Fault, FaultKind};

use crate::helpers::*;

const REASON: &str = "Caller verified on the phone";

fn why<'a>(token: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![("_csrf", token), ("reason", REASON), ("ticket", "SUP-77")];
    form.extend_from_slice(extra);
    form
}

fn group_id(t: &TestApp, name: &str) -> String {
    let store = t.sim().store();
    let group = store.groups.values().find(|g| g.name == name);
    group.map(|g| g.id.clone()).expect("seeded group")
}

#[tokio::test]
async fn clearing_sessions_can_revoke_tokens_and_is_audited_once() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = t.plain_active_user();
    let confirm = b.get(&format!("/users/{id}/clear-sessions")).await;
    assert_eq!(confirm.status, 200);
    assert_eq!(confirm.count("#revoke-tokens"), 1);
    let before = t.audit().await.len();
    let page = b
        .post_form(
            &format!("/users/{id}/clear-sessions"),
            &why(&token, &[("revoke_tokens", "1")]),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), format!("/users/{id}"));
    let calls = t
        .sim()
        .requests("DELETE", &format!("/api/v1/users/{id}/sessions"));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].query.as_deref(), Some("oauthTokens=true"));
    let audit = t.audit().await;
    assert_eq!(audit.len(), before + 1);
    let row = audit.last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.clear_sessions", "success")
    );
    assert_eq!(row.permission.as_deref(), Some("users.sessions"));
    assert_eq!(
        (row.reason.as_deref(), row.ticket.as_deref()),
        (Some(REASON), Some("SUP-77"))
    );
    assert_eq!(row.status_before.as_deref(), Some("ACTIVE"));
    assert_eq!(row.status_after.as_deref(), Some("ACTIVE"));
    assert_eq!(
        row.okta_request_id.as_deref(),
        Some(calls[0].request_id.as_str())
    );
    // Without the box ticked, tokens are left alone.
    b.post_form(&format!("/users/{id}/clear-sessions"), &why(&token, &[]))
        .await;
    let last = t
        .sim()
        .requests("DELETE", &format!("/api/v1/users/{id}/sessions"))
        .pop();
    assert_eq!(last.unwrap().query.as_deref(), Some("oauthTokens=false"));
}

#[tokio::test]
async fn clearing_own_sessions_is_refused_and_a_bad_reason_records_nothing() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let own = t.sim().user(AGENT).unwrap().id;
    let page = b
        .post_form(&format!("/users/{own}/clear-sessions"), &why(&token, &[]))
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.text("#refusal")
            .unwrap()
            .contains("This is your own account")
    );
    assert_eq!(
        t.sim()
            .request_count("DELETE", &format!("/api/v1/users/{own}/sessions")),
        0
    );
    let row = t.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.clear_sessions", "denied")
    );
    // An invalid reason: 422 with the field error, nothing sent, nothing recorded.
    let id = t.plain_active_user();
    let before = t.audit().await.len();
    let form = [
        ("_csrf", token.as_str()),
        ("reason", "x"),
        ("ticket", &"T".repeat(5000)),
    ];
    let page = b
        .post_form(&format!("/users/{id}/clear-sessions"), &form)
        .await;
    assert_eq!(page.status, 422);
    assert!(page.text("#reason-error").is_some() && page.text("#ticket-error").is_some());
    assert_eq!(t.audit().await.len(), before);
    assert_eq!(
        t.sim()
            .request_count("DELETE", &format!("/api/v1/users/{id}/sessions")),
        0
    );
    // A path that is not a user reference never reaches Okta or the audit trail.
    let page = b
        .post_form(
            "/users/..%2F..%2Factivity/clear-sessions",
            &why(&token, &[]),
        )
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(t.audit().await.len(), before);
}

#[tokio::test]
async fn profile_edits_send_only_what_changed() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = t.plain_active_user();
    let form_page = b.get(&format!("/users/{id}/profile")).await;
    assert_eq!(form_page.status, 200, "{}", form_page.body);
    assert_eq!(form_page.count("#attr-title"), 1);
    assert_eq!(form_page.count("#attr-login"), 0, "login is not editable");
    let user = t.sim().user(&id).unwrap();
    let last_updated = form_page
        .html()
        .select(&scraper::Selector::parse("input[name=last_updated]").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_string))
        .unwrap();
    let page = b
        .post_form(
            &format!("/users/{id}/profile"),
            &why(
                &token,
                &[
                    ("last_updated", &last_updated),
                    ("firstName", &user.first_name),
                    ("title", "Head of Support"),
                    ("mobilePhone", "+1 555 0100"),
                    ("login", "hijack@example.com"),
                ],
            ),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let after = t.sim().user(&id).unwrap();
    assert_eq!(
        after.profile_extra.get("title").and_then(|v| v.as_str()),
        Some("Head of Support")
    );
    assert_eq!(after.mobile_phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(
        after.login, user.login,
        "a field that is not editable is ignored"
    );
    let row = t.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.update_profile", "success")
    );
    assert_eq!(row.detail.as_deref(), Some("changed mobilePhone, title"));
    // The same form again is now stale: refused, nothing changed.
    let page = b
        .post_form(
            &format!("/users/{id}/profile"),
            &why(
                &token,
                &[("last_updated", &last_updated), ("title", "Intern")],
            ),
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.text("#refusal")
            .unwrap()
            .contains("changed since you loaded")
    );
    let title = t
        .sim()
        .user(&id)
        .unwrap()
        .profile_extra
        .get("title")
        .cloned();
    assert_eq!(
        title.as_ref().and_then(|v| v.as_str()),
        Some("Head of Support")
    );
    assert_eq!(t.audit().await.pop().unwrap().outcome, "denied");
}

#[tokio::test]
async fn profile_problems_are_shown_on_the_form() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = t.plain_active_user();
    let before = t.audit().await.len();
    let bad = b
        .post_form(
            &format!("/users/{id}/profile"),
            &why(&token, &[("mobilePhone", "call me")]),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.text("#mobilePhone-error").as_deref(),
        Some("Enter a phone number such as +1 555 0100.")
    );
    let same = b
        .post_form(&format!("/users/{id}/profile"), &why(&token, &[]))
        .await;
    assert_eq!(same.status, 422);
    assert!(
        same.text("#profile-error")
            .unwrap()
            .contains("Nothing to change")
    );
    assert_eq!(
        t.audit().await.len(),
        before,
        "invalid input records nothing"
    );
    // Okta failing: the failure box with Okta's request id, one failure record.
    t.sim().inject_fault(Fault::new(
        "POST",
        &format!("/api/v1/users/{id}"),
        FaultKind::Status(500),
    ));
    let failed = b
        .post_form(
            &format!("/users/{id}/profile"),
            &why(&token, &[("title", "Lead")]),
        )
        .await;
    assert!(failed.status.is_server_error(), "{}", failed.status);
    assert!(failed.text("#okta-failure").is_some(), "{}", failed.body);
    let row = t.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.update_profile", "failure")
    );
    assert_eq!(row.okta_error_code.as_deref(), Some("E0000009"));
    // A deactivated user's profile cannot be edited.
    t.sim()
        .set_user_status(&id, okta_sim::UserStatus::Deprovisioned);
    let page = b.get(&format!("/users/{id}/profile")).await;
    assert!(page.text("#refusal").unwrap().contains("deactivated"));
    let post = b
        .post_form(
            &format!("/users/{id}/profile"),
            &why(&token, &[("title", "X")]),
        )
        .await;
    assert_eq!(post.status, 409);
}

#[tokio::test]
async fn group_membership_changes_only_allow_listed_groups() {
    let t = TestApp::spawn_with(|c| c.users.membership_groups.push("Contractors".into())).await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = t.plain_active_user();
    let sales = group_id(&t, "Sales");
    t.sim()
        .store()
        .users
        .get_mut(&id)
        .unwrap()
        .group_ids
        .retain(|g| *g != sales);
    let page = b.get(&format!("/users/{id}/groups")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let options = page.text("#group").unwrap();
    assert!(
        options.contains("Sales") && !options.contains("Executives"),
        "{options}"
    );
    let added = b
        .post_form(
            &format!("/users/{id}/groups"),
            &why(&token, &[("group", &sales)]),
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert!(t.sim().user(&id).unwrap().group_ids.contains(&sales));
    let row = t.audit().await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.group_add", "success")
    );
    assert_eq!(row.detail.as_deref(), Some("added to group Sales"));
    let confirm = b.get(&format!("/users/{id}/groups/{sales}/remove")).await;
    assert_eq!(confirm.count("#remove-form"), 1);
    let removed = b
        .post_form(
            &format!("/users/{id}/groups/{sales}/remove"),
            &why(&token, &[]),
        )
        .await;
    assert_eq!(removed.status, 303);
    assert!(!t.sim().user(&id).unwrap().group_ids.contains(&sales));
    assert_eq!(t.audit().await.pop().unwrap().action, "user.group_remove");
    // Hand-made posts for a protected group, a portal group and an app group are refused.
    for (name, words) in [
        ("Executives", "cannot be changed in the portal"),
        ("Portal-Managers", "cannot be changed in the portal"),
        ("Contractors", "managed outside Okta"),
    ] {
        let group = group_id(&t, name);
        let member = t.sim().user(&id).unwrap().group_ids.contains(&group);
        let puts = t
            .sim()
            .request_count("PUT", &format!("/api/v1/groups/{group}/users"));
        let page = b
            .post_form(
                &format!("/users/{id}/groups"),
                &why(&token, &[("group", &group)]),
            )
            .await;
        assert_eq!(page.status, 403, "{name}");
        assert!(
            page.text("#refusal").unwrap().contains(words),
            "{name}: {}",
            page.body
        );
        assert_eq!(
            t.sim()
                .request_count("PUT", &format!("/api/v1/groups/{group}/users")),
            puts
        );
        let row = t.audit().await.pop().unwrap();
        assert_eq!(
            (row.action.as_str(), row.outcome.as_str()),
            ("user.group_add", "denied")
        );
        assert_eq!(
            t.sim().user(&id).unwrap().group_ids.contains(&group),
            member
        );
    }
}

#[tokio::test]
async fn agents_without_the_permission_see_no_new_actions() {
    let t = TestApp::spawn_with(|c| {
        c.policy.permissions = Some({
            let mut rules = admin_portal::auth::policy::Policy::default_rules();
            rules.remove("users.groups");
            rules.remove("users.profile");
            rules
        });
    })
    .await;
    let b = t.signed_in(AGENT).await;
    let id = t.plain_active_user();
    let page = b.get(&format!("/users/{id}")).await;
    assert_eq!(page.count("#edit-profile") + page.count("#edit-groups"), 0);
    let denied = b.get(&format!("/users/{id}/groups")).await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.text("#missing-permission").as_deref(),
        Some("users.groups")
    );
}
