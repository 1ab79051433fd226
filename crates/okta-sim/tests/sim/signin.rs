//! The hosted sign-in form: CSRF protection as Okta's hosted page has it (a per-form token
//! bound to a cookie), `SameSite=Lax` cookies, and the normal flow around it.

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::harness::*;

const LOGIN: &str = "agent@example.com";

/// A browser: keeps cookies, never follows redirects.
fn browser() -> reqwest::Client {
    init_tls();
    reqwest::Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize_params(t: &SimApp) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", okta_sim::PORTAL_CLIENT_ID.to_string()),
        ("response_type", "code".into()),
        ("scope", "openid profile".into()),
        ("redirect_uri", t.url("/auth/callback")),
        ("state", "st-123".into()),
        ("nonce", "n-456".into()),
    ]
}

fn authorize_url(t: &SimApp) -> String {
    format!("{}/v1/authorize", t.sim.issuer())
}

/// Shows the sign-in form; returns its CSRF token and the response headers.
async fn show_form(t: &SimApp, browser: &reqwest::Client) -> (String, HeaderMap) {
    let response = browser
        .get(authorize_url(t))
        .query(&authorize_params(t))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    let marker = format!("name=\"{}\" value=\"", okta_sim::xsrf::XSRF_FIELD);
    let start = body.find(&marker).expect("the form carries a CSRF token") + marker.len();
    let token = body[start..].split('"').next().unwrap().to_string();
    assert!(token.len() >= 32, "{token}");
    (token, headers)
}

/// Posts the sign-in form with the right password and the given token (if any).
async fn post_form(
    t: &SimApp,
    browser: &reqwest::Client,
    token: Option<&str>,
) -> reqwest::Response {
    let mut form = authorize_params(t);
    form.push(("username", LOGIN.into()));
    form.push(("password", okta_sim::DEMO_PASSWORD.into()));
    if let Some(token) = token {
        form.push((okta_sim::xsrf::XSRF_FIELD, token.into()));
    }
    browser
        .post(authorize_url(t))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn last_login(t: &SimApp) -> Option<time::OffsetDateTime> {
    t.sim().user(LOGIN).unwrap().last_login
}

/// Asserts the Okta-like 403 page and that nobody was signed in.
async fn assert_refused(t: &SimApp, response: reqwest::Response) {
    let before = last_login(t);
    assert_eq!(response.status(), 403);
    assert!(response.headers().get(LOCATION).is_none(), "no code issued");
    assert!(
        set_cookies(response.headers()).is_empty(),
        "no SSO cookie: {:?}",
        set_cookies(response.headers())
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("403 - Forbidden"), "{body}");
    assert!(
        body.contains("You do not have permission to access the feature you are requesting"),
        "{body}"
    );
    let store = t.sim().store();
    assert!(store.sso_sessions.is_empty(), "no SSO session was created");
    assert!(store.codes.is_empty(), "no authorization code was issued");
    drop(store);
    assert_eq!(last_login(t), before, "the user did not sign in");
}

#[tokio::test]
async fn a_cross_site_post_without_a_token_is_refused_and_signs_nobody_in() {
    let t = SimApp::spawn().await;
    // An attacker's page posts straight to the form: no cookie, no token.
    assert_refused(&t, post_form(&t, &browser(), None).await).await;
    // A browser that saw the form, but the post carries no token.
    let b = browser();
    show_form(&t, &b).await;
    assert_refused(&t, post_form(&t, &b, None).await).await;
    // A made-up token.
    assert_refused(
        &t,
        post_form(&t, &b, Some("forged-token-forged-token-forged-1")).await,
    )
    .await;
}

#[tokio::test]
async fn a_token_is_bound_to_its_browser_and_used_once() {
    let t = SimApp::spawn().await;
    let victim = browser();
    let (token, _) = show_form(&t, &victim).await;
    // The attacker got a token for their own browser; it does not work with another cookie.
    let attacker = browser();
    let (attacker_token, _) = show_form(&t, &attacker).await;
    assert_refused(&t, post_form(&t, &victim, Some(&attacker_token)).await).await;
    // A presented token is used up, right or wrong: the attacker cannot replay it either.
    assert_refused(&t, post_form(&t, &attacker, Some(&attacker_token)).await).await;
    let signed_in = post_form(&t, &victim, Some(&token)).await;
    assert_eq!(signed_in.status(), 302);
    // Used once: the same token again is refused.
    let again = post_form(&t, &victim, Some(&token)).await;
    assert_eq!(again.status(), 403);
}

#[tokio::test]
async fn the_normal_flow_signs_in_with_lax_cookies() {
    let t = SimApp::spawn().await;
    let b = browser();
    let before = last_login(&t);
    let (token, headers) = show_form(&t, &b).await;
    let form_cookie = set_cookies(&headers);
    assert_eq!(form_cookie.len(), 1, "{form_cookie:?}");
    assert!(
        form_cookie[0].starts_with("okta_sim_xsrf="),
        "{form_cookie:?}"
    );
    assert!(form_cookie[0].contains("HttpOnly") && form_cookie[0].contains("SameSite=Lax"));
    // A second form in the same browser reuses the cookie and gets its own token.
    let (second_token, headers) = show_form(&t, &b).await;
    assert!(set_cookies(&headers).is_empty());
    assert_ne!(second_token, token);
    let response = post_form(&t, &b, Some(&token)).await;
    assert_eq!(response.status(), 302);
    let location = response.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&t.url("/auth/callback?")),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert!(query_param(&location, "code").is_some_and(|c| !c.is_empty()));
    let sso = set_cookies(response.headers());
    assert_eq!(sso.len(), 1, "{sso:?}");
    assert!(sso[0].starts_with("okta_sim_sid="), "{sso:?}");
    assert!(sso[0].contains("SameSite=Lax") && !sso[0].contains("SameSite=None"));
    assert_eq!(t.sim().store().sso_sessions.len(), 1);
    assert!(last_login(&t) > before, "the sign-in is recorded");
    // The SSO session signs the browser in again without a form.
    let sso_answer = b
        .get(authorize_url(&t))
        .query(&authorize_params(&t))
        .send()
        .await
        .unwrap();
    assert_eq!(sso_answer.status(), 302);
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_a_fresh_token() {
    let t = SimApp::spawn().await;
    let b = browser();
    let (token, _) = show_form(&t, &b).await;
    let mut form = authorize_params(&t);
    form.push(("username", LOGIN.into()));
    form.push(("password", "wrong".into()));
    form.push((okta_sim::xsrf::XSRF_FIELD, token.clone()));
    let response = b.post(authorize_url(&t)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap();
    assert!(body.contains("Unable to sign in"));
    let marker = format!("name=\"{}\" value=\"", okta_sim::xsrf::XSRF_FIELD);
    let start = body.find(&marker).unwrap() + marker.len();
    let fresh = body[start..].split('"').next().unwrap().to_string();
    assert_ne!(fresh, token);
    assert_eq!(post_form(&t, &b, Some(&fresh)).await.status(), 302);
}
