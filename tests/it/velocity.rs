//! Velocity caps on destructive actions (`[limits.velocity]`): the refusal on the page and in
//! the API, its audit record, a manager's lift from the agent's timeline, and one cap across
//! two instances sharing Redis.

use okta_sim::UserStatus as SimStatus;
use reqwest::Method;
use serde_json::json;

use crate::api::{SUPPORT, SUPPORT_SCOPES, call, token};
use crate::helpers::*;

const REFUSED_TWO: &str = "You have deactivated 2 users in the last hour, the most allowed. A manager can lift this for you for the rest of today.";

fn capped(deactivate: u32) -> impl FnOnce(&mut admin_portal::config::Config) {
    move |c| c.limits.velocity.deactivate = deactivate
}

async fn deactivate(b: &Browser, id: &str) -> Page {
    let token = b.csrf_token().await;
    b.post_form(
        &format!("/users/{id}/deactivate"),
        &[("_csrf", &token), ("reason", "Offboarding batch from HR")],
    )
    .await
}

fn deactivations_sent(t: &TestApp, id: &str) -> usize {
    t.sim()
        .request_count("POST", &format!("/api/v1/users/{id}/lifecycle/deactivate"))
}

/// The subject the trail records for `login` (the agent's Okta user id).
async fn subject_of(t: &TestApp, login: &str) -> String {
    t.audit()
        .await
        .into_iter()
        .rev()
        .find(|r| r.actor_login.as_deref() == Some(login))
        .and_then(|r| r.actor_sub)
        .expect("the agent is in the trail")
}

/// The "Used" cell of a cap on the timeline.
fn used(page: &Page, label: &str) -> Option<String> {
    page.text(&format!("tr[data-cap=\"{label}\"] td.used"))
}

#[tokio::test]
async fn the_third_deactivation_is_refused_and_recorded_and_a_managers_lift_lets_it_through() {
    let t = TestApp::spawn_with(capped(2)).await;
    let users = plain_active_users(t.sim());
    let agent = t.signed_in(AGENT).await;
    for id in &users[..2] {
        let done = deactivate(&agent, id).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(t.sim().user(id).unwrap().status, SimStatus::Deprovisioned);
    }
    let third = &users[2];
    let refused = deactivate(&agent, third).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.text("#refusal").as_deref(), Some(REFUSED_TWO));
    assert_eq!(t.sim().user(third).unwrap().status, SimStatus::Active);
    assert_eq!(deactivations_sent(&t, third), 0, "nothing reached Okta");
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.deactivate", "denied")
    );
    assert_eq!(row.target_id.as_deref(), Some(third.as_str()));
    assert_eq!(row.detail.as_deref(), Some(REFUSED_TWO));
    assert_eq!(row.actor_login.as_deref(), Some(AGENT));

    // The manager sees the usage on the agent's timeline, and lifts the caps.
    let sub = subject_of(&t, AGENT).await;
    let manager = t.signed_in(MANAGER).await;
    let timeline = manager.get(&format!("/activity/agents/{sub}")).await;
    assert_eq!(timeline.status, 200, "{}", timeline.body);
    assert_eq!(used(&timeline, "Deactivations").as_deref(), Some("2"));
    assert_eq!(used(&timeline, "Suspensions").as_deref(), Some("0"));
    assert_eq!(
        timeline.text("#velocity-lift").as_deref(),
        Some("No lift in force.")
    );
    assert_eq!(timeline.count("#lift-form"), 1);
    let token = manager.csrf_token().await;
    let lift_path = format!("/activity/agents/{sub}/lift");
    let no_reason = manager
        .post_form(&lift_path, &[("_csrf", &token), ("reason", "")])
        .await;
    assert_eq!(no_reason.status, 422);
    assert!(
        no_reason.text("#reason-error").is_some(),
        "{}",
        no_reason.body
    );
    let lifted = manager
        .post_form(
            &lift_path,
            &[
                ("_csrf", &token),
                ("reason", "Offboarding of the Berlin office"),
            ],
        )
        .await;
    assert_eq!(lifted.status, 303, "{}", lifted.body);
    assert_eq!(lifted.location(), format!("/activity/agents/{sub}"));
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("velocity.lift", "success")
    );
    assert_eq!(row.actor_login.as_deref(), Some(MANAGER));
    assert_eq!(row.target_id.as_deref(), Some(sub.as_str()));
    assert_eq!(row.permission.as_deref(), Some("limits.lift"));
    assert_eq!(
        row.reason.as_deref(),
        Some("Offboarding of the Berlin office")
    );
    assert!(row.detail.unwrap().contains("the end of the UTC day"));
    let timeline = manager.get(&format!("/activity/agents/{sub}")).await;
    let lift = timeline.text("#velocity-lift").unwrap();
    assert!(lift.starts_with("Caps lifted by "), "{lift}");
    assert!(
        lift.contains("00:00 UTC (the end of the UTC day)"),
        "{lift}"
    );
    assert!(timeline.body.contains("are lifted until"), "the flash");

    let done = deactivate(&agent, third).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        t.sim().user(third).unwrap().status,
        SimStatus::Deprovisioned
    );
    let timeline = manager.get(&format!("/activity/agents/{sub}")).await;
    assert_eq!(used(&timeline, "Deactivations").as_deref(), Some("3"));
}

