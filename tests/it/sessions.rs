//! Sessions: tokens at rest, revocation when a session ends, and no database write per
//! request (issue 13 item 4, issue 11 goal 1).

use std::time::{Duration, Instant};

use admin_portal::Application;
use admin_portal::db::Database;
use reqwest::StatusCode;

use crate::helpers::{AGENT, TestApp};

/// The refresh token the simulator issued to the portal for `login` (one sign-in per test).
fn refresh_token_of(t: &TestApp, login: &str) -> (String, bool) {
    let store = t.sim().store();
    let user = store
        .users
        .values()
        .find(|u| u.login == login)
        .map(|u| u.id.clone())
        .expect("the user");
    let mut grants: Vec<(String, bool)> = store
        .refresh_tokens
        .iter()
        .filter(|(_, g)| g.user_id == user && g.client_id == okta_sim::PORTAL_CLIENT_ID)
        .map(|(token, g)| (token.clone(), g.revoked))
        .collect();
    assert_eq!(grants.len(), 1, "one refresh token for the portal");
    grants.remove(0)
}

/// Uses a refresh token at the simulator's token endpoint as the portal would.
async fn use_refresh_token(t: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/token", t.sim.issuer()))
        .basic_auth(
            okta_sim::PORTAL_CLIENT_ID,
            Some(okta_sim::PORTAL_CLIENT_SECRET),
        )
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.expect("JSON answer"))
}

async fn sign_out(b: &crate::helpers::Browser) {
    let token = b.csrf_token().await;
    let out = b.post_form("/auth/logout", &[("_csrf", &token)]).await;
    assert_eq!(out.status, 303, "{}", out.body);
}

/// Polls `done` every 50 ms until it holds or `limit` passes; returns whether it held.
async fn eventually<F, Fut>(limit: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done().await
}

#[tokio::test]
async fn the_session_row_holds_neither_the_cookie_nor_any_token_in_clear() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/me").await.status, 200);
    let cookie = b.session_cookie().expect("a session cookie");
    let (refresh, _) = refresh_token_of(&t, AGENT);
    let rows = t.session_rows().await;
    let row = rows
        .iter()
        .find(|(key, _, _)| *key == t.session_row_key(&b))
        .expect("the row is keyed by the SHA-256 of the cookie");
    for (key, data, _) in &rows {
        let text = String::from_utf8_lossy(data);
        assert!(!key.contains(&cookie) && !text.contains(&cookie));
        assert!(!text.contains(&refresh), "the refresh token in clear");
        // Every JWT (access and ID token) starts with the base64 of `{"`.
        assert!(!text.contains("eyJ"), "a JWT in clear");
        assert!(!text.contains(AGENT), "the session data is sealed whole");
    }
    assert_eq!(row.0.len(), 64);
    assert_ne!(row.0, cookie);
}

#[tokio::test]
async fn after_sign_out_the_refresh_token_no_longer_mints_tokens() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let (refresh, revoked) = refresh_token_of(&t, AGENT);
    assert!(!revoked);
    let (status, _) = use_refresh_token(&t, &refresh).await;
    assert_eq!(status, 200, "the token works while the session lives");
    sign_out(&b).await;
    let (status, body) = use_refresh_token(&t, &refresh).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(t.session_rows().await.is_empty(), "the row is gone");
}

#[tokio::test]
async fn an_idle_expired_session_is_swept_and_its_refresh_token_revoked() {
    let t = TestApp::spawn_with(|c| c.session.sweep_interval_seconds = 1).await;
    let b = t.signed_in(AGENT).await;
    let other = t.signed_in(crate::helpers::MANAGER).await;
    let (refresh, _) = refresh_token_of(&t, AGENT);
    t.expire_session_of(&b).await;
    let expired_key = t.session_row_key(&b);
    // The sweeper revokes first, then deletes the row.
    let swept = eventually(Duration::from_secs(10), || async {
        refresh_token_of(&t, AGENT).1
            && !t
                .session_rows()
                .await
                .iter()
                .any(|(k, _, _)| *k == expired_key)
    })
    .await;
    assert!(
        swept,
        "the sweeper revoked the expired session's refresh token and removed it"
    );
    let (status, body) = use_refresh_token(&t, &refresh).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let rows = t.session_rows().await;
    assert_eq!(rows.len(), 1, "only the live session is left");
    assert_eq!(rows[0].0, t.session_row_key(&other));
    assert!(!refresh_token_of(&t, crate::helpers::MANAGER).1);
    assert_eq!(other.get("/me").await.status, 200);
}

