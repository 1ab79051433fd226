//! Okta's rate limit as the portal's budget: a storm of searches at three times a bucket's
//! limit never makes Okta answer 429, everyone gets results or the plain busy message, and a
//! write sent in the middle of the storm goes through.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use okta_sim::UserStatus;
use reqwest::Method;

use crate::api::{SUPPORT, SUPPORT_SCOPES, call, token};
use crate::helpers::*;

/// The simulator's limit on `GET /api/v1/users` (searches) in this test.
const LIMIT: usize = 60;

/// A search page: 200 with results, or 429 with the busy message and the request id.
pub fn check_page(page: &Page) -> bool {
    match page.status.as_u16() {
        200 => true,
        429 => {
            let message = page.text("#search-error").unwrap_or_default();
            assert!(message.contains("Okta is busy — try again in"), "{message}");
            assert!(message.contains("Request id"), "{message}");
            false
        }
        other => panic!("search answered {other}: {}", page.body),
    }
}

/// An unlock sent 100 ms into a storm; the page and how long it took.
pub async fn unlock_mid_storm(agent: &Browser, csrf: &str, locked: &str) -> (Page, Duration) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let form = [
        ("_csrf", csrf),
        ("reason", "Caller locked out during a search storm"),
        ("ticket", "SUP-12"),
    ];
    let page = agent
        .post_form(&format!("/users/{locked}/unlock"), &form)
        .await;
    (page, started.elapsed())
}

#[tokio::test]
async fn a_search_storm_at_three_times_the_limit_gets_no_okta_429_and_an_unlock_goes_through() {
    let t = TestApp::spawn_with(|c| c.okta.budget.read_wait_ms = 200).await;
    t.sim().set_rate_limit("GET /api/v1/users", LIMIT as u32);
    let agents = [t.signed_in(AGENT).await, t.signed_in(MANAGER).await];
    let service = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let locked = t.plain_active_user();
    t.sim().set_user_status(&locked, UserStatus::LockedOut);
    let csrf = agents[0].csrf_token().await;

    let searches = futures_util::stream::iter(0..3 * LIMIT)
        .map(|i| {
            let (t, agents, service) = (&t, &agents, &service);
            async move {
                if i % 3 == 2 {
                    let path = format!("/api/v1/users?q=storm{i}");
                    let a = call(t, Method::GET, &path, Some(service), None, &[]).await;
                    match a.status.as_u16() {
                        200 => true,
                        429 => {
                            assert_eq!(a.code(), "okta_busy", "{:?}", a.body);
                            assert!(a.header("retry-after").parse::<u64>().unwrap() >= 1);
                            false
                        }
                        other => panic!("API search answered {other}: {:?}", a.body),
                    }
                } else {
                    check_page(&agents[i % 3].get(&format!("/users?q=storm{i}")).await)
                }
            }
        })
        .buffer_unordered(12);
    let unlock = unlock_mid_storm(&agents[0], &csrf, &locked);
    let (results, (unlocked, took)) = tokio::join!(searches.collect::<Vec<bool>>(), unlock);

    assert_eq!(t.sim().rate_limited_answers(), 0, "Okta never answered 429");
    let served = results.iter().filter(|ok| **ok).count();
    assert!(
        served >= 1 && served < results.len(),
        "{served} of {} served",
        results.len()
    );
    assert!(
        served <= LIMIT / 2,
        "the portal kept to its half of the bucket: {served}"
    );
    assert!(
        unlocked.status.is_redirection() || unlocked.status == 200,
        "{}",
        unlocked.body
    );
    assert_eq!(t.sim().user(&locked).unwrap().status, UserStatus::Active);
    assert!(took < Duration::from_secs(2), "the unlock took {took:?}");
}

