//! The plumbing of the Management API (`/api/v1/...`): error bodies, the request context
//! handed to handlers, authentication (SSWS and OAuth 2.0 for Okta), rate limits, fault
//! injection, request recording, and the 411 rule for bodiless POST/PUT.

// Helpers return the early HTTP response as their error; it is built once per request.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{SimState, random_token};

/// The id of the current request, as sent in `X-Okta-Request-Id` (request extension).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The service admin an SSWS token acts as (System Log actor).
pub const API_ADMIN_ID: &str = "00uPortalApiAdmin001";
pub const API_ADMIN_LOGIN: &str = "portal-api@example.com";
pub const API_ADMIN_NAME: &str = "Portal API Admin";

/// Who is calling the Management API.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An SSWS API token (`token_id` is the `00T…` id of the token).
    ApiToken { token_id: String },
    /// An access token of the org authorization server issued to a service app.
    Service {
        client_id: String,
        scopes: Vec<String>,
    },
}

/// What a Management API handler knows about its request (request extension).
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub request_id: String,
    pub caller: Caller,
    pub user_agent: String,
    pub ip: String,
    pub path: String,
    pub query: Option<String>,
}

impl ApiContext {
    /// The System Log `actor` for this caller.
    pub fn actor(&self) -> Value {
        match &self.caller {
            Caller::ApiToken { .. } => json!({
                "id": API_ADMIN_ID,
                "type": "User",
                "alternateId": API_ADMIN_LOGIN,
                "displayName": API_ADMIN_NAME,
                "detailEntry": null,
            }),
            Caller::Service { client_id, .. } => json!({
                "id": client_id,
                "type": "PublicClientApp",
                "alternateId": client_id,
                "displayName": client_id,
                "detailEntry": null,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// An Okta error response (OKTA-FACTS.md §2.1).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub summary: String,
    pub causes: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, summary: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            summary: summary.into(),
            causes: Vec::new(),
        }
    }

    pub fn with_causes(mut self, causes: Vec<String>) -> ApiError {
        self.causes = causes;
        self
    }

    /// 404 `E0000007` `Not found: Resource not found: {what} ({kind})`.
    pub fn not_found(what: &str, kind: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "E0000007",
            format!("Not found: Resource not found: {what} ({kind})"),
        )
    }

    pub fn user_not_found(id: &str) -> ApiError {
        ApiError::not_found(id, "User")
    }

    /// 400 `E0000001` with `field: message` causes; the summary names the first field.
    pub fn validation(causes: Vec<(String, String)>) -> ApiError {
        let first = causes.first().map(|(f, _)| f.clone()).unwrap_or_default();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000001",
            format!("Api validation failed: {first}"),
        )
        .with_causes(
            causes
                .into_iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect(),
        )
    }

    pub fn malformed_body() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000003",
            "The request body was not well-formed.",
        )
    }

    pub fn invalid_paging() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000029",
            "Invalid paging request.",
        )
    }

    pub fn invalid_search() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000031",
            "Invalid search criteria.",
        )
    }

    pub fn wrong_status() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "E0000038",
            "This operation is not allowed in the user's current status.",
        )
    }

    pub fn missing_parameter(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000028",
            "The request is missing a required parameter.",
        )
        .with_causes(vec![format!("{name}: The parameter is required.")])
    }

    pub fn no_permission() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
        )
    }

    pub fn rate_limited() -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
    }

    /// The error Okta sends for a given HTTP status (fault injection).
    pub fn for_status(status: StatusCode) -> ApiError {
        match status.as_u16() {
            400 => ApiError::new(status, "E0000001", "Api validation failed: request"),
            401 => ApiError::new(status, "E0000011", "Invalid token provided"),
            403 => ApiError::no_permission(),
            404 => ApiError::new(status, "E0000007", "Not found: Resource not found"),
            405 => ApiError::new(
                status,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
            ),
            409 => ApiError::new(
                status,
                "E0000112",
                "Cannot update this user because they are still being activated. Please try again once the activation process is complete.",
            ),
            429 => ApiError::rate_limited(),
            503 => ApiError::new(status, "E0000010", "Service is in read only mode"),
            _ => ApiError::new(status, "E0000009", "Internal Server Error"),
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "errorCode": self.code,
            "errorSummary": self.summary,
            "errorLink": self.code,
            "errorId": format!("oae{}", random_token(22)),
            "errorCauses": self
                .causes
                .iter()
                .map(|c| json!({ "errorSummary": c }))
                .collect::<Vec<_>>(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// 200 with an empty body (lifecycle operations that answer nothing).
pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------------
// Query strings

/// The query string as ordered pairs.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`false`, case-insensitive) with its default.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ApiError::validation(vec![(
                name.to_string(),
                "Invalid value: must be true or false".to_string(),
            )])),
        }
    }

    /// The same parameters with `after` replaced (or added) and `limit` set.
    pub fn with_cursor(&self, after: &str, limit: usize) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("after", after);
        out.append_pair("limit", &limit.to_string());
        for (k, v) in &self.0 {
            if k != "after" && k != "limit" {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }
}

