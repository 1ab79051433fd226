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
fn check_page(page: &Page) -> bool {
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
    let unlock = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let form = [
            ("_csrf", csrf.as_str()),
            ("reason", "Caller locked out during a search storm"),
            ("ticket", "SUP-12"),
        ];
        let page = agents[0]
            .post_form(&format!("/users/{locked}/unlock"), &form)
            .await;
        (page, started.elapsed())
    };
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
