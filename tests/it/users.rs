//! The user pages through the real sign-in: search, detail, create, every lifecycle action
//! from every status, protected and self targets, reason and ticket, audit rows.

use okta_sim::UserStatus as SimStatus;

use crate::helpers::*;

/// A seeded end user with the given status (ids are stable within one simulator).
fn user_with_status(t: &TestApp, status: SimStatus) -> (String, String, String, String) {
    let store = t.sim().store();
    let u = store
        .users
        .values()
        .find(|u| {
            let groups = store.group_names(u);
            u.status == status
                && !is_demo(&u.login)
                && !groups
                    .iter()
                    .any(|g| g == "Executives" || g == "Portal-Admins")
        })
        .unwrap_or_else(|| panic!("a seeded user with status {status:?}"));
    (
        u.id.clone(),
        u.login.clone(),
        u.first_name.clone(),
        u.last_name.clone(),
    )
}

fn is_demo(login: &str) -> bool {
    [AGENT, MANAGER, VIEWER].contains(&login)
}

/// Any seeded end user (not a demo account, not protected).
fn end_user(t: &TestApp) -> (String, String, String, String) {
    user_with_status(t, SimStatus::Active)
}

fn rows(page: &Page) -> Vec<String> {
    page.html()
        .select(&scraper::Selector::parse("#user-results td.mono").unwrap())
        .map(|e| e.text().collect::<String>())
        .collect()
}

#[tokio::test]
async fn search_finds_a_user_by_email_name_or_id_with_and_without_javascript() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let (id, login, first, last) = end_user(&t);
    for q in [
        login[..6].to_string(),
        login.clone(),
        format!("{first} {last}"),
        id.clone(),
    ] {
        let page = b.get(&format!("/users?q={}", url_encode(&q))).await;
        assert_eq!(page.status, 200, "{q}: {}", page.body);
        assert!(
            rows(&page).contains(&login),
            "{q} should find {login}: {:?}",
            rows(&page)
        );
        assert_eq!(
            page.count("form[role=search] input#q"),
            1,
            "full page with the form"
        );
        let fragment = b.get_htmx(&format!("/users?q={}", url_encode(&q))).await;
        assert_eq!(fragment.status, 200);
        assert!(!fragment.body.contains("<html"), "htmx gets a fragment");
        assert!(fragment.body.contains(&login));
        assert_eq!(fragment.header("vary"), "HX-Request");
    }
    let by_id = b.get(&format!("/users?q={id}")).await;
    assert_eq!(
        rows(&by_id),
        vec![login.clone()],
        "an id finds exactly one user"
    );
    let none = b.get("/users?q=zzzznobody").await;
    assert_eq!(none.count("#no-results"), 1);
    // History restoration after the back button needs the whole page.
    let restore = b
        .client
        .get(t.url("/users?q=ada"))
        .header("hx-request", "true")
        .header("hx-history-restore-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(restore.contains("<html"));
}

#[tokio::test]
async fn search_filters_by_status_and_group() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let page = b.get("/users?status=LOCKED_OUT").await;
    let statuses: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("#user-results [data-status]").unwrap())
        .filter_map(|e| e.value().attr("data-status").map(str::to_string))
        .collect();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| s == "LOCKED_OUT"), "{statuses:?}");
    let expected_locked = t
        .sim()
        .store()
        .users
        .values()
        .filter(|u| u.status == SimStatus::LockedOut)
        .count();
    assert_eq!(statuses.len(), expected_locked);
    // Group filter: the Portal-Managers group holds only the manager.
    let group_id = {
        let store = t.sim().store();
        store
            .groups
            .values()
            .find(|g| g.name == "Portal-Managers")
            .unwrap()
            .id
            .clone()
    };
    let page = b.get(&format!("/users?group={group_id}")).await;
    assert_eq!(rows(&page), vec![MANAGER.to_string()]);
}