#[tokio::test]
async fn a_tampered_session_row_is_a_signed_out_session_not_a_500() {
    // No cached copy: every request reads the row.
    let t = TestApp::spawn_with(|c| c.session.cache_recheck_seconds = 0).await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/me").await.status, 200);
    let key = t.session_row_key(&b);
    let (_, mut data, _) = t
        .session_rows()
        .await
        .into_iter()
        .find(|(k, _, _)| *k == key)
        .expect("row");
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    let sql = "UPDATE portal_sessions SET data = $1 WHERE id_hash = $2";
    let changed = match &t.app.state.db {
        Database::Sqlite(pool) => sqlx::query(sql)
            .bind(&data)
            .bind(&key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        Database::Postgres(pool) => sqlx::query(sql)
            .bind(&data)
            .bind(&key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
    }
    .expect("tamper");
    assert_eq!(changed, 1);
    let page = b.get("/me").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/auth/login?return_to=%2Fme");
    assert!(
        !t.session_rows().await.iter().any(|(k, _, _)| *k == key),
        "the unreadable row is removed"
    );
}

#[tokio::test]
async fn twenty_page_views_write_nothing_to_the_session_store() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    assert_eq!(b.get("/me").await.status, 200);
    let before = t.session_rows().await;
    let writes = t.app.sessions.writes();
    for _ in 0..20 {
        assert_eq!(b.get("/me").await.status, 200);
    }
    assert_eq!(t.app.sessions.writes(), writes, "no session write");
    // Every write seals with a fresh nonce: identical bytes mean no write happened.
    assert_eq!(t.session_rows().await, before);
}

#[tokio::test]
async fn the_idle_expiry_is_written_only_once_it_would_move_past_the_threshold() {
    // 30 minutes idle: the threshold is max(60 s, 5 % of 30 min) = 90 s.
    let t = TestApp::spawn_with(|c| c.session.cache_recheck_seconds = 0).await;
    let idle = 30 * 60;
    let b = t.signed_in(AGENT).await;
    t.set_session_seconds_left(&b, idle - 30).await;
    let writes = t.app.sessions.writes();
    assert_eq!(b.get("/me").await.status, 200);
    assert_eq!(
        t.app.sessions.writes(),
        writes,
        "a 30 s move is not written"
    );
    assert!(t.session_seconds_left(&b).await <= idle - 30);
    t.set_session_seconds_left(&b, idle - 120).await;
    assert_eq!(b.get("/me").await.status, 200);
    assert_eq!(
        t.app.sessions.writes(),
        writes + 1,
        "a 120 s move is written"
    );
    assert!(t.session_seconds_left(&b).await > idle - 10);
}

/// A second portal on the same database, simulator and keys.
async fn second_instance(t: &TestApp) -> admin_portal::RunningApp {
    instance_with_keys(t, |_| {}).await
}

async fn me_status(client: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    client
        .get(format!("{base}/me"))
        .header("cookie", format!("portal_session={cookie}"))
        .send()
        .await
        .expect("GET /me")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_refused_by_another_within_the_recheck_interval() {
    let recheck = Duration::from_secs(1);
    let t = TestApp::spawn_with(|c| c.session.cache_recheck_seconds = 1).await;
    let other = second_instance(&t).await;
    let b = t.signed_in(AGENT).await;
    let cookie = b.session_cookie().expect("cookie");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    assert_eq!(
        me_status(&client, &other.base_url, &cookie).await,
        200,
        "B knows the session"
    );
    sign_out(&b).await;
    let ended = Instant::now();
    let refused = eventually(recheck + Duration::from_secs(2), || async {
        me_status(&client, &other.base_url, &cookie).await == 303
    })
    .await;
    assert!(refused, "B refuses the session within the recheck interval");
    assert!(ended.elapsed() < recheck + Duration::from_secs(2));
    assert_eq!(
        me_status(&client, &other.base_url, &cookie).await,
        303,
        "and stays refusing"
    );
    assert!(
        t.session_rows().await.is_empty(),
        "B did not recreate the row"
    );
    other.stop().await;
}

/// A second portal on the same database whose `[session]` keys `adjust` changes.
async fn instance_with_keys(
    t: &TestApp,
    adjust: impl FnOnce(&mut admin_portal::config::SessionConfig),
) -> admin_portal::RunningApp {
    let mut config = (*t.app.state.config).clone();
    config.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    adjust(&mut config.session);
    let valid = config.validate().expect("valid");
    Application::build(valid).await.expect("builds").spawn()
}

#[tokio::test]
async fn a_rotated_key_keeps_sessions_while_the_old_key_is_listed() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    let cookie = b.session_cookie().expect("cookie");
    let old_key = t.app.state.config.session.encryption_key.clone();
    let new_key = admin_portal::session_store::SessionKey::generate_base64();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let rotated = instance_with_keys(&t, |s| {
        s.encryption_key = Some(new_key.clone());
        s.encryption_keys_old = old_key.into_iter().collect();
    })
    .await;
    assert_eq!(
        me_status(&client, &rotated.base_url, &cookie).await,
        200,
        "the old key still opens the session"
    );
    let dropped = instance_with_keys(&t, |s| s.encryption_key = Some(new_key.clone())).await;
    assert_eq!(
        me_status(&client, &dropped.base_url, &cookie).await,
        303,
        "without the old key the session is signed out, not a 500"
    );
    rotated.stop().await;
    dropped.stop().await;
}
