//! Activity pages, exports and the tamper-evident trail, on SQLite and PostgreSQL.

use std::collections::BTreeSet;

use admin_portal::audit::{Action, Actor, AuditStore, NewEvent, Outcome, RequestMeta, Target};
use admin_portal::db::Database;

use crate::helpers::*;

fn ids(page: &Page) -> Vec<i64> {
    page.html()
        .select(&scraper::Selector::parse("#activity-table tr[data-id]").unwrap())
        .filter_map(|e| e.value().attr("data-id").and_then(|v| v.parse().ok()))
        .collect()
}

fn event(
    i: usize,
    agent: &str,
    action: Action,
    outcome: Outcome,
    target: &str,
    ticket: Option<&str>,
) -> NewEvent {
    NewEvent::new(
        action,
        outcome,
        Actor {
            sub: Some(format!("00u{agent}")),
            login: Some(format!("{agent}@example.com")),
            name: Some(format!("Agent {agent}")),
            client_id: None,
        },
        RequestMeta {
            request_id: format!("req-{i}"),
            client_ip: Some("127.0.0.1".into()),
            user_agent: Some("test".into()),
        },
    )
    .target(Target {
        id: Some(format!("00u{target}")),
        login: Some(format!("{target}@example.com")),
        name: Some(format!("Target {target}")),
    })
    .why(
        Some("Because the test says so".into()),
        ticket.map(str::to_string),
    )
}

