//! Request-level protections that do not belong to one page: the request id, HSTS, the
//! request timeout, and the rule that exports are only started from the portal itself.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;

pub const REQUEST_ID: &str = "x-request-id";
/// Longest request id accepted from a trusted proxy.
pub const MAX_REQUEST_ID: usize = 64;

/// `[http]`: how requests are received.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Addresses of reverse proxies whose `X-Request-Id` is kept (when it is 1 to 64 of
    /// `A-Z a-z 0-9 . _ -`). Every other request gets an id from the portal.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// `Strict-Transport-Security: max-age` in seconds, sent when the public URL is https.
    #[serde(default = "default_hsts")]
    pub hsts_max_age_seconds: u64,
    /// A request still running after this many seconds is stopped with a 504 page
    /// (the streamed exports are exempt).
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            hsts_max_age_seconds: default_hsts(),
            request_timeout_seconds: default_timeout(),
        }
    }
}

fn default_hsts() -> u64 {
    365 * 24 * 60 * 60
}
fn default_timeout() -> u64 {
    30
}

impl HttpConfig {
    /// The HSTS header value, when the portal is reached over https.
    pub fn hsts(&self, public_base: &url::Url) -> Option<String> {
        (public_base.scheme() == "https")
            .then(|| format!("max-age={}; includeSubDomains", self.hsts_max_age_seconds))
    }
}

/// A request id as accepted from a trusted proxy.
pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Replaces `X-Request-Id` with the portal's own (unless a trusted proxy sent a valid one)
/// and echoes it on the response.
pub async fn request_id(
    State(config): State<Arc<HttpConfig>>,
    mut request: Request,
    next: Next,
) -> Response {
    let incoming = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| valid_request_id(id))
        .filter(|_| peer(&request).is_some_and(|ip| config.trusted_proxies.contains(&ip)));
    let id = match incoming {
        Some(id) => id.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"));
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// Stops requests that run longer than the configured timeout, except the streamed exports
/// (whose body may take as long as the trail is big).
pub async fn timeout(
    State(config): State<Arc<HttpConfig>>,
    request: Request,
    next: Next,
) -> Response {
    if is_export(request.uri().path()) {
        return next.run(request).await;
    }
    let limit = Duration::from_secs(config.request_timeout_seconds.max(1));
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout(limit.as_secs()).into_response(),
    }
}

pub fn is_export(path: &str) -> bool {
    path.starts_with("/activity/export.")
}

/// Exports are refused when a browser says the request came from another site (a link or
/// form elsewhere). A request without `Sec-Fetch-Site` is a non-browser client (curl, a
/// script with the session cookie) and is allowed; every current browser sends the header.
pub fn export_allowed(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        None => true,
        Some(Ok(site)) => matches!(site, "same-origin" | "none"),
        Some(Err(_)) => false,
    }
}

/// Gives every request a slot that the front ends fill with who it is for, so that the Okta
/// budget can ration reads per agent and client (see `okta::budget`).
pub async fn requester_scope(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    crate::okta::budget::REQUESTER
        .scope(slot, next.run(request))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_proxies_are_short_and_plain() {
        assert!(valid_request_id("abc-123_X.y"));
        assert!(valid_request_id(&"a".repeat(64)));
        assert!(!valid_request_id(&"a".repeat(65)));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\nb"));
        assert!(!valid_request_id("ä"));
    }

    #[test]
    fn hsts_only_over_https() {
        let c = HttpConfig::default();
        let https = url::Url::parse("https://admin.example.com").unwrap();
        let http = url::Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            c.hsts(&https).as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(c.hsts(&http), None);
    }

    #[test]
    fn exports_only_from_the_portal_or_typed_in() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("sec-fetch-site", HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(export_allowed(&HeaderMap::new()));
        assert!(export_allowed(&with("same-origin")));
        assert!(export_allowed(&with("none")));
        assert!(!export_allowed(&with("cross-site")));
        assert!(!export_allowed(&with("same-site")));
    }
}
