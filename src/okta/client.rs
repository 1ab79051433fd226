//! The Management API client: one `reqwest::Client`, authentication (SSWS or OAuth 2.0 for
//! Okta with private_key_jwt, DPoP-bound when the service app requires it), and one `send`
//! path that maps every failure to `OktaError`, reads the rate-limit headers on every
//! response, and retries only what is safe.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::budget::RateLimit;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::config::OktaConfig;
use super::dpop::{Dpop, Server};
use super::error::{OktaError, OktaErrorKind};

/// How the portal authenticates to the Management API.
pub enum OktaAuth {
    Ssws(SecretString),
    OAuth(Box<ServiceApp>),
}

/// A service app using `client_credentials` with `private_key_jwt` (OKTA-FACTS.md §1.2),
/// and DPoP (§10.9) with a key of its own.
pub struct ServiceApp {
    client_id: String,
    key_id: String,
    key: jsonwebtoken::EncodingKey,
    scopes: Vec<String>,
    token: tokio::sync::Mutex<Option<ServiceToken>>,
    dpop: Dpop,
}

/// A cached service token, until shortly before it expires.
struct ServiceToken {
    secret: SecretString,
    renew_at: Instant,
    /// `token_type: DPoP`: sent as `Authorization: DPoP …` with a proof.
    bound: bool,
}

/// How one call authenticates: the `Authorization` value and, for a DPoP-bound token, the
/// token the proof's `ath` is computed from.
struct Credential {
    authorization: String,
    bound_token: Option<SecretString>,
}

/// What `send` has already done once to get a call through.
#[derive(Default)]
struct Resent {
    token: bool,
    nonce: bool,
    switched: bool,
    /// Whether the last attempt went out with a DPoP-bound token.
    bound: bool,
}

/// A successful answer.
#[derive(Debug)]
pub struct OktaResponse<T> {
    pub body: T,
    pub request_id: Option<String>,
    /// The `rel="next"` link, if any.
    pub next: Option<Url>,
}