async fn seed(store: &AuditStore) {
    for i in 0..30 {
        let (agent, action, outcome, ticket) = match i % 5 {
            0 => (
                "alice",
                Action::UserSuspend,
                Outcome::Success,
                Some("SUP-1"),
            ),
            1 => ("bob", Action::UserUnlock, Outcome::Success, None),
            2 => ("alice", Action::UserDeactivate, Outcome::Failure, None),
            3 => (
                "carol",
                Action::UserResetPassword,
                Outcome::Success,
                Some("SUP-2"),
            ),
            _ => ("bob", Action::AccessDenied, Outcome::Denied, None),
        };
        let target = if i % 2 == 0 { "ada" } else { "grace" };
        store
            .record(event(i, agent, action, outcome, target, ticket))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_filter_selects_exactly_the_matching_records() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    let store = &t.app.state.audit;
    seed(store).await;
    let all = t.audit().await;
    let expect = |pred: &dyn Fn(&admin_portal::audit::AuditRecord) -> bool| -> Vec<i64> {
        let mut v: Vec<i64> = all.iter().filter(|r| pred(r)).map(|r| r.id).collect();
        v.reverse();
        v
    };
    let today = time::OffsetDateTime::now_utc().date();
    let tomorrow = today.next_day().unwrap();
    let cases: Vec<(String, Vec<i64>)> = vec![
        (
            "agent=alice@example.com".into(),
            expect(&|r| r.actor_login.as_deref() == Some("alice@example.com")),
        ),
        (
            "agent=00ubob".into(),
            expect(&|r| r.actor_sub.as_deref() == Some("00ubob")),
        ),
        (
            "target=grace@example.com".into(),
            expect(&|r| r.target_login.as_deref() == Some("grace@example.com")),
        ),
        (
            "target=00uada".into(),
            expect(&|r| r.target_id.as_deref() == Some("00uada")),
        ),
        (
            "target=Target+Gr".into(),
            expect(&|r| r.target_name.as_deref() == Some("Target grace")),
        ),
        (
            "action=user.unlock".into(),
            expect(&|r| r.action == "user.unlock"),
        ),
        (
            "outcome=failure".into(),
            expect(&|r| r.outcome == "failure"),
        ),
        (
            "ticket=SUP-2".into(),
            expect(&|r| r.ticket.as_deref() == Some("SUP-2")),
        ),
        ("client=session".into(), expect(&|r| r.client_id.is_none())),
        (format!("from={today}&to={today}"), expect(&|_| true)),
        (format!("from={tomorrow}"), vec![]),
        (
            "agent=alice@example.com&outcome=success&ticket=SUP-1".into(),
            expect(&|r| {
                r.actor_login.as_deref() == Some("alice@example.com")
                    && r.outcome == "success"
                    && r.ticket.as_deref() == Some("SUP-1")
            }),
        ),
    ];
    for (query, expected) in cases {
        let page = b.get(&format!("/activity?{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        assert_eq!(ids(&page), expected, "{query}");
        // Filters stay in the form (and so in the URL).
        if let Some(value) = query
            .split('&')
            .next()
            .and_then(|p| p.split_once('='))
            .map(|(_, v)| v.replace('+', " "))
        {
            assert!(
                page.body.contains(&value),
                "{query}: the form keeps the filter"
            );
        }
    }
    let bad = b.get("/activity?from=yesterday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("must be a date like"));
}

#[tokio::test]
async fn keyset_pages_stay_stable_while_new_records_arrive() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    t.app.state.audit.seed_bench(120).await.unwrap();
    let before: BTreeSet<i64> = t.audit().await.iter().map(|r| r.id).collect();
    let first = b.get("/activity").await;
    let mut seen = ids(&first);
    assert_eq!(seen.len(), 50);
    let mut next = first
        .html()
        .select(&scraper::Selector::parse("#older-page").unwrap())
        .next()
        .and_then(|e| e.value().attr("href").map(str::to_string));
    // New records arrive between pages: they must not shift what the next pages show.
    seed(&t.app.state.audit).await;
    while let Some(url) = next {
        let page = b.get(&url).await;
        let page_ids = ids(&page);
        assert!(
            page_ids.iter().all(|id| id < seen.last().unwrap()),
            "older pages only hold older records"
        );
        seen.extend(page_ids);
        next = page
            .html()
            .select(&scraper::Selector::parse("#older-page").unwrap())
            .next()
            .and_then(|e| e.value().attr("href").map(str::to_string));
    }
    let seen_set: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen_set.len(), seen.len(), "no record twice");
    assert_eq!(
        seen_set, before,
        "every record present when the first page was read, no gaps"
    );
    // The htmx variant of a page is a fragment.
    let fragment = b
        .client
        .get(t.url("/activity"))
        .header("hx-request", "true")
        .header("hx-target", "records")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!fragment.contains("<html") && fragment.contains("activity-table"));
}

fn older_link(page: &Page) -> Option<String> {
    page.html()
        .select(&scraper::Selector::parse("#older-page").unwrap())
        .next()
        .and_then(|e| e.value().attr("href").map(str::to_string))
}

/// The agent filter (merged from its subject and login indexes) and the date filter (walked
/// in time order) page through exactly the matching records, newest first, none twice.
#[tokio::test]
async fn agent_and_date_filters_page_through_every_match_once() {
    let t = TestApp::spawn().await;
    let store = &t.app.state.audit;
    store.seed_bench(300).await.unwrap();
    for i in 0..130 {
        let action = [Action::UserUnlock, Action::UserSuspend][i % 2];
        store
            .record(event(i, "alice", action, Outcome::Success, "ada", None))
            .await
            .unwrap();
    }
    // Signed in last, so that record ids follow time here (a date-bounded page is in time
    // order, the others in id order).
    let b = t.signed_in(MANAGER).await;
    let all = t.audit().await;
    let today = time::OffsetDateTime::now_utc().date();
    let from = today - time::Duration::days(30);
    let cases: Vec<(String, BTreeSet<i64>)> = vec![
        (
            "agent=ALICE@example.com".into(),
            all.iter()
                .filter(|r| r.actor_login.as_deref() == Some("alice@example.com"))
                .map(|r| r.id)
                .collect(),
        ),
        (
            "agent=00ualice&action=user.unlock".into(),
            all.iter()
                .filter(|r| r.actor_sub.as_deref() == Some("00ualice") && r.action == "user.unlock")
                .map(|r| r.id)
                .collect(),
        ),
        (
            format!("from={from}&to={today}"),
            all.iter()
                .filter(|r| r.occurred_at.as_str() >= from.to_string().as_str())
                .map(|r| r.id)
                .collect(),
        ),
    ];
    for (query, expected) in cases {
        assert!(expected.len() > 50, "{query}: more than one page");
        let mut next = Some(format!("/activity?{query}"));
        let mut seen: Vec<i64> = Vec::new();
        while let Some(url) = next {
            let page = b.get(&url).await;
            assert_eq!(page.status, 200, "{url}");
            seen.extend(ids(&page));
            next = older_link(&page);
        }
        assert!(
            seen.windows(2).all(|w| w[0] > w[1]),
            "{query}: newest first, none twice"
        );
        assert_eq!(
            seen.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{query}"
        );
    }
}

#[tokio::test]
async fn exports_hold_exactly_the_filtered_records_and_are_audited() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    seed(&t.app.state.audit).await;
    let listed = ids(&b.get("/activity?agent=alice@example.com").await);
    assert!(!listed.is_empty());
    let csv = b.get("/activity/export.csv?agent=alice@example.com").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(csv.header("content-disposition").contains("activity.csv"));
    let mut lines = csv.body.split("\r\n").filter(|l| !l.is_empty());
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("id,occurred_at,request_id,action,outcome")
    );
    let csv_ids: Vec<i64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(csv_ids, listed);
    let jsonl = b
        .get("/activity/export.jsonl?agent=alice@example.com")
        .await;
    assert_eq!(jsonl.header("content-type"), "application/x-ndjson");
    let json_ids: Vec<i64> = jsonl
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(json_ids, listed);
    let exports: Vec<_> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "audit.export")
        .collect();
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[0].actor_login.as_deref(), Some(MANAGER));
    assert!(
        exports[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("agent=alice%40example.com")
    );
}