#[tokio::test]
async fn paging_follows_okta_cursors_and_sees_everyone_once() {
    let t = TestApp::spawn_with(|c| c.users.page_size = 7).await;
    let b = t.signed_in(AGENT).await;
    let mut seen: Vec<String> = Vec::new();
    let mut url = "/users".to_string();
    let mut pages = 0;
    loop {
        let page = b.get(&url).await;
        assert_eq!(page.status, 200, "{url}");
        seen.extend(rows(&page));
        pages += 1;
        let next = page
            .html()
            .select(&scraper::Selector::parse("#next-page").unwrap())
            .next()
            .and_then(|e| e.value().attr("href").map(str::to_string));
        match next {
            Some(n) => url = n,
            None => break,
        }
        assert!(pages < 20, "paging must end");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no user twice");
    // Listing everyone excludes deactivated users, as Okta's list does.
    let expected = t
        .sim()
        .store()
        .users
        .values()
        .filter(|u| u.status != SimStatus::Deprovisioned)
        .count();
    assert_eq!(seen.len(), expected);
    assert!(pages >= 3);
}

#[tokio::test]
async fn detail_page_shows_status_groups_and_the_allowed_actions() {
    let t = TestApp::spawn().await;
    let (id, login, first, last) = end_user(&t);
    let agent = t.signed_in(AGENT).await;
    let page = agent.get(&format!("/users/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.text("#user-name"), Some(format!("{first} {last}")));
    assert!(page.body.contains(&login));
    assert_eq!(page.text("#user-status").as_deref(), Some("Active"));
    assert!(page.text("#user-groups").unwrap().contains("Everyone"));
    let actions: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("[data-action]").unwrap())
        .filter_map(|e| e.value().attr("data-action").map(str::to_string))
        .collect();
    assert_eq!(
        actions,
        vec![
            "reset-password",
            "expire-password",
            "suspend",
            "deactivate",
            "clear-sessions"
        ]
    );
    // A deactivated user: the manager may delete, the agent may not.
    assert!(t.sim().set_user_status(&id, SimStatus::Deprovisioned));
    let gone = id.clone();
    let agent_view = agent.get(&format!("/users/{gone}")).await;
    assert_eq!(agent_view.count("[data-action=delete]"), 0);
    let manager = t.signed_in(MANAGER).await;
    let manager_view = manager.get(&format!("/users/{gone}")).await;
    assert_eq!(manager_view.count("[data-action=delete]"), 1);
    assert_eq!(manager_view.count("[data-action=activate]"), 1);
    // Unknown user: a 404 page.
    let missing = agent.get("/users/00uNoSuchUser0000000").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.text("#error-title").as_deref(),
        Some("User not found")
    );
}

#[tokio::test]
async fn viewer_cannot_reach_any_user_page() {
    let t = TestApp::spawn().await;
    let (id, ..) = end_user(&t);
    let b = t.signed_in(VIEWER).await;
    for path in [
        "/users".to_string(),
        "/users/new".to_string(),
        format!("/users/{id}"),
        format!("/users/{id}/suspend"),
    ] {
        assert_eq!(b.get(&path).await.status, 403, "{path}");
    }
}

/// What Okta does with each action from each status (OKTA-FACTS.md §6): the status after, or
/// the error code for a refused transition. `None` for delete from a non-deactivated user,
/// which the portal refuses without calling Okta.
fn expected(
    action: &str,
    from: SimStatus,
    has_password: bool,
) -> Result<Option<SimStatus>, &'static str> {
    use SimStatus::*;
    match (action, from) {
        ("activate", Staged | Deprovisioned) => {
            Ok(Some(if has_password { Active } else { Provisioned }))
        }
        ("activate", Active) => Err("E0000016"),
        ("activate", _) => Err("E0000038"),
        ("reactivate", Provisioned | Recovery) => Ok(Some(from)),
        ("reactivate", _) => Err("E0000038"),
        ("deactivate", Deprovisioned) => Err("E0000007"),
        ("deactivate", _) => Ok(Some(Deprovisioned)),
        ("suspend", Active) => Ok(Some(Suspended)),
        ("suspend", _) => Err("E0000001"),
        ("unsuspend", Suspended) => Ok(Some(Active)),
        ("unsuspend", _) => Err("E0000001"),
        ("unlock", LockedOut) => Ok(Some(Active)),
        ("unlock", _) => Err("E0000032"),
        ("reset-password", Active | PasswordExpired | LockedOut | Recovery) => Ok(Some(Recovery)),
        ("reset-password", _) => Err("E0000038"),
        ("expire-password", Active | PasswordExpired) => Ok(Some(PasswordExpired)),
        ("expire-password", _) => Err("E0000038"),
        ("delete", Deprovisioned) => Ok(None),
        ("delete", _) => Err("portal"),
        _ => unreachable!("{action}"),
    }
}

