//! The Okta client against the simulator, without the web layer.

use std::collections::BTreeMap;

use admin_portal::okta::OktaErrorKind;
use admin_portal::okta::models::UserStatus;
use admin_portal::okta::search::Search;
use admin_portal::okta::users::{Lifecycle, UserQuery};

use crate::helpers::*;

#[tokio::test]
async fn q_filter_search_get_update_and_groups() {
    let t = TestApp::spawn().await;
    let okta = &t.app.state.okta;
    let manager = okta.get_user(MANAGER).await.expect("get by login");
    assert_eq!(manager.profile.login, MANAGER);
    let by_id = okta.get_user(&manager.id).await.unwrap();
    assert_eq!(by_id.id, manager.id);
    assert!(
        by_id.has_link("suspend"),
        "single GET carries lifecycle links"
    );

    let q = okta
        .list_users(UserQuery {
            q: Some("Morg".into()),
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        q.users
            .iter()
            .map(|u| u.profile.login.as_str())
            .collect::<Vec<_>>(),
        vec![MANAGER]
    );
    let filtered = okta
        .list_users(UserQuery {
            filter: Some(Search::eq("profile.login", MANAGER)),
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.users.len(), 1);
    let searched = okta
        .list_users(UserQuery {
            search: Some(Search::eq("status", "ACTIVE").and(Search::sw("profile.login", "agent"))),
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(searched.users[0].profile.login, AGENT);
    assert!(
        searched.users[0].links.keys().all(|k| k == "self"),
        "collections carry only self"
    );

    let mut changes = BTreeMap::new();
    changes.insert("mobilePhone".to_string(), serde_json::json!("+1 555 0199"));
    let updated = okta.update_profile(&manager.id, changes).await.unwrap();
    assert_eq!(
        updated.body.profile.mobile_phone.as_deref(),
        Some("+1 555 0199")
    );
    assert_eq!(
        t.sim().user(MANAGER).unwrap().mobile_phone.as_deref(),
        Some("+1 555 0199")
    );

    let groups = okta.user_groups(&manager.id).await.unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.profile.name.as_str()).collect();
    assert!(
        names.contains(&"Portal-Managers") && names.contains(&"Everyone"),
        "{names:?}"
    );
}

#[tokio::test]
async fn lifecycle_results_and_errors_are_typed() {
    let t = TestApp::spawn().await;
    let okta = &t.app.state.okta;
    let id = {
        let store = t.sim().store();
        store
            .users
            .values()
            .find(|u| u.login.contains('.') && u.status == okta_sim::UserStatus::Active)
            .unwrap()
            .id
            .clone()
    };
    okta.clear_sessions(&id, false)
        .await
        .expect("clear sessions");
    let done = okta
        .lifecycle(&id, Lifecycle::Deactivate, None)
        .await
        .unwrap();
    assert!(done.request_id.is_some());
    assert_eq!(
        okta.get_user(&id).await.unwrap().status,
        UserStatus::Deprovisioned
    );
    let again = okta
        .lifecycle(&id, Lifecycle::Deactivate, None)
        .await
        .unwrap_err();
    assert_eq!(again.kind, OktaErrorKind::NotFound);
    assert_eq!(again.code.as_deref(), Some("E0000007"));
    let activated = okta
        .lifecycle(&id, Lifecycle::Activate, Some(false))
        .await
        .unwrap();
    assert!(
        activated.body.activation_url.is_some(),
        "sendEmail=false returns the link"
    );
    let refused = okta
        .lifecycle(&id, Lifecycle::Unlock, None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, OktaErrorKind::NotAllowed);
    assert!(refused.request_id.is_some());
    // Delete: deactivate first, then for good.
    okta.delete_user(&id).await.unwrap();
    okta.delete_user(&id).await.unwrap();
    assert_eq!(
        okta.get_user(&id).await.unwrap_err().kind,
        OktaErrorKind::NotFound
    );
}