#[tokio::test]
async fn a_large_export_streams_every_row() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    t.app.state.audit.seed_bench(5000).await.unwrap();
    let csv = b.get("/activity/export.csv").await;
    let rows = csv.body.split("\r\n").filter(|l| !l.is_empty()).count() - 1;
    // 5000 seeded, the manager's sign-in, and the export's own record (written first).
    assert_eq!(rows, 5002);
    assert!(t.app.state.audit.verify().await.unwrap().intact());
}

#[tokio::test]
async fn charts_and_the_agent_timeline_are_rendered_on_the_server() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    seed(&t.app.state.audit).await;
    let list = b.get("/activity").await;
    assert_eq!(
        list.count("#charts[hx-get=\"/activity/charts\"]"),
        1,
        "the list loads its charts after itself"
    );
    assert_eq!(
        list.count("a#charts-link"),
        1,
        "and links to them without JavaScript"
    );
    let fragment = b.get_htmx("/activity/charts").await;
    assert!(!fragment.body.contains("<html") && fragment.body.contains("chart-daily"));
    let page = b.get("/activity/charts").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.count("svg#chart-daily rect"),
        1 + 5,
        "the sign-in plus five seeded actions, stacked on today"
    );
    assert!(
        page.count("svg#chart-daily circle.problem") >= 1,
        "failures and denials are marked"
    );
    assert!(
        page.text("#chart-agents").unwrap().contains("Agent alice"),
        "top agents by destructive actions"
    );
    let timeline = b.get("/activity/agents/00ualice").await;
    assert_eq!(timeline.status, 200);
    assert_eq!(
        timeline.text("#agent-title").as_deref(),
        Some("Agent alice")
    );
    let chips = timeline.text("#agent-days").unwrap();
    assert!(
        chips.contains("user.suspend × 6") && chips.contains("user.deactivate × 6"),
        "{chips}"
    );
}

#[tokio::test]
async fn agents_and_viewers_cannot_see_or_export_activity() {
    let t = TestApp::spawn().await;
    for login in [AGENT, VIEWER] {
        let b = t.signed_in(login).await;
        for path in [
            "/activity",
            "/activity?agent=x",
            "/activity/agents/00uX",
            "/activity/export.csv",
            "/activity/export.jsonl",
            "/activity/integrity",
            "/activity/charts",
        ] {
            assert_eq!(b.get(path).await.status, 403, "{login} {path}");
        }
    }
}

