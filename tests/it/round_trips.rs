//! How many Okta calls each page costs, counted at the simulator (counts, not times; the
//! round trips under injected latency are measured by `cargo bench --bench pages`).

use crate::helpers::*;

/// The Management API calls the simulator received while `f` ran, as "METHOD path" lines
/// with ids replaced by `{id}`, sorted.
async fn calls_during<F: Future<Output = Page>>(t: &TestApp, f: F) -> (Page, Vec<String>) {
    let before = t.sim().requests("*", "/api/v1/").len();
    let page = f.await;
    let calls = t.sim().requests("*", "/api/v1/")[before..]
        .iter()
        .map(|r| {
            let path: Vec<String> = r
                .path
                .split('/')
                .map(|s| {
                    if s.starts_with("00u") || s.starts_with("00g") {
                        "{id}".to_string()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            format!("{} {}", r.method, path.join("/"))
        })
        .collect::<Vec<_>>();
    let mut calls = calls;
    calls.sort();
    (page, calls)
}

#[tokio::test]
async fn each_page_makes_only_the_okta_calls_it_needs() {
    let t = TestApp::spawn().await;
    let agent = t.signed_in(MANAGER).await;
    let id = t.plain_active_user();
    // Warm-up: discovery, keys and the group list are loaded once, not per page.
    assert_eq!(agent.get("/users?q=a").await.status, 200);

    let (page, calls) = calls_during(&t, agent.get("/users?q=be")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        calls,
        ["GET /api/v1/users"],
        "search page: the search alone"
    );

    let (page, calls) = calls_during(&t, agent.get(&format!("/users/{id}"))).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        calls,
        [
            "GET /api/v1/logs",
            "GET /api/v1/users/{id}",
            "GET /api/v1/users/{id}/factors",
            "GET /api/v1/users/{id}/groups",
        ],
        "user page by id: four calls, all keyed by the id (made at once)"
    );

    let (page, calls) = calls_during(&t, agent.get(&format!("/users/{id}/suspend"))).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        calls,
        ["GET /api/v1/users/{id}", "GET /api/v1/users/{id}/groups"],
        "confirmation page: the user and its groups (made at once)"
    );

    let csrf = agent.csrf_token().await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("reason", "Fraud review"),
        ("ticket", "SUP-3"),
    ];
    let (page, calls) =
        calls_during(&t, agent.post_form(&format!("/users/{id}/suspend"), &form)).await;
    assert!(page.status.is_redirection(), "{}", page.body);
    assert_eq!(
        calls,
        [
            "GET /api/v1/users/{id}",
            "GET /api/v1/users/{id}/groups",
            "POST /api/v1/users/{id}/lifecycle/suspend",
        ],
        "lifecycle POST: what the guard needs (at once), then the change; no read afterwards"
    );
}