#[tokio::test]
async fn an_agent_cannot_lift_caps_and_a_manager_cannot_lift_their_own() {
    let t = TestApp::spawn_with(capped(2)).await;
    let agent = t.signed_in(AGENT).await;
    let manager = t.signed_in(MANAGER).await;
    // Both are in the trail (sign-in), so their subjects are known.
    let (agent_sub, manager_sub) = (subject_of(&t, AGENT).await, subject_of(&t, MANAGER).await);
    let token = agent.csrf_token().await;
    let page = agent
        .post_form(
            &format!("/activity/agents/{manager_sub}/lift"),
            &[("_csrf", &token), ("reason", "Let me lift this for you")],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("limits.lift"), "{}", page.body);

    let own = manager
        .get(&format!("/activity/agents/{manager_sub}"))
        .await;
    assert_eq!(own.status, 200);
    assert_eq!(own.count("#lift-form"), 0, "no form on one's own timeline");
    let token = manager.csrf_token().await;
    let page = manager
        .post_form(
            &format!("/activity/agents/{manager_sub}/lift"),
            &[("_csrf", &token), ("reason", "Lifting my own caps today")],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body
            .contains("These are your own velocity caps: another manager must lift them."),
        "{}",
        page.body
    );
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("velocity.lift", "denied")
    );
    assert_eq!(row.target_id.as_deref(), Some(manager_sub.as_str()));
    let agent_view = manager.get(&format!("/activity/agents/{agent_sub}")).await;
    assert_eq!(
        agent_view.text("#velocity-lift").as_deref(),
        Some("No lift in force.")
    );
    let own = manager
        .get(&format!("/activity/agents/{manager_sub}"))
        .await;
    assert_eq!(
        own.text("#velocity-lift").as_deref(),
        Some("No lift in force.")
    );
}

#[tokio::test]
async fn a_service_over_its_cap_gets_the_velocity_cap_problem_with_retry_after() {
    let t = TestApp::spawn_with(|c| {
        c.api.registration_groups = vec!["Sales".into()];
        c.limits.velocity.deactivate = 1;
    })
    .await;
    let token = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let users = plain_active_users(t.sim());
    let why = json!({ "reason": "Requested by the support app for a test" });
    let path = |id: &str| format!("/api/v1/users/{id}/lifecycle/deactivate");
    let done = call(
        &t,
        Method::POST,
        &path(&users[0]),
        Some(&token),
        Some(why.clone()),
        &[],
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let refused = call(
        &t,
        Method::POST,
        &path(&users[1]),
        Some(&token),
        Some(why),
        &[],
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (429, "velocity_cap"),
        "{:?}",
        refused.body
    );
    assert_eq!(
        refused.body["detail"],
        "You have deactivated 1 user in the last hour, the most allowed. A manager can lift this for you for the rest of today."
    );
    let wait: u64 = refused.header("retry-after").parse().expect("Retry-After");
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert_eq!(t.sim().user(&users[1]).unwrap().status, SimStatus::Active);
    assert_eq!(deactivations_sent(&t, &users[1]), 0);
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (
            row.action.as_str(),
            row.outcome.as_str(),
            row.client_id.as_deref()
        ),
        ("user.deactivate", "denied", Some(SUPPORT))
    );
}

#[tokio::test]
async fn the_cap_holds_across_two_instances_sharing_redis() {
    let redis = std::env::var("ADMIN_PORTAL_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test:velocity-it:{}:", uuid::Uuid::new_v4().simple());
    let t = TestApp::spawn_with(|c| {
        c.limits.velocity.deactivate = 2;
        c.cluster.redis_url = Some(redis.into());
        c.cluster.key_prefix = prefix;
        c.cluster.timeout_ms = 2000;
    })
    .await;
    // A second portal on the same database, simulator and Redis.
    let mut config = (*t.app.state.config).clone();
    config.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let other = admin_portal::Application::build(config.validate().expect("valid"))
        .await
        .expect("builds")
        .spawn();
    for app in [&t.app, &other] {
        assert_eq!(
            app.state.shared.probe().await.as_str(),
            "ok",
            "Redis must be running for this test"
        );
    }
    let users = plain_active_users(t.sim());
    let on_one = t.signed_in(AGENT).await;
    // The same session (it is in the shared database), through the other instance.
    let on_two = Browser {
        base: other.base_url.clone(),
        ..on_one.clone()
    };
    assert_eq!(deactivate(&on_one, &users[0]).await.status, 303);
    assert_eq!(deactivate(&on_two, &users[1]).await.status, 303);
    for (browser, id) in [(&on_one, &users[2]), (&on_two, &users[3])] {
        let refused = deactivate(browser, id).await;
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.text("#refusal").as_deref(), Some(REFUSED_TWO));
        assert_eq!(t.sim().user(id).unwrap().status, SimStatus::Active);
    }
    let denied = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "user.deactivate" && r.outcome == "denied")
        .count();
    assert_eq!(
        denied, 2,
        "one record per refusal, whichever instance refused"
    );
    other.stop().await;
}