/// Runs SQL as a database administrator would (triggers off), to tamper with the trail.
async fn tamper(db: &Database, sql: &str) {
    match db {
        Database::Sqlite(pool) => {
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_update")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_delete")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            sqlx::query("ALTER TABLE audit_events ENABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }
}

async fn broken_at(t: &TestApp) -> Option<(i64, String)> {
    t.app
        .state
        .audit
        .verify()
        .await
        .unwrap()
        .broken
        .map(|b| (b.id, b.reason))
}

#[tokio::test]
async fn verification_detects_a_changed_row() {
    let t = TestApp::spawn().await;
    seed(&t.app.state.audit).await;
    assert_eq!(broken_at(&t).await, None);
    let target = t.audit().await[10].id;
    tamper(
        &t.app.state.db,
        &format!("UPDATE audit_events SET reason = 'nothing happened' WHERE id = {target}"),
    )
    .await;
    let (id, reason) = broken_at(&t).await.expect("detected");
    assert_eq!(id, target);
    assert!(reason.contains("content was changed"), "{reason}");
    let b = t.signed_in(MANAGER).await;
    let page = b.get("/activity/integrity").await;
    assert_eq!(page.status, 409);
    assert_eq!(page.text("#broken-id"), Some(target.to_string()));
}

#[tokio::test]
async fn verification_detects_a_deleted_row_in_the_middle_and_at_the_end() {
    let t = TestApp::spawn().await;
    seed(&t.app.state.audit).await;
    let rows = t.audit().await;
    let middle = rows[12].id;
    tamper(
        &t.app.state.db,
        &format!("DELETE FROM audit_events WHERE id = {middle}"),
    )
    .await;
    let (id, reason) = broken_at(&t).await.expect("detected");
    assert_eq!(id, rows[13].id, "the record after the gap");
    assert!(reason.contains("removed or changed"), "{reason}");

    let t = TestApp::spawn().await;
    seed(&t.app.state.audit).await;
    let last = t.audit().await.last().unwrap().id;
    tamper(
        &t.app.state.db,
        &format!("DELETE FROM audit_events WHERE id = {last}"),
    )
    .await;
    let (_, reason) = broken_at(&t).await.expect("a missing tail is detected");
    assert!(reason.contains("newest records were removed"), "{reason}");
}

#[tokio::test]
async fn verification_detects_reordered_rows() {
    let t = TestApp::spawn().await;
    seed(&t.app.state.audit).await;
    let rows = t.audit().await;
    let (a, b) = (rows[5].id, rows[6].id);
    // Swap the two records' ids (their content moves with them).
    tamper(
        &t.app.state.db,
        &format!("UPDATE audit_events SET id = -1 WHERE id = {a}"),
    )
    .await;
    tamper(
        &t.app.state.db,
        &format!("UPDATE audit_events SET id = {a} WHERE id = {b}"),
    )
    .await;
    tamper(
        &t.app.state.db,
        &format!("UPDATE audit_events SET id = {b} WHERE id = -1"),
    )
    .await;
    let (id, _) = broken_at(&t).await.expect("detected");
    assert_eq!(id, a);
}

#[tokio::test]
async fn prune_keeps_the_chain_verifiable() {
    let t = TestApp::spawn().await;
    t.app.state.audit.seed_bench(300).await.unwrap();
    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap();
    let cutoff = time::OffsetDateTime::now_utc().date() - time::Duration::days(45);
    let removed = t.app.state.audit.prune(&cutoff.to_string()).await.unwrap();
    assert!(
        removed > 100 && removed < 200,
        "about half of 90 days: {removed}"
    );
    let v = t.app.state.audit.verify().await.unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.pruned, removed);
    assert_eq!(v.checked as i64, 300 - removed);
    // New records keep extending the chain after a prune.
    seed(&t.app.state.audit).await;
    assert!(t.app.state.audit.verify().await.unwrap().intact());
    // Still no deleting outside a prune.
    let refused = match &t.app.state.db {
        Database::Sqlite(pool) => sqlx::query("DELETE FROM audit_events")
            .execute(pool)
            .await
            .is_err(),
        Database::Postgres(pool) => sqlx::query("DELETE FROM audit_events")
            .execute(pool)
            .await
            .is_err(),
    };
    assert!(refused);
    let _ = tomorrow;
}

#[tokio::test]
async fn concurrent_writers_keep_one_chain() {
    let t = TestApp::spawn().await;
    let store = t.app.state.audit.clone();
    write_concurrently(std::slice::from_ref(&store), 40).await;
    let v = store.verify().await.unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.checked, 40);
}