/// Adds the `self` and `next` Link headers of a collection page (OKTA-FACTS.md §4.1).
pub fn add_links(
    response: &mut Response,
    base: &str,
    path: &str,
    query: Option<&str>,
    next: Option<String>,
) {
    let self_url = match query {
        Some(q) if !q.is_empty() => format!("{base}{path}?{q}"),
        _ => format!("{base}{path}"),
    };
    let mut values = vec![format!("<{self_url}>; rel=\"self\"")];
    if let Some(next_query) = next {
        values.push(format!("<{base}{path}?{next_query}>; rel=\"next\""));
    }
    for value in values {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::LINK, v);
        }
    }
}

/// A JSON collection response with its Link headers.
pub fn collection(
    state: &SimState,
    ctx: &ApiContext,
    items: Vec<Value>,
    next: Option<String>,
) -> Response {
    let mut response = axum::Json(Value::Array(items)).into_response();
    add_links(
        &mut response,
        state.base_url(),
        &ctx.path,
        ctx.query.as_deref(),
        next,
    );
    response
}

// ---------------------------------------------------------------------------------------
// Rate limits

/// The default ceiling of every bucket, per 60-second window.
pub const DEFAULT_RATE_LIMIT: u32 = 600;
const WINDOW_SECS: i64 = 60;

#[derive(Debug, Default)]
pub struct RateLimits {
    /// No bucket has a ceiling (`--rate-limit off`); answers still carry the headers.
    pub off: bool,
    pub default_limit: Option<u32>,
    pub limits: HashMap<String, u32>,
    /// Bucket → (window start, epoch seconds; requests counted in the window).
    windows: HashMap<String, (i64, u32)>,
    /// 429s answered because a bucket was spent, since start.
    pub refused: u64,
}

impl RateLimits {
    pub fn limit(&self, bucket: &str) -> u32 {
        if self.off {
            return u32::MAX;
        }
        self.limits
            .get(bucket)
            .copied()
            .unwrap_or(self.default_limit.unwrap_or(DEFAULT_RATE_LIMIT))
    }

    pub fn set(&mut self, bucket: &str, limit: u32) {
        self.limits.insert(bucket.to_string(), limit);
        self.windows.remove(bucket);
    }

    pub fn set_default(&mut self, limit: u32) {
        self.default_limit = Some(limit);
        self.windows.clear();
    }

    /// Counts one request; returns (limit, remaining, reset epoch seconds, allowed).
    fn hit(&mut self, bucket: &str, now: i64) -> RateDecision {
        let limit = self.limit(bucket);
        let window = self.windows.entry(bucket.to_string()).or_insert((now, 0));
        if now >= window.0 + WINDOW_SECS {
            *window = (now, 0);
        }
        let allowed = window.1 < limit;
        if allowed {
            window.1 += 1;
        } else {
            self.refused += 1;
        }
        RateDecision {
            limit,
            remaining: limit.saturating_sub(window.1),
            reset: window.0 + WINDOW_SECS,
            allowed,
        }
    }