const ACTIONS: [&str; 9] = [
    "activate",
    "reactivate",
    "deactivate",
    "suspend",
    "unsuspend",
    "unlock",
    "reset-password",
    "expire-password",
    "delete",
];

#[tokio::test]
async fn every_lifecycle_action_from_every_status() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    let token = b.csrf_token().await;
    let (id, login, ..) = end_user(&t);
    for action in ACTIONS {
        for from in SimStatus::ALL {
            // Put the user into the starting state.
            let snapshot = {
                let mut store = t.sim().store();
                let user = store.users.get_mut(&id).expect("user still exists");
                user.status = from;
                user.clone()
            };
            let has_password = snapshot.has_password();
            let before_audit = t.audit().await.len();
            let lifecycle_calls = t
                .sim()
                .request_count("POST", &format!("/api/v1/users/{id}/lifecycle"));
            let page = b
                .post_form(
                    &format!("/users/{id}/{action}"),
                    &[
                        ("_csrf", &token),
                        ("reason", "Caller verified on the phone"),
                        ("ticket", "SUP-1234"),
                        ("send_email", "1"),
                    ],
                )
                .await;
            let now = t.sim().store().users.get(&id).map(|u| u.status);
            let audit = t.audit().await;
            assert_eq!(
                audit.len(),
                before_audit + 1,
                "{action} from {from:?}: exactly one audit record"
            );
            let row = audit.last().unwrap();
            assert_eq!(row.target_id.as_deref(), Some(id.as_str()));
            assert_eq!(row.target_login.as_deref(), Some(login.as_str()));
            assert_eq!(row.reason.as_deref(), Some("Caller verified on the phone"));
            assert_eq!(row.ticket.as_deref(), Some("SUP-1234"));
            assert_eq!(row.actor_login.as_deref(), Some(MANAGER));
            assert_eq!(row.status_before.as_deref(), Some(status_name(from)));
            match expected(action, from, has_password) {
                Ok(after) => {
                    assert_eq!(page.status, 303, "{action} from {from:?}: {}", page.body);
                    assert_eq!(row.outcome, "success", "{action} from {from:?}");
                    assert!(row.okta_request_id.is_some());
                    match after {
                        Some(after) => {
                            assert_eq!(now, Some(after), "{action} from {from:?}");
                            assert_eq!(row.status_after.as_deref(), Some(status_name(after)));
                        }
                        None => {
                            assert_eq!(now, None, "deleted for good");
                            assert_eq!(row.status_after.as_deref(), Some("DELETED"));
                            // Put the user back for the rest of the matrix.
                            t.sim().store().users.insert(id.clone(), snapshot);
                        }
                    }
                }
                Err(code) => {
                    assert!(
                        page.status.is_client_error(),
                        "{action} from {from:?}: {}",
                        page.status
                    );
                    assert_eq!(now, Some(from), "{action} from {from:?} changed nothing");
                    if code == "portal" {
                        assert_eq!(row.outcome, "denied");
                        assert!(
                            row.detail
                                .as_deref()
                                .unwrap()
                                .contains("Only deactivated users can be deleted")
                        );
                    } else {
                        // Okta would answer `code`; its `_links` do not offer the action
                        // for this status, so the portal refuses before calling it.
                        assert_eq!(row.outcome, "denied", "{action} from {from:?} ({code})");
                        assert_eq!(row.okta_error_code, None);
                        assert!(
                            row.detail
                                .as_deref()
                                .unwrap()
                                .contains("Okta does not offer"),
                            "{action} from {from:?}: {:?}",
                            row.detail
                        );
                        assert_eq!(
                            t.sim()
                                .request_count("POST", &format!("/api/v1/users/{id}/lifecycle")),
                            lifecycle_calls,
                            "{action} from {from:?}: nothing sent to Okta"
                        );
                        assert!(
                            page.text("#refusal").is_some(),
                            "{action} from {from:?} explains: {}",
                            page.body
                        );
                    }
                }
            }
        }
    }
}