/// Appends `count` records at once, spread over the given stores (instances).
async fn write_concurrently(stores: &[AuditStore], count: usize) {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move {
                store
                    .record(event(
                        i,
                        "dave",
                        Action::UserUnlock,
                        Outcome::Success,
                        "ada",
                        None,
                    ))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn the_cli_verifies_the_trail() {
    let t = TestApp::spawn().await;
    seed(&t.app.state.audit).await;
    let url = t.app.state.config.database.url.clone();
    let run = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_admin-portal"))
            .args(["audit", "verify", "--database", url])
            .output()
            .unwrap()
    };
    let ok = run(&url);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact: 30 records"));
    let target = t.audit().await[3].id;
    tamper(
        &t.app.state.db,
        &format!("UPDATE audit_events SET reason = 'edited' WHERE id = {target}"),
    )
    .await;
    let broken = run(&url);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&broken.stdout).contains(&format!("BROKEN at record {target}"))
    );
}

#[tokio::test]
async fn the_user_page_shows_portal_records_beside_oktas_system_log() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = {
        let store = t.sim().store();
        store
            .users
            .values()
            .find(|u| u.status == okta_sim::UserStatus::LockedOut && u.login.contains('.'))
            .map(|u| u.id.clone())
    }
    .unwrap_or_else(|| {
        let store = t.sim().store();
        store
            .users
            .values()
            .find(|u| u.login.contains('.'))
            .unwrap()
            .id
            .clone()
    });
    assert!(
        t.sim()
            .set_user_status(&id, okta_sim::UserStatus::LockedOut)
    );
    let done = b
        .post_form(
            &format!("/users/{id}/unlock"),
            &[
                ("_csrf", &token),
                ("reason", "Caller locked out after travel"),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    let page = b.get(&format!("/users/{id}")).await;
    let okta_request = t
        .audit()
        .await
        .into_iter()
        .last()
        .unwrap()
        .okta_request_id
        .unwrap();
    assert_eq!(
        page.count(&format!(
            "#user-history tr[data-okta-request=\"{okta_request}\"] .correlated"
        )),
        1,
        "the portal record is marked as seen in Okta's log"
    );
    let row = page
        .html()
        .select(
            &scraper::Selector::parse(&format!("#okta-log tr[data-request=\"{okta_request}\"]"))
                .unwrap(),
        )
        .next()
        .map(|e| e.text().collect::<String>())
        .expect("the Okta event of that request");
    assert!(row.contains("user.account.unlock_by_admin"), "{row}");
    assert!(row.contains("user.unlock by Alex Agent"), "{row}");
}

#[tokio::test]
async fn when_the_audit_write_fails_the_response_says_so() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let token = b.csrf_token().await;
    let id = t.plain_active_user();
    // The audit store starts refusing writes (a full disk, a broken connection...).
    match &t.app.state.db {
        Database::Sqlite(pool) => {
            sqlx::query("CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit store down'); END")
                .execute(pool)
                .await
                .unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::query("CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit store down'; END; $$ LANGUAGE plpgsql")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("CREATE TRIGGER audit_down BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_down()")
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let done = b
        .post_form(
            &format!("/users/{id}/suspend"),
            &[
                ("_csrf", &token),
                ("reason", "Suspending while audit is down"),
            ],
        )
        .await;
    assert_eq!(
        done.status, 303,
        "Okta already changed the user: {}",
        done.body
    );
    assert_eq!(
        t.sim().user(&id).unwrap().status,
        okta_sim::UserStatus::Suspended
    );
    let page = b.get(&done.location()).await;
    let flash = page.text(".flash").unwrap();
    assert!(
        flash.contains("could not be written to the audit trail"),
        "{flash}"
    );
    assert!(
        flash.contains(&done.header("x-request-id")),
        "the request id to report: {flash}"
    );
    // A refused action that cannot be audited fails visibly instead of passing silently.
    let refused = b
        .post_form(
            &format!("/users/{id}/suspend"),
            &[("_csrf", &token), ("reason", "Suspending twice while down")],
        )
        .await;
    assert_eq!(refused.status, 500);
    assert!(
        refused
            .text("#error-message")
            .unwrap()
            .contains("Nothing was changed")
    );
}

#[tokio::test]
async fn absurd_dates_are_refused_not_crashed_on() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    for query in ["to=-9999-01-05", "from=0001-01-01", "to=99999-01-01"] {
        let charts = b.get(&format!("/activity/charts?{query}")).await;
        assert_eq!(charts.status, 400, "{query}");
        let list = b.get(&format!("/activity?{query}")).await;
        assert_eq!(list.status, 422, "{query}");
    }
}

#[tokio::test]
async fn two_instances_sharing_the_database_keep_one_chain() {
    let t = TestApp::spawn().await;
    // A second portal instance: its own pool on the same database.
    let other = AuditStore::new(
        Database::connect(&admin_portal::config::DatabaseConfig {
            url: t.app.state.config.database.url.clone(),
            max_connections: 4,
        })
        .await
        .unwrap(),
    );
    write_concurrently(&[t.app.state.audit.clone(), other.clone()], 60).await;
    let v = other.verify().await.unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.checked, 60);
}