/// The reads an unlock's guards make (the user, its groups) are part of the change: a storm of
/// user-page reads that spends the read budget of those buckets does not stop the unlock.
#[tokio::test]
async fn an_unlock_goes_through_while_user_pages_spend_the_reads_of_its_buckets() {
    let t = TestApp::spawn_with(|c| {
        c.okta.budget.read_wait_ms = 100;
        c.session.agent_requests_per_minute = 0;
    })
    .await;
    let users = plain_active_users(t.sim());
    let locked = users[0].clone();
    for path in [
        format!("/api/v1/users/{locked}"),
        format!("/api/v1/users/{locked}/groups"),
    ] {
        let bucket = okta_sim::SimState::rate_limit_bucket("GET", &path);
        t.sim().set_rate_limit(&bucket, LIMIT as u32);
    }
    let agents = [t.signed_in(AGENT).await, t.signed_in(MANAGER).await];
    t.sim().set_user_status(&locked, UserStatus::LockedOut);
    let csrf = agents[0].csrf_token().await;
    // Other agents' user pages until the portal's reads of those buckets are spent.
    let mut busy = false;
    for i in 0..3 * LIMIT {
        let page = agents[i % 2]
            .get(&format!("/users/{}", users[1 + i % 5]))
            .await;
        if page.status == 429 {
            busy = true;
            break;
        }
    }
    assert!(busy, "the user pages spent the read budget");
    let form = [
        ("_csrf", csrf.as_str()),
        ("reason", "Caller locked out during a storm of user pages"),
        ("ticket", "SUP-13"),
    ];
    let unlocked = agents[0]
        .post_form(&format!("/users/{locked}/unlock"), &form)
        .await;
    assert!(
        unlocked.status.is_redirection(),
        "{}: {}",
        unlocked.status,
        unlocked.body
    );
    assert_eq!(t.sim().user(&locked).unwrap().status, UserStatus::Active);
    assert_eq!(t.sim().rate_limited_answers(), 0, "Okta never answered 429");
}

/// Requests the simulator received for `GET /api/v1/users` whose query mentions `needle`.
fn searches_for(t: &TestApp, needle: &str) -> usize {
    t.sim()
        .requests("GET", "/api/v1/users")
        .iter()
        .filter(|r| r.path == "/api/v1/users" && r.query.as_deref().unwrap_or("").contains(needle))
        .count()
}

#[tokio::test]
async fn identical_concurrent_reads_are_one_okta_call() {
    use okta_sim::{Fault, FaultKind};
    let t = TestApp::spawn_with(|c| c.okta.budget.search_cache_seconds = 0).await;
    let service = token(&t, SUPPORT, SUPPORT_SCOPES).await;
    let agent = t.signed_in(AGENT).await;
    let user = t.sim().user(&t.plain_active_user()).unwrap();
    let (ada, q) = (user.id.clone(), user.login.clone());
    let needle = q.split('@').next().unwrap().to_string();
    let search_path = format!("/api/v1/users?q={q}");
    // Okta takes 300 ms, so the reads below overlap.
    t.sim().inject_fault(
        Fault::new(
            "GET",
            "/api/v1/users",
            FaultKind::Latency(Duration::from_millis(300)),
        )
        .times(1000),
    );
    let searches = futures_util::future::join_all(
        (0..8).map(|_| call(&t, Method::GET, &search_path, Some(&service), None, &[])),
    );
    let user_path = format!("/api/v1/users/{ada}");
    let reads = futures_util::future::join_all(
        (0..8).map(|_| call(&t, Method::GET, &user_path, Some(&service), None, &[])),
    );
    let page_path = format!("/users?q={q}");
    let pages = futures_util::future::join_all((0..4).map(|_| agent.get(&page_path)));
    let (searches, reads, pages) = tokio::join!(searches, reads, pages);
    t.sim().clear_faults();
    for answer in searches.iter().chain(reads.iter()) {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert!(searches.iter().all(|s| s.body[0]["id"] == ada.as_str()));
    for page in &pages {
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&user.last_name));
    }
    // The API's page size differs from the page's: one call for the 8 API searches, one for
    // the 4 pages.
    assert_eq!(searches_for(&t, &needle), 2, "12 searches, two Okta calls");
    let user_reads = t
        .sim()
        .requests("GET", &user_path)
        .iter()
        .filter(|r| r.path == user_path)
        .count();
    assert_eq!(user_reads, 1, "8 reads of one user, one Okta call");
    // Coalescing is not caching: the next search asks Okta again.
    call(&t, Method::GET, &search_path, Some(&service), None, &[]).await;
    assert_eq!(searches_for(&t, &needle), 3);
}