    fn peek(&self, bucket: &str, now: i64) -> RateDecision {
        let limit = self.limit(bucket);
        let (start, count) = self
            .windows
            .get(bucket)
            .copied()
            .filter(|(start, _)| now < start + WINDOW_SECS)
            .unwrap_or((now, 0));
        RateDecision {
            limit,
            remaining: limit.saturating_sub(count),
            reset: start + WINDOW_SECS,
            allowed: count < limit,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RateDecision {
    limit: u32,
    remaining: u32,
    reset: i64,
    allowed: bool,
}

fn set_rate_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset: i64) {
    for (name, value) in [
        ("x-rate-limit-limit", limit.to_string()),
        ("x-rate-limit-remaining", remaining.to_string()),
        ("x-rate-limit-reset", reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

/// The rate-limit bucket of a Management API request, named `"{METHOD} {path template}"`.
///
/// | Bucket | Requests |
/// |---|---|
/// | `GET /api/v1/users` | list, find (`q`), filter, search |
/// | `POST /api/v1/users` | create |
/// | `GET /api/v1/users/{id}` | get one user, `GET /api/v1/users/{id}/groups` |
/// | `POST /api/v1/users/{id}` | partial update |
/// | `PUT /api/v1/users/{id}` | full update |
/// | `DELETE /api/v1/users/{id}` | delete (both steps) |
/// | `POST /api/v1/users/{id}/lifecycle` | every `/lifecycle/*` operation |
/// | `DELETE /api/v1/users/{id}/sessions` | clear sessions |
/// | `GET /api/v1/users/{id}/factors` | list, catalog, questions, get one factor, push transaction, QR code |
/// | `POST /api/v1/users/{id}/factors` | enroll, activate (and its poll), resend, verify |
/// | `DELETE /api/v1/users/{id}/factors` | unenroll a factor |
/// | `GET /api/v1/groups` | list groups, get a group, list its members |
/// | `PUT /api/v1/groups/{id}/users/{userId}` | add a member |
/// | `DELETE /api/v1/groups/{id}/users/{userId}` | remove a member |
/// | `GET /api/v1/logs` | System Log |
/// | `{METHOD} /api/v1` | anything else |
pub fn bucket_for(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let m = method.as_str();
    let template = match (m, segments.as_slice()) {
        (_, ["users"]) if m == "GET" || m == "POST" => "/api/v1/users",
        ("GET", ["users", _]) | ("GET", ["users", _, "groups"]) => "/api/v1/users/{id}",
        ("POST" | "PUT" | "DELETE", ["users", _]) => "/api/v1/users/{id}",
        ("POST", ["users", _, "lifecycle", _]) => "/api/v1/users/{id}/lifecycle",
        ("DELETE", ["users", _, "sessions"]) => "/api/v1/users/{id}/sessions",
        ("GET" | "POST" | "DELETE", ["users", _, "factors", ..]) => "/api/v1/users/{id}/factors",
        ("GET", ["groups", ..]) => "/api/v1/groups",
        ("PUT" | "DELETE", ["groups", _, "users", _]) => "/api/v1/groups/{id}/users/{userId}",
        ("GET", ["logs"]) => "/api/v1/logs",
        _ => "/api/v1",
    };
    format!("{m} {template}")
}

/// The OAuth scope a Management API request needs (OKTA-FACTS.md §1.3).
pub fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let read = *method == Method::GET || *method == Method::HEAD;
    if path == "/api/v1/users" || path.starts_with("/api/v1/users/") {
        Some(if read {
            "okta.users.read"
        } else {
            "okta.users.manage"
        })
    } else if path == "/api/v1/groups" || path.starts_with("/api/v1/groups/") {
        Some(if read {
            "okta.groups.read"
        } else {
            "okta.groups.manage"
        })
    } else if path == "/api/v1/logs" {
        Some("okta.logs.read")
    } else {
        None
    }
}

fn scope_satisfied(granted: &[String], required: &str) -> bool {
    if granted.iter().any(|s| s == required) {
        return true;
    }
    // `okta.x.manage` includes `okta.x.read`.
    required
        .strip_suffix(".read")
        .is_some_and(|resource| granted.iter().any(|s| *s == format!("{resource}.manage")))
}

// ---------------------------------------------------------------------------------------
// Faults

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Waits, then answers normally.
    Latency(Duration),
    /// Answers with this status and an Okta error body (e.g. 500 `E0000009`).
    Status(u16),
    /// 429 `E0000047` with rate-limit headers and a reset two seconds ahead.
    RateLimited,
    /// Never answers in any sane time (sleeps 60 s, then 504).
    Hang,
    /// 200 with a body that is not valid JSON.
    MalformedBody,
    /// Tampers with the request's DPoP proof on the way in, as a hostile network would; the
    /// request is then checked as any other.
    Dpop(DpopTamper),
}

/// What a [`FaultKind::Dpop`] does to a request's proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopTamper {
    /// Sends the proof of the previous request to the same method and path instead.
    Replay,
    /// Removes the `DPoP` header.
    Drop,
    /// Re-signs the proof's claims with a key of the simulator's (the header names that key).
    ForeignKey,
}

/// A fault applied to the next `count` requests whose method matches (`"*"` for any) and
/// whose path starts with `path_prefix`. Faults run before the handler: a faulted request
/// changes nothing (except `Latency`, which then answers normally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub method: String,
    pub path_prefix: String,
    pub kind: FaultKind,
    pub count: usize,
    /// Rate: only every `every`-th matching request fails (1 = each one).
    pub every: usize,
    seen: usize,
}

impl Fault {
    /// A fault for the next matching request.
    pub fn new(method: &str, path_prefix: &str, kind: FaultKind) -> Fault {
        Fault {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            kind,
            count: 1,
            every: 1,
            seen: 0,
        }
    }