fn status_name(s: SimStatus) -> &'static str {
    use SimStatus::*;
    match s {
        Staged => "STAGED",
        Provisioned => "PROVISIONED",
        Active => "ACTIVE",
        Recovery => "RECOVERY",
        LockedOut => "LOCKED_OUT",
        PasswordExpired => "PASSWORD_EXPIRED",
        Suspended => "SUSPENDED",
        Deprovisioned => "DEPROVISIONED",
    }
}

fn create_form<'a>(token: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("_csrf", token),
        ("first_name", "Grace"),
        ("last_name", "Hopper"),
        ("email", email),
        ("login", ""),
        ("mobile_phone", "+1 555 0100"),
        ("activation", "activate"),
        ("credential", "password"),
        ("password", "Correct-Horse-7-Battery"),
        ("reason", "New hire in the support team"),
        ("ticket", "HR-42"),
    ]
}

#[tokio::test]
async fn an_agent_creates_an_active_user_in_a_group() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let form_page = b.get("/users/new").await;
    assert_eq!(form_page.status, 200);
    let group_id = {
        let store = t.sim().store();
        store
            .groups
            .values()
            .find(|g| g.name == "Support Tier 1")
            .unwrap()
            .id
            .clone()
    };
    assert_eq!(
        form_page.count(&format!("input[name=groups][value=\"{group_id}\"]")),
        1,
        "allow-listed group offered"
    );
    assert_eq!(
        form_page.count("input[name=groups]"),
        3,
        "only the allow-listed groups"
    );
    let token = b.csrf_token().await;
    let mut form = create_form(&token, "grace.hopper@example.com");
    form.push(("groups", &group_id));
    let page = b.post_form("/users", &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let created = t
        .sim()
        .user("grace.hopper@example.com")
        .expect("created in Okta");
    assert_eq!(page.location(), format!("/users/{}", created.id));
    assert_eq!(created.status, SimStatus::Active);
    assert_eq!(
        created.login, "grace.hopper@example.com",
        "login defaults to the email"
    );
    assert_eq!(created.mobile_phone.as_deref(), Some("+1 555 0100"));
    assert!(created.group_ids.contains(&group_id));
    assert_eq!(t.sim().request_count("POST", "/api/v1/users"), 1);
    let detail = b.get(&page.location()).await;
    assert!(
        detail
            .text(".flash")
            .unwrap()
            .contains("Grace Hopper was created (active)")
    );
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(row.action, "user.create");
    assert_eq!(row.outcome, "success");
    assert_eq!(row.permission.as_deref(), Some("users.create"));
    assert_eq!(row.target_id.as_deref(), Some(created.id.as_str()));
    assert_eq!(
        row.target_login.as_deref(),
        Some("grace.hopper@example.com")
    );
    assert_eq!(row.target_name.as_deref(), Some("Grace Hopper"));
    assert_eq!(row.reason.as_deref(), Some("New hire in the support team"));
    assert_eq!(row.ticket.as_deref(), Some("HR-42"));
    assert_eq!(row.status_after.as_deref(), Some("ACTIVE"));
    assert!(row.okta_request_id.is_some());
    // The password is nowhere in the audit trail.
    let all = format!("{:?}", t.audit().await);
    assert!(!all.contains("Correct-Horse-7-Battery"));
}

#[tokio::test]
async fn staged_and_email_activation_create_the_right_status() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    for (email, activation, credential, expected) in [
        (
            "staged.user@example.com",
            "stage",
            "email",
            SimStatus::Staged,
        ),
        (
            "pending.user@example.com",
            "activate",
            "email",
            SimStatus::Provisioned,
        ),
    ] {
        let mut form = create_form(&token, email);
        form.retain(|(k, _)| !["activation", "credential", "password"].contains(k));
        form.push(("activation", activation));
        form.push(("credential", credential));
        let page = b.post_form("/users", &form).await;
        assert_eq!(page.status, 303, "{email}: {}", page.body);
        assert_eq!(t.sim().user(email).unwrap().status, expected, "{email}");
    }
}