#[tokio::test]
async fn search_pages_are_cached_briefly_and_dropped_when_the_portal_changes_a_user() {
    let t = TestApp::spawn().await;
    let agent = t.signed_in(AGENT).await;
    let user = t.sim().user(&t.plain_active_user()).unwrap();
    let (ada, needle) = (
        user.id.clone(),
        user.login.split('@').next().unwrap().to_string(),
    );
    let search = format!("/users?q={}", user.login);
    let first = agent.get(&search).await;
    assert!(first.body.contains("Active"));
    agent.get(&search).await;
    assert_eq!(
        searches_for(&t, &needle),
        1,
        "the second search came from the cache"
    );

    // A change made by the portal drops the pages that hold the user.
    let csrf = agent.csrf_token().await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("reason", "Customer asked for a pause"),
        ("ticket", "SUP-7"),
    ];
    let done = agent
        .post_form(&format!("/users/{ada}/suspend"), &form)
        .await;
    assert!(
        done.status.is_redirection() || done.status == 200,
        "{}",
        done.body
    );
    let after = agent.get(&search).await;
    assert_eq!(
        searches_for(&t, &needle),
        2,
        "asked Okta again after the change"
    );
    assert!(after.body.contains("Suspended"), "{}", after.body);

    // Without a change, the cache holds for search_cache_seconds (5 s) and then asks again.
    agent.get(&search).await;
    assert_eq!(searches_for(&t, &needle), 2);
    tokio::time::sleep(Duration::from_millis(5200)).await;
    agent.get(&search).await;
    assert_eq!(searches_for(&t, &needle), 3);
}

#[tokio::test]
async fn a_live_search_superseded_by_the_next_keystroke_never_reaches_okta() {
    let t = TestApp::spawn_with(|c| {
        c.okta.budget.read_wait_ms = 1500;
        c.okta.budget.search_cache_seconds = 0;
    })
    .await;
    // 10 a minute: the portal's half less the write reserve is 4 reads.
    t.sim().set_rate_limit("GET /api/v1/users", 10);
    let agent = t.signed_in(AGENT).await;
    for i in 0..4 {
        assert_eq!(agent.get(&format!("/users?q=spend{i}")).await.status, 200);
    }
    let older = async {
        let started = Instant::now();
        let page = agent.get_htmx("/users?q=lov").await;
        (page, started.elapsed())
    };
    let newer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        agent.get_htmx("/users?q=love").await
    };
    let ((older, took), newer) = tokio::join!(older, newer);
    assert_eq!(older.status, 204, "superseded: {}", older.body);
    assert!(
        took < Duration::from_millis(1000),
        "cancelled at once, not after the wait: {took:?}"
    );
    assert_eq!(
        newer.status, 429,
        "the budget is still spent: {}",
        newer.body
    );
    assert!(newer.body.contains("Okta is busy"), "{}", newer.body);
    assert_eq!(searches_for(&t, "lov"), 0, "neither search reached Okta");
    assert_eq!(t.sim().rate_limited_answers(), 0);
}

#[tokio::test]
async fn an_agent_over_the_request_limit_is_told_to_wait_and_others_are_not() {
    // 8 a minute with a burst of 2.
    let t = TestApp::spawn_with(|c| c.session.agent_requests_per_minute = 8).await;
    let (agent, manager) = (t.signed_in(AGENT).await, t.signed_in(MANAGER).await);
    let pages = [
        agent.get("/me").await,
        agent.get("/me").await,
        agent.get("/me").await,
    ];
    assert_eq!(pages[0].status, 200);
    assert_eq!(pages[2].status, 429, "{}", pages[2].body);
    assert!(
        pages[2]
            .body
            .contains("Too many requests from your account — try again in"),
        "{}",
        pages[2].body
    );
    assert!(pages[2].body.contains("Request id"));
    assert_eq!(
        manager.get("/me").await.status,
        200,
        "another agent has their own limit"
    );
}