    /// A deterministic rate: only one matching request in `n` fails (until `count` have).
    pub fn every(mut self, n: usize) -> Fault {
        self.every = n.max(1);
        self
    }

    /// Applies to the next `count` matching requests instead of one.
    pub fn times(mut self, count: usize) -> Fault {
        self.count = count;
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method.as_str()))
            && path.starts_with(&self.path_prefix)
    }
}

// ---------------------------------------------------------------------------------------
// Request recording

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub request_id: String,
    /// The body of a POST or PUT (up to [`MAX_RECORDED_BODY`] bytes), so that tests can tell
    /// which user a create was for.
    pub body: Option<Bytes>,
}

/// The largest body a recorded request keeps; a larger one (or one without `Content-Length`)
/// is passed on untouched and recorded without its body.
const MAX_RECORDED_BODY: usize = 1 << 20;

/// Reads a POST or PUT body to record it, and gives the request back with the same body.
async fn with_body(request: Request) -> (Request, Option<Bytes>) {
    let small = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n <= MAX_RECORDED_BODY);
    if !matches!(*request.method(), Method::POST | Method::PUT) || !small {
        return (request, None);
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
        Ok(bytes) => (
            Request::from_parts(parts, Body::from(bytes.clone())),
            Some(bytes),
        ),
        Err(_) => (Request::from_parts(parts, Body::empty()), None),
    }
}

const MAX_RECORDED: usize = 5000;

/// Operational state: faults, rate limits, recorded requests.
#[derive(Debug, Default)]
pub struct Ops {
    pub faults: Vec<Fault>,
    /// Added to every Management API answer (`--latency-ms`).
    pub latency: Option<Duration>,
    pub rate_limits: RateLimits,
    pub recorded: VecDeque<RecordedRequest>,
    pub counts: HashMap<(String, String), usize>,
}

impl Ops {
    fn record(&mut self, request: RecordedRequest) {
        *self
            .counts
            .entry((request.method.clone(), request.path.clone()))
            .or_default() += 1;
        if self.recorded.len() >= MAX_RECORDED {
            self.recorded.pop_front();
        }
        self.recorded.push_back(request);
    }