#[tokio::test]
async fn create_validation_errors_re_render_with_what_was_typed() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let cases: Vec<(&str, &str, &str)> = vec![
        ("first_name", "", "Enter the first name."),
        ("last_name", "", "Enter the last name."),
        (
            "email",
            "not-an-email",
            "Enter an email address like name@example.com.",
        ),
        (
            "login",
            "no-at-sign",
            "A login looks like an email address, e.g. name@example.com.",
        ),
        (
            "mobile_phone",
            "call me maybe",
            "Enter a phone number such as +1 555 0100.",
        ),
        (
            "password",
            "short",
            "Enter a password of at least 8 characters.",
        ),
        (
            "reason",
            "",
            "Give a reason: it is kept in the audit trail.",
        ),
        (
            "reason",
            "because",
            "Give a reason of at least 10 characters (you wrote 7).",
        ),
        ("ticket", "sup 12", "A ticket reference looks like SUP-1234"),
        (
            "first_name",
            "Grace 😀",
            "Okta does not accept characters such as emoji here.",
        ),
    ];
    for (field, value, message) in cases {
        let mut form = create_form(&token, "valid.user@example.com");
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let page = b.post_form("/users", &form).await;
        assert_eq!(page.status, 422, "{field}={value:?}");
        let error_id = format!("#{field}-error");
        let shown = page
            .text(&error_id)
            .unwrap_or_else(|| panic!("{field}: no error shown: {}", page.body));
        assert!(shown.starts_with(message), "{field}: {shown}");
        // What was typed is kept, the password is not.
        if field != "email" {
            assert_eq!(
                page.html()
                    .select(&scraper::Selector::parse("input#email").unwrap())
                    .next()
                    .unwrap()
                    .value()
                    .attr("value"),
                Some("valid.user@example.com")
            );
        }
        assert!(
            !page.body.contains("Correct-Horse-7-Battery"),
            "password never echoed"
        );
    }
    assert_eq!(
        t.sim().request_count("POST", "/api/v1/users"),
        0,
        "nothing invalid reached Okta"
    );
    assert!(t.sim().user("valid.user@example.com").is_none());
}

#[tokio::test]
async fn duplicate_login_shows_oktas_cause_on_the_login_field() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let mut form = create_form(&token, "someone.else@example.com");
    form.retain(|(k, _)| *k != "login");
    form.push(("login", "Manager@Example.com"));
    let page = b.post_form("/users", &form).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(
        page.text("#login-error").as_deref(),
        Some("An object with this field already exists in the current organization")
    );
    assert_eq!(t.sim().request_count("POST", "/api/v1/users"), 1);
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.create", "failure")
    );
    assert_eq!(row.okta_error_code.as_deref(), Some("E0000001"));
    assert_eq!(row.target_login.as_deref(), Some("Manager@Example.com"));
}

