//! Every route for every kind of visitor gets exactly the expected status.

use crate::helpers::*;

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Viewer,
    Agent,
    Manager,
}

#[tokio::test]
async fn policy_matrix_every_route_for_every_visitor() {
    let t = TestApp::spawn().await;
    let browsers = [
        (Who::Anonymous, t.browser()),
        (Who::Viewer, t.signed_in(VIEWER).await),
        (Who::Agent, t.signed_in(AGENT).await),
        (Who::Manager, t.signed_in(MANAGER).await),
    ];
    let css = admin_portal::web::assets::Assets::embedded().url("app.css");
    let id = {
        let store = t.sim().store();
        store
            .users
            .values()
            .find(|u| u.login.starts_with("ada.") || u.login.contains('.'))
            .map(|u| u.id.clone())
            .unwrap()
    };
    // (method, path, [anonymous, viewer, agent, manager])
    let matrix: Vec<(&str, String, [u16; 4])> = vec![
        ("GET", "/".into(), [303, 200, 200, 200]),
        ("GET", "/me".into(), [303, 200, 200, 200]),
        ("GET", "/activity".into(), [303, 403, 403, 200]),
        ("GET", "/users".into(), [303, 403, 200, 200]),
        (
            "GET",
            "/users?q=a&status=ACTIVE".into(),
            [303, 403, 200, 200],
        ),
        ("GET", "/users/new".into(), [303, 403, 200, 200]),
        ("GET", format!("/users/{id}"), [303, 403, 200, 200]),
        ("GET", format!("/users/{id}/suspend"), [303, 403, 200, 200]),
        ("GET", format!("/users/{id}/unlock"), [303, 403, 200, 200]),
        (
            "GET",
            format!("/users/{id}/reset-password"),
            [303, 403, 200, 200],
        ),
        ("GET", format!("/users/{id}/delete"), [303, 403, 403, 200]),
        (
            "GET",
            format!("/users/{id}/factors/new"),
            [303, 403, 200, 200],
        ),
        (
            "GET",
            format!("/users/{id}/factors/reset-all"),
            [303, 403, 200, 200],
        ),
        ("POST", format!("/users/{id}/factors"), [403, 403, 403, 403]),
        (
            "POST",
            format!("/users/{id}/factors/reset-all"),
            [403, 403, 403, 403],
        ),
        ("GET", "/activity/agents/00uX".into(), [303, 403, 403, 200]),
        ("GET", "/activity/export.csv".into(), [303, 403, 403, 200]),
        ("GET", "/activity/export.jsonl".into(), [303, 403, 403, 200]),
        ("GET", "/activity/integrity".into(), [303, 403, 403, 200]),
        ("GET", "/activity/charts".into(), [303, 403, 403, 200]),
        ("POST", "/users".into(), [403, 403, 403, 403]),
        (
            "POST",
            format!("/users/{id}/deactivate"),
            [403, 403, 403, 403],
        ),
        ("POST", format!("/users/{id}/delete"), [403, 403, 403, 403]),
        ("GET", "/signed-out".into(), [200, 200, 200, 200]),
        ("GET", "/healthz".into(), [200, 200, 200, 200]),
        ("GET", "/readyz".into(), [200, 200, 200, 200]),
        ("GET", css, [200, 200, 200, 200]),
        ("GET", "/static/nope.js".into(), [404, 404, 404, 404]),
        ("GET", "/no-such-page".into(), [404, 404, 404, 404]),
        ("GET", "/auth/logout".into(), [405, 405, 405, 405]),
        // Without a CSRF token every POST is refused, signed in or not.
        ("POST", "/auth/logout".into(), [403, 403, 403, 403]),
        ("POST", "/me".into(), [403, 403, 403, 403]),
    ];
    for (method, path, expected) in &matrix {
        for (i, (who, b)) in browsers.iter().enumerate() {
            let page = match *method {
                "GET" => b.get(path).await,
                _ => b.post_form(path, &[]).await,
            };
            assert_eq!(
                page.status.as_u16(),
                expected[i],
                "{method} {path} as {who:?}: {}",
                page.body
            );
        }
    }
}