    fn take_fault(&mut self, method: &Method, path: &str) -> Option<FaultKind> {
        let index = self
            .faults
            .iter()
            .position(|f| f.count > 0 && f.matches(method, path))?;
        let fault = &mut self.faults[index];
        fault.seen += 1;
        if !fault.seen.is_multiple_of(fault.every) {
            return None;
        }
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    pub fn request_count(&self, method: &str, path_prefix: &str) -> usize {
        self.counts
            .iter()
            .filter(|((m, p), _)| {
                (method == "*" || m.eq_ignore_ascii_case(method)) && p.starts_with(path_prefix)
            })
            .map(|(_, n)| *n)
            .sum()
    }

    pub fn matching(&self, method: &str, path_prefix: &str) -> Vec<RecordedRequest> {
        self.recorded
            .iter()
            .filter(|r| {
                (method == "*" || r.method.eq_ignore_ascii_case(method))
                    && r.path.starts_with(path_prefix)
            })
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Middleware

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn is_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// Cache headers Okta sends on API responses.
fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

/// Records the request, applies injected faults, and for `/api/v1` enforces rate limits,
/// the 411 rule and authentication before the handler runs.
pub async fn gate(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let (mut request, body) = with_body(request).await;
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(super::request_id);
    let fault = {
        let mut ops = state.ops();
        ops.record(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            headers: request.headers().clone(),
            request_id: request_id.clone(),
            body,
        });
        ops.take_fault(&method, &path)
    };
    let api = is_api(&path);
    let bucket = bucket_for(&method, &path);
    let latency = state.ops().latency.filter(|_| api);
    if let Some(delay) = latency
        && !state.sleep_unless_stopped(delay).await
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(kind) = fault {
        match kind {
            FaultKind::Latency(delay) => {
                if !state.sleep_unless_stopped(delay).await {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
            FaultKind::Dpop(tamper) => tamper_dpop(&state, &mut request, tamper),
            other => return fault_response(&state, other, api, &bucket).await,
        }
    }
    if !api {
        return next.run(request).await;
    }

    let decision = state.ops().rate_limits.hit(&bucket, now_epoch());
    let mut response = if !decision.allowed {
        ApiError::rate_limited().into_response()
    } else if let Some(r) = length_required(&request) {
        r
    } else {
        match authenticate(&state, &request, &method, &path) {
            Err(r) => r,
            Ok(caller) => {
                let user_agent = request
                    .headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let ip = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
                    .unwrap_or_else(|| "127.0.0.1".to_string());
                request.extensions_mut().insert(ApiContext {
                    request_id,
                    caller,
                    user_agent,
                    ip,
                    path: path.clone(),
                    query,
                });
                let response = next.run(request).await;
                okta_defaults(response, &path)
            }
        }
    };
    let headers = response.headers_mut();
    set_rate_headers(headers, decision.limit, decision.remaining, decision.reset);
    no_cache(headers);
    response
}

/// Replaces axum's bare 404/405 with Okta's error bodies.
fn okta_defaults(response: Response, path: &str) -> Response {
    let bare = !response.headers().contains_key(header::CONTENT_TYPE);
    match response.status() {
        StatusCode::NOT_FOUND if bare => ApiError::new(
            StatusCode::NOT_FOUND,
            "E0000007",
            format!("Not found: Resource not found: {path} (GenericResource)"),
        )
        .into_response(),
        StatusCode::METHOD_NOT_ALLOWED if bare => {
            let allow = response.headers().get(header::ALLOW).cloned();
            let mut r = ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED).into_response();
            if let Some(allow) = allow {
                r.headers_mut().insert(header::ALLOW, allow);
            }
            r
        }
        _ => response,
    }
}

/// A POST/PUT without `Content-Length` or `Transfer-Encoding` (HTTP/1) → 411.
fn length_required(request: &Request) -> Option<Response> {
    let needs_length = matches!(*request.method(), Method::POST | Method::PUT);
    let http1 = request.version() <= http::Version::HTTP_11;
    let headers = request.headers();
    if needs_length
        && http1
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
    {
        let body = "<html><head><title>411 Length Required</title></head><body><h1>411 Length Required</h1></body></html>";
        return Some(
            (
                StatusCode::LENGTH_REQUIRED,
                [(header::CONTENT_TYPE, "text/html")],
                body,
            )
                .into_response(),
        );
    }
    None
}

fn authenticate(
    state: &SimState,
    request: &Request,
    method: &Method,
    path: &str,
) -> Result<Caller, Response> {
    let invalid_session =
        || ApiError::new(StatusCode::FORBIDDEN, "E0000005", "Invalid session").into_response();
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(invalid_session());
    };
    let value = value.trim();
    if let Some(token) = value.strip_prefix("SSWS ") {
        let token = token.trim();
        if !token.is_empty() && state.store().api_tokens.iter().any(|t| t == token) {
            return Ok(Caller::ApiToken {
                token_id: api_token_id(token),
            });
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        )
        .into_response());
    }
    let oauth = value
        .split_once(' ')
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")
        })
        .map(|(scheme, token)| (scheme.eq_ignore_ascii_case("dpop"), token.trim()))
        .filter(|(_, t)| !t.is_empty());
    let Some((dpop_scheme, token)) = oauth else {
        return Err(invalid_session());
    };
    let Some(verified) = super::org_as::verify_access_token(state, token) else {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            r#"Bearer authorization_uri="{base}/oauth2/v1/authorize", realm="{base}", error="invalid_token", error_description="The access token is invalid.", resource="{path}""#,
            base = state.base_url()
        )) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return Err(r);
    };
    check_binding(state, request, token, dpop_scheme, &verified)
        .map_err(|refusal| dpop_challenge(state, method, path, &refusal))?;
    let super::org_as::OrgToken {
        client_id, scopes, ..
    } = verified;
    if let Some(required) = required_scope(method, path)
        && !scope_satisfied(&scopes, required)
    {
        let mut r = StatusCode::FORBIDDEN.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            r#"Bearer authorization_uri="{base}/oauth2/v1/authorize", realm="{base}", scope="{required}", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="{path}""#,
            base = state.base_url()
        )) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return Err(r);
    }
    Ok(Caller::Service { client_id, scopes })
}