/// One request to send.
pub struct OktaRequest {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl OktaRequest {
    pub fn get(path: impl Into<String>) -> OktaRequest {
        OktaRequest {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn post(path: impl Into<String>, body: Option<Value>) -> OktaRequest {
        OktaRequest {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body,
        }
    }

    pub fn delete(path: impl Into<String>) -> OktaRequest {
        OktaRequest {
            method: Method::DELETE,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn put(path: impl Into<String>) -> OktaRequest {
        OktaRequest {
            method: Method::PUT,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, key: &str, value: impl Into<String>) -> OktaRequest {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// Only reads are sent twice. Lifecycle POSTs, creates and DELETE (whose second call
    /// deletes for good) never are.
    fn idempotent(&self) -> bool {
        self.method == Method::GET
    }

    /// The request as one string (method, path and query in order), for the read cache.
    pub fn cache_key(&self) -> String {
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} {}?{}", self.method, self.path, query.join("&"))
    }
}

pub struct OktaClient {
    http: reqwest::Client,
    base: Url,
    auth: OktaAuth,
    timeout: Duration,
    max_retry_wait: Duration,
    /// Last rate-limit state per bucket (method + path shape).
    budget: Mutex<HashMap<String, RateLimit>>,
    /// The portal's rations of Okta's buckets and concurrency (see `budget`).
    rations: super::budget::Budget,
    /// Identical reads coalesced, search pages cached (see `reads`).
    reads: super::reads::Reads,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenAnswer {
    fn is_dpop(&self) -> bool {
        self.token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("DPoP"))
    }
}

/// Whether Okta refused a call or token request for want of a (good) DPoP proof.
fn asks_for_dpop(e: &OktaError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("invalid_dpop_proof" | "use_dpop_nonce")
    )
}

fn is_nonce_challenge(e: &OktaError) -> bool {
    e.code.as_deref() == Some("use_dpop_nonce")
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The rate-limit bucket a call counts against, as Okta groups its endpoints (OKTA-FACTS §3:
/// per method, exact endpoint group first, otherwise the longest prefix): ids and logins become
/// `{id}`, operations below a user's sub-resource (`/lifecycle/suspend`, `/factors/{fid}/verify`)
/// share that sub-resource's bucket, a user's groups count as reading the user, and every group
/// read counts against `GET /api/v1/groups`.
fn bucket(method: &Method, path: &str) -> String {
    // The segment after a resource is always an id or a login, however short (`/users/ada`):
    // a bucket must never be named by what someone typed.
    let segs: Vec<&str> = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let template = match (method.as_str(), segs.as_slice()) {
        ("GET", ["groups", ..]) => "groups".to_string(),
        ("GET", ["users", _, "groups"]) => "users/{id}".to_string(),
        (_, ["groups", _, "users", _]) => "groups/{id}/users/{userId}".into(),
        (_, [resource]) => resource.to_string(),
        (_, [resource, _]) => format!("{resource}/{{id}}"),
        (_, [resource, _, sub, ..]) => format!("{resource}/{{id}}/{sub}"),
        _ => String::new(),
    };
    format!("{method} /api/v1/{template}")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn rate_limit(headers: &HeaderMap) -> Option<RateLimit> {
    Some(RateLimit {
        limit: header_str(headers, "x-rate-limit-limit")?.parse().ok()?,
        remaining: header_str(headers, "x-rate-limit-remaining")?
            .parse()
            .ok()?,
        reset: header_str(headers, "x-rate-limit-reset")?.parse().ok()?,
    })
}

/// Seconds to wait before retrying a 429: `X-Rate-Limit-Reset − Date + 1` (Okta's SDKs).
fn retry_delay(headers: &HeaderMap) -> Option<Duration> {
    let reset: i64 = header_str(headers, "x-rate-limit-reset")?.parse().ok()?;
    let date = header_str(headers, "date")
        .and_then(httpdate_to_unix)
        .unwrap_or_else(now_unix);
    Some(Duration::from_secs((reset - date + 1).max(0) as u64))
}

fn httpdate_to_unix(value: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, &format)
        .ok()
        .map(|dt| dt.assume_utc().unix_timestamp())
}

tokio::task_local! {
    /// The OAuth client of the service a call is made for (set by the service API), named in
    /// the `User-Agent` so that Okta's System Log shows which service was behind each change.
    pub static ON_BEHALF_OF: String;
}

fn on_behalf_user_agent() -> Option<String> {
    let client = ON_BEHALF_OF.try_with(|c| c.clone()).ok()?;
    let client: String = client
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    Some(format!(
        "admin-portal/{} (for client {client})",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The `rel="next"` target among the `link` headers.
pub fn next_link(headers: &HeaderMap) -> Option<Url> {
    headers.get_all(header::LINK).iter().find_map(|value| {
        let value = value.to_str().ok()?;
        value.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
                return None;
            }
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            Url::parse(target).ok()
        })
    })
}

impl OktaClient {
    pub fn new(http: reqwest::Client, config: &OktaConfig) -> anyhow::Result<OktaClient> {
        let auth = match (&config.api_token, &config.oauth) {
            (Some(token), None) => OktaAuth::Ssws(token.clone()),
            (None, Some(oauth)) => {
                let pem = match (&oauth.private_key, &oauth.private_key_file) {
                    (Some(key), None) => key.expose_secret().to_string(),
                    (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                        anyhow::anyhow!(
                            "reading okta.oauth.private_key_file {}: {e}",
                            path.display()
                        )
                    })?,
                    _ => anyhow::bail!(
                        "okta.oauth needs exactly one of private_key and private_key_file"
                    ),
                };
                OktaAuth::OAuth(Box::new(ServiceApp {
                    client_id: oauth.client_id.clone(),
                    key_id: oauth.key_id.clone(),
                    key: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
                        .map_err(|e| anyhow::anyhow!("okta.oauth private key: {e}"))?,
                    scopes: oauth.scopes.clone(),
                    token: tokio::sync::Mutex::new(None),
                    // Never the private_key_jwt key: a P-256 key made now, in memory only.
                    dpop: Dpop::new(oauth.dpop)?,
                }))
            }
            _ => anyhow::bail!("configure exactly one of okta.api_token and okta.oauth"),
        };
        Ok(OktaClient {
            http,
            base: config.org_url.clone(),
            auth,
            timeout: Duration::from_secs(config.timeout_seconds),
            max_retry_wait: Duration::from_secs(config.max_retry_wait_seconds),
            budget: Mutex::new(HashMap::new()),
            rations: super::budget::Budget::new(&config.budget),
            reads: super::reads::Reads::new(
                Duration::from_secs(config.budget.search_cache_seconds),
                Duration::from_secs(config.budget.group_cache_seconds),
            ),
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The last rate-limit headers seen for a request shape (for diagnostics and tests).
    pub fn rate_limit(&self, method: &Method, path: &str) -> Option<RateLimit> {
        self.budget
            .lock()
            .ok()
            .and_then(|b| b.get(&bucket(method, path)).copied())
    }

    /// The DPoP state of the service app (OAuth only), for diagnostics and tests.
    pub fn dpop(&self) -> Option<&Dpop> {
        match &self.auth {
            OktaAuth::OAuth(app) => Some(&app.dpop),
            OktaAuth::Ssws(_) => None,
        }
    }

    async fn authorization(&self) -> Result<Credential, OktaError> {
        let app = match &self.auth {
            OktaAuth::Ssws(token) => {
                return Ok(Credential {
                    authorization: format!("SSWS {}", token.expose_secret()),
                    bound_token: None,
                });
            }
            OktaAuth::OAuth(app) => app,
        };
        let mut cached = app.token.lock().await;
        let fresh = cached.as_ref().is_some_and(|t| Instant::now() < t.renew_at);
        if !fresh {
            let (answer, lifetime) = self.fetch_service_token(app).await?;
            // Renew a minute before Okta's expiry.
            let renew = Duration::from_secs(lifetime.saturating_sub(60).max(1));
            *cached = Some(ServiceToken {
                bound: answer.is_dpop() && app.dpop.enabled(),
                secret: SecretString::from(answer.access_token),
                renew_at: Instant::now() + renew,
            });
        }
        let Some(token) = cached.as_ref() else {
            return Err(OktaError::new(
                OktaErrorKind::Unauthorized,
                "no service token",
            ));
        };
        let scheme = if token.bound { "DPoP" } else { "Bearer" };
        Ok(Credential {
            authorization: format!("{scheme} {}", token.secret.expose_secret()),
            bound_token: token.bound.then(|| token.secret.clone()),
        })
    }

    /// Drops the cached service token (OAuth only); true when there was one to drop.
    async fn forget_service_token(&self) -> bool {
        match &self.auth {
            OktaAuth::OAuth(app) => app.token.lock().await.take().is_some(),
            OktaAuth::Ssws(_) => false,
        }
    }

    /// A service token: with a DPoP proof when DPoP is on, once more with Okta's nonce after
    /// `use_dpop_nonce`, and (with `auto`) once more with a proof when Okta asks for one.
    async fn fetch_service_token(&self, app: &ServiceApp) -> Result<(TokenAnswer, u64), OktaError> {
        let token_url = self
            .base
            .join("/oauth2/v1/token")
            .map_err(|e| OktaError::new(OktaErrorKind::Transport, e.to_string()))?;
        let mut resent = Resent::default();
        loop {
            match self.token_request(app, &token_url).await {
                Ok(answer) => {
                    if answer.is_dpop() {
                        app.dpop.switch_on("token_type DPoP");
                    }
                    let lifetime = answer.expires_in.unwrap_or(3600);
                    return Ok((answer, lifetime));
                }
                Err(e) if is_nonce_challenge(&e) && app.dpop.enabled() && !resent.nonce => {
                    resent.nonce = true;
                }
                Err(e)
                    if asks_for_dpop(&e)
                        && !resent.switched
                        && app.dpop.switch_on("the token endpoint") =>
                {
                    resent.switched = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The signed `private_key_jwt` client assertion (a new `jti` every time).
    fn client_assertion(&self, app: &ServiceApp, token_url: &Url) -> Result<String, OktaError> {
        let now = now_unix();
        let claims = AssertionClaims {
            iss: &app.client_id,
            sub: &app.client_id,
            aud: token_url.to_string(),
            iat: now,
            exp: now + 300,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jwt_header.kid = Some(app.key_id.clone());
        jsonwebtoken::encode(&jwt_header, &claims, &app.key).map_err(|e| {
            OktaError::new(
                OktaErrorKind::Unauthorized,
                format!("signing the client assertion: {e}"),
            )
        })
    }

    /// One token request; a refusal keeps Okta's `error` as its code.
    async fn token_request(
        &self,
        app: &ServiceApp,
        token_url: &Url,
    ) -> Result<TokenAnswer, OktaError> {
        let assertion = self.client_assertion(app, token_url)?;
        let scope = app.scopes.join(" ");
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let mut builder = self
            .http
            .post(token_url.clone())
            .header(header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .form(&form);
        if app.dpop.enabled() {
            let proof = app.dpop.token_proof(token_url).map_err(|e| {
                OktaError::new(
                    OktaErrorKind::Unauthorized,
                    format!("signing a DPoP proof: {e}"),
                )
            })?;
            builder = builder.header("DPoP", proof);
        }
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        app.dpop.note_nonce(Server::Token, response.headers());
        let request_id = header_str(response.headers(), "x-okta-request-id").map(str::to_string);
        let bytes = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(token_refused(status, &bytes, request_id));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| OktaError::new(OktaErrorKind::Malformed, format!("token response: {e}")))
    }

    /// The read cache and coalescing (see `reads`).
    pub fn reads(&self) -> &super::reads::Reads {
        &self.reads
    }

    /// Shares the Okta budget with the other instances through `shared` (Redis).
    pub fn share_budget(&mut self, shared: crate::cluster::Shared) {
        self.reads.share_with(shared.clone());
        self.rations.share_with(shared);
    }

    /// Sends a request and decodes the answer. Reads are retried once on a transient
    /// failure and after a 429 whose window resets within `max_retry_wait_seconds`.
    #[tracing::instrument(skip_all, fields(method = %request.method, path = ?request.path))]
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: OktaRequest,
    ) -> Result<OktaResponse<T>, OktaError> {
        let key = bucket(&request.method, &request.path);
        let kind = super::budget::kind_of(request.idempotent());
        let mut retry_for: Option<String> = None;
        let mut attempt = 0u32;
        let mut resent = Resent::default();
        loop {
            attempt += 1;
            // Nothing is sent that the budget has no room for (see `budget`).
            let permit = self.rations.acquire(&key, kind).await.map_err(busy)?;
            let sent = self
                .send_once::<T>(
                    &request,
                    &key,
                    (retry_for.as_deref(), attempt - 1),
                    &mut resent.bound,
                )
                .await;
            drop(permit);
            if !request.idempotent() {
                // Whatever the answer, the user may have changed: drop what is stale.
                self.reads.changed(&request.method, &request.path).await;
            }
            match sent {
                Ok(r) => return Ok(r),
                Err((e, _)) if self.resend_after_refusal(&e, &mut resent).await => {
                    attempt -= 1;
                }
                Err((e, delay)) => {
                    if !request.idempotent() || attempt >= 2 {
                        return Err(e);
                    }
                    let wait = match e.kind {
                        OktaErrorKind::RateLimited => match delay {
                            Some(d) if d <= self.max_retry_wait => d,
                            _ => return Err(e),
                        },
                        _ if e.is_transient() => Duration::from_millis(200),
                        _ => return Err(e),
                    };
                    tracing::warn!(
                        path = %request.path,
                        kind = ?e.kind,
                        okta_request_id = e.request_id.as_deref().unwrap_or("-"),
                        wait_ms = wait.as_millis() as u64,
                        "retrying an Okta read"
                    );
                    retry_for = e.request_id.clone();
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Whether a refused call may go once more. Okta did nothing with it, so this is safe for
    /// writes too: after `use_dpop_nonce`, with the new nonce; after a DPoP challenge to a
    /// bearer token (`auto`), with a DPoP-bound token; after a revoked or rotated service
    /// token, with a new one. A refused proof is not sent again.
    async fn resend_after_refusal(&self, e: &OktaError, resent: &mut Resent) -> bool {
        let OktaAuth::OAuth(app) = &self.auth else {
            return false;
        };
        if is_nonce_challenge(e) && app.dpop.enabled() && !resent.nonce {
            resent.nonce = true;
            return true;
        }
        if asks_for_dpop(e) {
            // A refused proof is final; a bearer token refused for want of one is replaced by
            // a DPoP-bound token (`auto`; another call may have switched already).
            if resent.bound || resent.switched {
                return false;
            }
            resent.switched = true;
            let on = app.dpop.switch_on("a Management API challenge") || app.dpop.enabled();
            if on {
                let mut cached = app.token.lock().await;
                if cached.as_ref().is_some_and(|t| !t.bound) {
                    *cached = None;
                }
            }
            return on;
        }
        if e.kind == OktaErrorKind::Unauthorized
            && !resent.token
            && self.forget_service_token().await
        {
            resent.token = true;
            return true;
        }
        false
    }

    /// The DPoP header of a call made with a DPoP-bound token.
    fn api_proof(
        &self,
        method: &Method,
        url: &Url,
        token: &SecretString,
    ) -> Result<String, OktaError> {
        let OktaAuth::OAuth(app) = &self.auth else {
            return Err(OktaError::new(
                OktaErrorKind::Unauthorized,
                "no service app",
            ));
        };
        app.dpop
            .api_proof(method, url, token.expose_secret())
            .map_err(|e| {
                OktaError::new(
                    OktaErrorKind::Unauthorized,
                    format!("signing a DPoP proof: {e}"),
                )
            })
    }

    /// The HTTP request for one attempt.
    fn builder(
        &self,
        request: &OktaRequest,
        url: Url,
        authorization: String,
        retry_for: Option<&str>,
        retry_count: u32,
    ) -> reqwest::RequestBuilder {
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .timeout(self.timeout)
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, authorization);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        builder = match &request.body {
            Some(body) => builder.json(body),
            // Okta answers 411 to a POST/PUT without Content-Length.
            None if request.method != Method::GET && request.method != Method::DELETE => builder
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, HeaderValue::from_static("0")),
            None => builder,
        };
        if let Some(agent) = on_behalf_user_agent() {
            builder = builder.header(header::USER_AGENT, agent);
        }
        if let Some(original) = retry_for {
            builder = builder
                .header("x-okta-retry-for", original)
                .header("x-okta-retry-count", retry_count.to_string());
        }
        builder
    }

    /// Keeps the bucket's rate-limit headers for the next request, and warns when it runs low.
    async fn note_rate_limit(&self, bucket_key: &str, headers: &HeaderMap) {
        if let Some(limit) = rate_limit(headers) {
            if limit.limit > 0 && limit.remaining * 10 < limit.limit {
                tracing::warn!(
                    bucket = bucket_key,
                    remaining = limit.remaining,
                    limit = limit.limit,
                    "Okta rate limit nearly spent"
                );
            }
            self.rations.observe(bucket_key, limit).await;
            if let Ok(mut budget) = self.budget.lock() {
                budget.insert(bucket_key.to_string(), limit);
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        request: &OktaRequest,
        bucket_key: &str,
        (retry_for, retry_count): (Option<&str>, u32),
        bound: &mut bool,
    ) -> Result<OktaResponse<T>, (OktaError, Option<Duration>)> {
        let url = self.base.join(&request.path).map_err(|e| {
            (
                OktaError::new(OktaErrorKind::Transport, e.to_string()),
                None,
            )
        })?;
        let credential = self.authorization().await.map_err(|e| (e, None))?;
        *bound = credential.bound_token.is_some();
        let mut builder = self.builder(
            request,
            url.clone(),
            credential.authorization,
            retry_for,
            retry_count,
        );
        if let Some(token) = &credential.bound_token {
            let proof = self
                .api_proof(&request.method, &url, token)
                .map_err(|e| (e, None))?;
            builder = builder.header("DPoP", proof);
        }
        let response = builder.send().await.map_err(|e| {
            crate::metrics::okta_call(bucket_key, None);
            (transport_error(e), None)
        })?;
        let status = response.status();
        crate::metrics::okta_call(bucket_key, Some(status.as_u16()));
        let headers = response.headers().clone();
        let request_id = header_str(&headers, "x-okta-request-id").map(str::to_string);
        self.note_rate_limit(bucket_key, &headers).await;
        if let OktaAuth::OAuth(app) = &self.auth {
            app.dpop.note_nonce(Server::Api, &headers);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| (transport_error(e), None))?;
        if !status.is_success() {
            return Err(failure(status, &headers, &bytes, request_id));
        }
        let body_bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        let body = serde_json::from_slice::<T>(body_bytes).map_err(|e| {
            let mut err =
                OktaError::new(OktaErrorKind::Malformed, format!("unexpected answer: {e}"));
            err.status = Some(status.as_u16());
            err.request_id = request_id.clone();
            (err, None)
        })?;
        Ok(OktaResponse {
            body,
            request_id,
            next: next_link(&headers),
        })
    }
}

/// A failed call: Okta's error body, or the `error` of its `WWW-Authenticate: DPoP`
/// challenge (those answers have no body); for a 429, when to retry.
fn failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    request_id: Option<String>,
) -> (OktaError, Option<Duration>) {
    let reset = rate_limit(headers).map(|l| l.reset);
    let delay = (status == StatusCode::TOO_MANY_REQUESTS)
        .then(|| retry_delay(headers))
        .flatten();
    let challenge = super::dpop::challenge(headers).filter(|c| c.error.is_some());
    let error = match challenge {
        Some(c) => OktaError::from_challenge(
            status.as_u16(),
            c.error.unwrap_or_default(),
            c.description,
            request_id,
        ),
        None => OktaError::from_response(status.as_u16(), body, request_id, reset),
    };
    (error, delay)
}

/// A refused token request: Okta's OAuth `error` is the code (never its description).
fn token_refused(status: StatusCode, body: &[u8], request_id: Option<String>) -> OktaError {
    let detail: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = detail["error"].as_str().map(str::to_string);
    let mut e = OktaError::new(
        if status.is_server_error() {
            OktaErrorKind::Unavailable
        } else {
            OktaErrorKind::Unauthorized
        },
        format!(
            "service app token refused: {} {}",
            code.as_deref().unwrap_or(""),
            detail["error_description"].as_str().unwrap_or("")
        ),
    );
    e.status = Some(status.as_u16());
    e.code = code;
    e.request_id = request_id;
    e
}

/// The portal's own refusal to spend more of Okta's budget.
fn busy(b: super::budget::Busy) -> OktaError {
    let mut e = OktaError::new(OktaErrorKind::Busy, "the portal's Okta budget is spent");
    e.reset_at = Some(b.retry_after);
    e
}

fn transport_error(e: reqwest::Error) -> OktaError {
    if e.is_timeout() {
        OktaError::new(OktaErrorKind::Timeout, "Okta did not answer in time")
    } else {
        OktaError::new(OktaErrorKind::Transport, format!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dpop_key_is_made_at_start_and_is_never_the_service_apps_key() {
        use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
        let config: OktaConfig = serde_json::from_value(serde_json::json!({
            "org_url": "https://example.okta.com",
            "oauth": {
                "client_id": "0oaService1",
                "private_key": okta_sim::SERVICE_APP_KEY_PEM,
                "key_id": "k1",
            },
        }))
        .unwrap();
        let http = crate::http::http_client().unwrap();
        let client = OktaClient::new(http.clone(), &config).unwrap();
        let dpop = client.dpop().unwrap();
        assert_eq!(
            dpop.mode(),
            super::super::dpop::DpopMode::Auto,
            "the default"
        );
        assert!(!dpop.enabled(), "auto starts without proofs");
        let service =
            jsonwebtoken::EncodingKey::from_rsa_pem(okta_sim::SERVICE_APP_KEY_PEM.as_bytes())
                .unwrap();
        let service = Jwk::from_encoding_key(&service, jsonwebtoken::Algorithm::RS256)
            .unwrap()
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap();
        assert_ne!(dpop.key().thumbprint(), service);
        let again = OktaClient::new(http, &config).unwrap();
        assert_ne!(
            again.dpop().unwrap().key().thumbprint(),
            dpop.key().thumbprint(),
            "a new key at every start, kept nowhere"
        );
    }

    #[test]
    fn buckets_group_ids_together() {
        assert_eq!(bucket(&Method::GET, "/api/v1/users"), "GET /api/v1/users");
        assert_eq!(
            bucket(
                &Method::POST,
                "/api/v1/users/00u1a2b3c4D5e6F7g8h9/lifecycle/suspend"
            ),
            "POST /api/v1/users/{id}/lifecycle"
        );
        assert_eq!(
            bucket(&Method::GET, "/api/v1/users/00u1a2b3c4D5e6F7g8h9/groups"),
            "GET /api/v1/users/{id}"
        );
        assert_eq!(
            bucket(
                &Method::POST,
                "/api/v1/users/00u1a2b3c4D5e6F7g8h9/factors/ufs1a2b3c4D5e6F7g8h9/verify"
            ),
            "POST /api/v1/users/{id}/factors"
        );
        assert_eq!(
            bucket(&Method::GET, "/api/v1/groups/00g1a2b3c4D5e6F7g8h9/users"),
            "GET /api/v1/groups"
        );
        assert_eq!(
            bucket(
                &Method::PUT,
                "/api/v1/groups/00g1a2b3c4D5e6F7g8h9/users/00u1a2b3c4D5e6F7g8h9"
            ),
            "PUT /api/v1/groups/{id}/users/{userId}"
        );
        assert_eq!(
            bucket(&Method::GET, "/api/v1/users/ada%40example.com"),
            "GET /api/v1/users/{id}"
        );
        assert_eq!(
            bucket(&Method::GET, "/api/v1/users/ada"),
            "GET /api/v1/users/{id}",
            "a short login is still an id"
        );
    }

    #[test]
    fn next_link_is_found_among_several_link_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::LINK,
            HeaderValue::from_static("<https://o.example/api/v1/users?limit=2>; rel=\"self\""),
        );
        headers.append(
            header::LINK,
            HeaderValue::from_static(
                "<https://o.example/api/v1/users?after=00u2&limit=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&headers).unwrap().as_str(),
            "https://o.example/api/v1/users?after=00u2&limit=2"
        );
        let mut only_self = HeaderMap::new();
        only_self.append(
            header::LINK,
            HeaderValue::from_static("<https://o.example/x>; rel=\"self\""),
        );
        assert_eq!(next_link(&only_self), None);
    }

    #[test]
    fn retry_delay_follows_okta_sdks() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "date",
            HeaderValue::from_static("Sun, 29 Nov 2026 10:00:00 GMT"),
        );
        let date = httpdate_to_unix("Sun, 29 Nov 2026 10:00:00 GMT").unwrap();
        headers.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&(date + 3).to_string()).unwrap(),
        );
        assert_eq!(retry_delay(&headers), Some(Duration::from_secs(4)));
    }

    #[test]
    fn rate_limit_headers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
        headers.insert("x-rate-limit-remaining", HeaderValue::from_static("599"));
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("1800000000"));
        assert_eq!(
            rate_limit(&headers),
            Some(RateLimit {
                limit: 600,
                remaining: 599,
                reset: 1_800_000_000
            })
        );
    }
}
