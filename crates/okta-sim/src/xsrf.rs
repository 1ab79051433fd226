//! CSRF protection of the hosted sign-in form, as Okta's hosted page has it: every rendered
//! form carries a one-time token bound to a per-browser cookie (`okta_sim_xsrf`,
//! `SameSite=Lax`), and a POST whose token was not issued to that browser's cookie is refused
//! with 403 before any credential is looked at.

use std::time::Duration;

use axum::http::{HeaderMap, header};

use super::store::XsrfToken;
use super::{SimState, random_token};

pub const XSRF_COOKIE: &str = "okta_sim_xsrf";
/// The form field Okta's hosted sign-in page uses for its token.
pub const XSRF_FIELD: &str = "_xsrfToken";
/// A rendered sign-in form stays usable this long.
const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// At most this many unused tokens are kept (the oldest go first).
const MAX_TOKENS: usize = 10_000;

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A fresh token for a sign-in form shown to this browser, and the `Set-Cookie` value when
/// the browser has no (usable) cookie yet.
pub fn issue(state: &SimState, headers: &HeaderMap) -> (String, Option<String>) {
    let existing = cookie(headers, XSRF_COOKIE).filter(|c| c.len() == 32);
    let set_cookie = existing.is_none();
    let browser = existing.unwrap_or_else(|| random_token(32));
    let token = random_token(40);
    let mut store = state.store();
    let tokens = &mut store.xsrf_tokens;
    tokens.retain(|_, t| t.issued.elapsed() < TOKEN_LIFETIME);
    while tokens.len() >= MAX_TOKENS {
        let Some(oldest) = tokens
            .iter()
            .min_by_key(|(_, t)| t.issued)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        tokens.remove(&oldest);
    }
    tokens.insert(
        token.clone(),
        XsrfToken {
            cookie: browser.clone(),
            issued: std::time::Instant::now(),
        },
    );
    let set_cookie =
        set_cookie.then(|| format!("{XSRF_COOKIE}={browser}; Path=/; HttpOnly; SameSite=Lax"));
    (token, set_cookie)
}

/// Whether a POSTed sign-in form carries a live token issued to this browser's cookie. The
/// token is used up either way.
pub fn check(state: &SimState, headers: &HeaderMap, token: Option<&str>) -> bool {
    let (Some(browser), Some(token)) = (cookie(headers, XSRF_COOKIE), token) else {
        return false;
    };
    let issued = state.store().xsrf_tokens.remove(token);
    issued.is_some_and(|t| t.cookie == browser && t.issued.elapsed() < TOKEN_LIFETIME)
}