#[tokio::test]
async fn the_daily_rollup_matches_a_scan_of_the_trail() {
    let t = TestApp::spawn().await;
    let store = &t.app.state.audit;
    store.seed_bench(400).await.unwrap();
    seed(store).await;
    let today = time::OffsetDateTime::now_utc().date();
    for (from, action, outcome) in [
        (today - time::Duration::days(120), None, None),
        (today - time::Duration::days(30), Some("user.suspend"), None),
        (today - time::Duration::days(60), None, Some("failure")),
    ] {
        let filter = admin_portal::audit::ActivityFilter {
            from: Some(from.to_string()),
            to: Some(today.to_string()),
            action: action.map(str::to_string),
            outcome: outcome.map(str::to_string),
            ..Default::default()
        };
        let rolled = store.day_counts(&filter).await.unwrap();
        let scanned = store.day_counts_scanning(&filter).await.unwrap();
        assert!(!rolled.is_empty());
        assert_eq!(rolled, scanned, "{filter:?}");
    }
    // The agent's timeline: by subject or login, with or without dates.
    for (agent, from) in [
        ("00uSeedAgent00000007", None),
        ("Agent7@Example.com", None),
        ("00ualice", Some(today - time::Duration::days(3))),
    ] {
        let filter = admin_portal::audit::ActivityFilter {
            agent: Some(agent.to_string()),
            from: from.map(|d| d.to_string()),
            ..Default::default()
        };
        let rolled = store.day_counts(&filter).await.unwrap();
        assert!(!rolled.is_empty(), "{agent}");
        assert_eq!(
            rolled,
            store.day_counts_scanning(&filter).await.unwrap(),
            "{agent}"
        );
    }
    // Pruning removes the rolled-up days it removes from the trail.
    let cutoff = today - time::Duration::days(45);
    store.prune(&cutoff.to_string()).await.unwrap();
    let filter = admin_portal::audit::ActivityFilter {
        from: Some((today - time::Duration::days(120)).to_string()),
        to: Some(today.to_string()),
        ..Default::default()
    };
    let rolled = store.day_counts(&filter).await.unwrap();
    let first_kept = rolled.first().unwrap().day.clone();
    assert!(first_kept >= cutoff.to_string(), "{first_kept}");
}