#[tokio::test]
async fn protected_users_and_the_agents_own_account_are_refused() {
    let t = TestApp::spawn().await;
    let executive = {
        let mut store = t.sim().store();
        let exec_group = store
            .groups
            .values()
            .find(|g| g.name == "Executives")
            .unwrap()
            .id
            .clone();
        let id = store
            .users
            .values()
            .find(|u| u.status == SimStatus::Active && !is_demo(&u.login))
            .unwrap()
            .id
            .clone();
        store.users.get_mut(&id).unwrap().group_ids.push(exec_group);
        id
    };
    let b = t.signed_in(MANAGER).await;
    let token = b.csrf_token().await;
    let detail = b.get(&format!("/users/{executive}")).await;
    assert!(
        detail
            .text("#refusal")
            .unwrap()
            .contains("protected (member of Executives)")
    );
    assert_eq!(detail.count("[data-action]"), 0);
    let page = b
        .post_form(
            &format!("/users/{executive}/suspend"),
            &[("_csrf", &token), ("reason", "Trying to suspend the CEO")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.text("#refusal").unwrap().contains("users.protected"));
    assert_eq!(
        t.sim().user(&executive).unwrap().status,
        SimStatus::Active,
        "nothing changed"
    );
    assert_eq!(
        t.sim()
            .request_count("POST", &format!("/api/v1/users/{executive}/lifecycle")),
        0
    );
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("user.suspend", "denied")
    );
    // The manager's own account.
    let me = t.sim().user(MANAGER).unwrap().id;
    let own = b.get(&format!("/users/{me}")).await;
    assert!(own.text("#refusal").unwrap().contains("your own account"));
    let page = b
        .post_form(
            &format!("/users/{me}/deactivate"),
            &[("_csrf", &token), ("reason", "Deactivating myself today")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(t.sim().user(MANAGER).unwrap().status, SimStatus::Active);
}

#[tokio::test]
async fn an_action_needs_a_reason_and_a_csrf_token() {
    let t = TestApp::spawn().await;
    let (id, ..) = end_user(&t);
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let confirm = b.get(&format!("/users/{id}/suspend")).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm
            .text("#consequence")
            .unwrap()
            .contains("Blocks sign-in until unsuspended")
    );
    assert!(
        confirm
            .text("#confirm-title")
            .unwrap()
            .starts_with("Suspend ")
    );
    let page = b
        .post_form(
            &format!("/users/{id}/suspend"),
            &[("_csrf", &token), ("reason", "")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert_eq!(
        page.text("#reason-error").as_deref(),
        Some("Give a reason: it is kept in the audit trail.")
    );
    let page = b
        .post_form(
            &format!("/users/{id}/suspend"),
            &[("reason", "Caller asked for a suspension")],
        )
        .await;
    assert_eq!(page.status, 403, "no CSRF token");
    assert_eq!(t.sim().user(&id).unwrap().status, SimStatus::Active);
    assert_eq!(t.sim().request_count("POST", "/api/v1/users/"), 0);
    let page = b
        .post_form(
            &format!("/users/{id}/suspend"),
            &[
                ("_csrf", &token),
                ("reason", "Caller asked for a suspension"),
                ("ticket", "SUP-77"),
            ],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(t.sim().user(&id).unwrap().status, SimStatus::Suspended);
    // The agent's detail page lists the action.
    let detail = b.get(&format!("/users/{id}")).await;
    assert!(detail.text(".flash").unwrap().contains("was suspended"));
    assert!(
        detail
            .text("#user-history")
            .unwrap()
            .contains("Caller asked for a suspension")
    );
}

#[tokio::test]
async fn a_one_time_reset_link_is_shown_once_and_never_stored() {
    let t = TestApp::spawn().await;
    let (id, ..) = end_user(&t);
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let page = b
        .post_form(
            &format!("/users/{id}/reset-password"),
            &[("_csrf", &token), ("reason", "Caller forgot the password")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let link = page
        .html()
        .select(&scraper::Selector::parse("#one-time-link").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_string))
        .expect("the link is shown");
    assert!(
        link.contains("/reset-password/") || link.contains("reset"),
        "{link}"
    );
    assert_eq!(t.sim().user(&id).unwrap().status, SimStatus::Recovery);
    let audit = format!("{:?}", t.audit().await);
    assert!(!audit.contains(&link), "not in the audit trail");
    let again = b.get(&format!("/users/{id}")).await;
    assert!(!again.body.contains(&link), "not shown again");
}

#[tokio::test]
async fn agents_cannot_take_over_portal_accounts() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let manager = t.sim().user(MANAGER).unwrap().id;
    let page = b.get(&format!("/users/{manager}")).await;
    assert!(
        page.text("#refusal")
            .unwrap()
            .contains("protected (member of Portal-Managers"),
        "{}",
        page.body
    );
    assert_eq!(page.count("[data-action]"), 0);
    assert_eq!(page.count("#enroll-factor"), 0);
    let reset = b
        .post_form(
            &format!("/users/{manager}/reset-password"),
            &[("_csrf", &token), ("reason", "Give me the manager's link")],
        )
        .await;
    assert_eq!(reset.status, 403);
    assert_eq!(t.sim().user(MANAGER).unwrap().status, SimStatus::Active);
    let enroll = b
        .post_form(
            &format!("/users/{manager}/factors"),
            &[
                ("_csrf", &token),
                ("kind", "sms"),
                ("phone", "+1 555 555 0000"),
                ("reason", "Adding my own phone"),
            ],
        )
        .await;
    assert_eq!(enroll.status, 403);
    assert!(t.sim().factors(&manager).is_empty());
    // Activating a factor on a protected account is refused and recorded too.
    let activate = b
        .post_form(
            &format!("/users/{manager}/factors/smsAnything000000000/activate"),
            &[
                ("_csrf", &token),
                ("passcode", "123456"),
                ("reason", "Activating the factor"),
            ],
        )
        .await;
    assert_eq!(activate.status, 403);
    assert_eq!(
        activate.text("#error-title").as_deref(),
        Some("Not allowed")
    );
    let row = t.audit().await.into_iter().last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("factors.activate", "denied")
    );
}