#[tokio::test]
async fn forbidden_page_names_the_missing_permission_and_is_audited() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let page = b.get("/activity").await;
    assert_eq!(page.status, 403);
    assert_eq!(
        page.text("#missing-permission").as_deref(),
        Some("audit.read")
    );
    let body = page.text(".requirement").unwrap();
    assert!(
        body.contains("scopes admin.audit.read and membership of Portal-Managers"),
        "{body}"
    );
    assert!(
        body.contains("your token lacks the scope admin.audit.read"),
        "{body}"
    );
    assert!(body.contains("you are not in Portal-Managers"), "{body}");
    let denial = t.audit().await.into_iter().last().unwrap();
    assert_eq!(denial.action, "policy.denied");
    assert_eq!(denial.outcome, "denied");
    assert_eq!(denial.permission.as_deref(), Some("audit.read"));
    assert_eq!(denial.actor_login.as_deref(), Some(AGENT));
    assert_eq!(denial.request_id, page.header("x-request-id"));
    assert!(denial.detail.unwrap().starts_with("GET /activity"));
}

#[tokio::test]
async fn forbidden_for_htmx_is_a_fragment_and_for_json_a_problem() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(VIEWER).await;
    let fragment = b.get_htmx("/activity").await;
    assert_eq!(fragment.status, 403);
    assert!(!fragment.body.contains("<html"), "a fragment, not a page");
    assert!(fragment.body.contains("audit.read"));
    let json = b
        .client
        .get(t.url("/activity"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 403);
    assert_eq!(json.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["permission"], "audit.read");
    assert_eq!(body["status"], 403);
}

#[tokio::test]
async fn navigation_follows_the_policy() {
    let t = TestApp::spawn().await;
    let agent = t.signed_in(AGENT).await.get("/").await;
    assert_eq!(agent.count("#nav-activity"), 0);
    assert_eq!(agent.count("#card-users"), 1);
    assert_eq!(agent.count("#card-activity"), 0);
    let manager = t.signed_in(MANAGER).await.get("/").await;
    assert_eq!(manager.count("#nav-activity"), 1);
    assert_eq!(manager.count("#card-activity"), 1);
    let viewer = t.signed_in(VIEWER).await.get("/").await;
    assert_eq!(viewer.count("#no-access"), 1);
    assert_eq!(viewer.count("#card-users"), 0);
}

#[tokio::test]
async fn manager_sees_sign_ins_and_denials_on_the_activity_page() {
    let t = TestApp::spawn().await;
    let agent = t.signed_in(AGENT).await;
    assert_eq!(agent.get("/activity").await.status, 403);
    let manager = t.signed_in(MANAGER).await;
    let page = manager.get("/activity").await;
    assert_eq!(page.status, 200);
    let table = page.text("#activity-table").unwrap();
    assert!(
        table.contains("policy.denied") && table.contains("audit.read"),
        "{table}"
    );
    assert!(
        table.contains("auth.sign_in") && table.contains("Alex Agent"),
        "{table}"
    );
}

#[tokio::test]
async fn a_valid_form_without_the_permission_is_refused_by_the_server() {
    let t = TestApp::spawn().await;
    let target = {
        let store = t.sim().store();
        store
            .users
            .values()
            .find(|u| u.login.contains('.'))
            .map(|u| u.id.clone())
            .unwrap()
    };
    assert!(
        t.sim()
            .set_user_status(&target, okta_sim::UserStatus::Deprovisioned)
    );
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    // The button is hidden from agents, but a hand-made POST must fail on the server too.
    let page = b
        .post_form(
            &format!("/users/{target}/delete"),
            &[("_csrf", &token), ("reason", "Hand-made delete attempt")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(
        page.text("#missing-permission").as_deref(),
        Some("users.delete")
    );
    assert!(t.sim().user(&target).is_some(), "not deleted");
    assert_eq!(t.sim().request_count("DELETE", "/api/v1/users"), 0);
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.permission.as_deref()),
        ("policy.denied", Some("users.delete"))
    );
}