/// DPoP at the Management API: a DPoP-bound token only with the `DPoP` scheme and a valid
/// proof (its key the token's `cnf.jkt`, its `ath` the token's hash); a bearer token of an
/// app that requires DPoP is refused as a call without a proof.
fn check_binding(
    state: &SimState,
    request: &Request,
    token: &str,
    dpop_scheme: bool,
    verified: &super::org_as::OrgToken,
) -> Result<(), super::dpop::Refusal> {
    let jkt = match (&verified.jkt, dpop_scheme) {
        (None, false) if !verified.app_requires_dpop => return Ok(()),
        (Some(jkt), true) => jkt,
        (None, true) => {
            return Err(super::dpop::Refusal {
                error: "invalid_token",
                description: "The access token is not DPoP-bound.",
            });
        }
        _ => return Err(super::dpop::MISSING),
    };
    let mut store = state.store();
    let expect = super::dpop::Expect {
        method: request.method(),
        htu: super::dpop::htu(state.base_url(), request.uri().path()),
        token: Some((token, jkt)),
        nonce_required: store.dpop.api_requires_nonce,
        nonce_description: "Resource server requires nonce in DPoP proof.",
    };
    super::dpop::check(&mut store, request.headers(), &expect).map(|_| ())
}

/// Okta's answer to a refused proof: 400 (401 for `use_dpop_nonce` and `invalid_token`, the
/// former with `DPoP-Nonce`), no body, a `WWW-Authenticate: DPoP …` challenge.
fn dpop_challenge(
    state: &SimState,
    method: &Method,
    path: &str,
    refusal: &super::dpop::Refusal,
) -> Response {
    let status = match refusal.error {
        "invalid_dpop_proof" => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut r = status.into_response();
    let scope = required_scope(method, path).unwrap_or_default();
    let challenge = format!(
        r#"DPoP algs="{algs}", authorization_uri="{base}/oauth2/v1/authorize", realm="{base}", scope="{scope}", error="{error}", error_description="{description}", resource="{path}""#,
        algs = super::dpop::ALGS,
        base = state.base_url(),
        error = refusal.error,
        description = refusal.description,
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if refusal.error == "use_dpop_nonce"
        && let Some(nonce) = super::dpop::nonce_header(&state.store())
    {
        r.headers_mut().insert("dpop-nonce", nonce);
    }
    r
}

/// Applies a [`DpopTamper`] to a request before it is authenticated.
fn tamper_dpop(state: &SimState, request: &mut Request, tamper: DpopTamper) {
    let (method, path) = (
        request.method().to_string(),
        request.uri().path().to_string(),
    );
    let headers = request.headers_mut();
    match tamper {
        DpopTamper::Drop => {
            headers.remove("dpop");
        }
        DpopTamper::Replay => {
            let previous = state
                .ops()
                .recorded
                .iter()
                .rev()
                .skip(1)
                .filter(|r| r.method == method && r.path == path)
                .find_map(|r| r.headers.get("dpop").cloned());
            if let Some(previous) = previous {
                headers.insert("dpop", previous);
            }
        }
        DpopTamper::ForeignKey => {
            let claims = headers
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .and_then(|p| jsonwebtoken::dangerous::insecure_decode_claims::<Value>(p).ok());
            let forged = claims.and_then(|c| state.keys().rogue.sign_dpop_proof(&c).ok());
            if let Some(v) = forged.and_then(|f| HeaderValue::from_str(&f).ok()) {
                headers.insert("dpop", v);
            }
        }
    }
}

/// The `00T…` id of an API token (System Log `transaction.detail.requestApiTokenId`).
pub fn api_token_id(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    super::store::okta_id("00T", u64::from_be_bytes(n))
}

async fn fault_response(state: &SimState, kind: FaultKind, api: bool, bucket: &str) -> Response {
    let mut response = match kind {
        FaultKind::Latency(_) | FaultKind::Dpop(_) => StatusCode::OK.into_response(),
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if api {
                ApiError::for_status(status).into_response()
            } else {
                oauth_fault(status)
            }
        }
        FaultKind::RateLimited => {
            let mut r = if api {
                ApiError::rate_limited().into_response()
            } else {
                oauth_fault(StatusCode::TOO_MANY_REQUESTS)
            };
            let limit = state.ops().rate_limits.limit(bucket);
            set_rate_headers(r.headers_mut(), limit, 0, now_epoch() + 2);
            return r;
        }
        FaultKind::Hang => {
            state.sleep_unless_stopped(Duration::from_secs(60)).await;
            if api {
                ApiError::for_status(StatusCode::GATEWAY_TIMEOUT).into_response()
            } else {
                oauth_fault(StatusCode::GATEWAY_TIMEOUT)
            }
        }
        FaultKind::MalformedBody => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"id":"00u"#))
            .unwrap_or_else(|_| StatusCode::OK.into_response()),
    };
    if api {
        let decision = state.ops().rate_limits.peek(bucket, now_epoch());
        set_rate_headers(
            response.headers_mut(),
            decision.limit,
            decision.remaining,
            decision.reset,
        );
        no_cache(response.headers_mut());
    }
    response
}

fn oauth_fault(status: StatusCode) -> Response {
    let (error, description) = match status.as_u16() {
        429 => (
            "slow_down",
            "API call exceeded rate limit due to too many requests.",
        ),
        503 => (
            "temporarily_unavailable",
            "The service is temporarily unavailable.",
        ),
        400..=499 => ("invalid_request", "The request is invalid."),
        _ => ("server_error", "The server encountered an internal error."),
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let b = |m: Method, p: &str| bucket_for(&m, p);
        assert_eq!(b(Method::GET, "/api/v1/users"), "GET /api/v1/users");
        assert_eq!(b(Method::POST, "/api/v1/users"), "POST /api/v1/users");
        assert_eq!(
            b(Method::GET, "/api/v1/users/00u1/groups"),
            "GET /api/v1/users/{id}"
        );
        assert_eq!(
            b(Method::POST, "/api/v1/users/00u1/lifecycle/suspend"),
            "POST /api/v1/users/{id}/lifecycle"
        );
        assert_eq!(
            b(Method::PUT, "/api/v1/groups/00g1/users/00u1"),
            "PUT /api/v1/groups/{id}/users/{userId}"
        );
        assert_eq!(b(Method::GET, "/api/v1/logs"), "GET /api/v1/logs");
        assert_eq!(
            b(Method::GET, "/api/v1/users/00u1/factors/catalog"),
            "GET /api/v1/users/{id}/factors"
        );
        assert_eq!(
            b(
                Method::POST,
                "/api/v1/users/00u1/factors/sms1/lifecycle/activate"
            ),
            "POST /api/v1/users/{id}/factors"
        );
        assert_eq!(
            b(Method::DELETE, "/api/v1/users/00u1/factors/sms1"),
            "DELETE /api/v1/users/{id}/factors"
        );
        assert_eq!(b(Method::GET, "/api/v1/apps"), "GET /api/v1");
    }

    #[test]
    fn manage_includes_read() {
        let granted = vec!["okta.users.manage".to_string()];
        assert!(scope_satisfied(&granted, "okta.users.read"));
        assert!(scope_satisfied(&granted, "okta.users.manage"));
        assert!(!scope_satisfied(&granted, "okta.groups.read"));
        assert!(!scope_satisfied(
            &["okta.users.read".to_string()],
            "okta.users.manage"
        ));
    }

    #[test]
    fn rate_window() {
        let mut limits = RateLimits::default();
        limits.set("GET /api/v1/users", 2);
        let first = limits.hit("GET /api/v1/users", 1000);
        assert!(first.allowed);
        assert_eq!((first.limit, first.remaining, first.reset), (2, 1, 1060));
        assert!(limits.hit("GET /api/v1/users", 1001).allowed);
        let third = limits.hit("GET /api/v1/users", 1002);
        assert!(!third.allowed);
        assert_eq!(third.remaining, 0);
        assert!(limits.hit("GET /api/v1/users", 1060).allowed);
    }
}
