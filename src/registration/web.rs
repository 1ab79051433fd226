//! The edge's HTTP front: the route table, its own request ids, request logging, security
//! headers, the body limit, CORS on the JSON endpoints and the few static files it serves.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::context::{Ctx, Shared, asset};
use super::{json, pages};
use crate::http::client_ip;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: Shared) -> Router {
    let limit = state.config.limits.max_body_bytes;
    let api = Router::new()
        .route("/v1/challenge", get(json::challenge))
        .route("/v1/register", post(json::register))
        .route("/v1/forgot-password", post(json::forgot_password))
        .layer(cors(&state.config.cors_origins));
    Router::new()
        .route("/", get(|| async { Redirect::to("/register") }))
        .route("/register", get(pages::register_page).post(pages::register))
        .route(
            "/forgot-password",
            get(pages::forgot_page).post(pages::forgot),
        )
        .route("/check-email", get(pages::check_email))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/static/{name}", get(asset))
        .merge(api)
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), context))
        .with_state(state)
}

/// The edge's `/metrics` (see `web::metrics` for the portal's): a 404 for clients outside
/// `metrics.allow`, for untrusted forwarding, and when metrics are off.
async fn metrics(State(state): State<Shared>, ctx: Ctx, request: Request) -> Response {
    let config = &state.config;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let readable = config.metrics.enabled
        && crate::metrics::may_read(
            &config.metrics,
            &config.trusted_proxies,
            peer,
            request.headers(),
        );
    match crate::metrics::recorder().filter(|_| readable) {
        Some(handle) => (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            handle.render(),
        )
            .into_response(),
        None => pages::not_found(ctx).await,
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// Request id, client address, security headers and one log line per request.
async fn context(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(a)| a.ip());
    let ctx = Ctx {
        request_id: uuid::Uuid::new_v4().to_string(),
        ip: client_ip(peer, request.headers(), &state.config.trusted_proxies),
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(ctx.clone());
    let mut response = next.run(request).await;
    secure(response.headers_mut(), &ctx.request_id, &state.public_base);
    tracing::info!(
        request_id = %ctx.request_id,
        client_ip = %ctx.ip,
        method = %method,
        path = ?path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "registration request"
    );
    response
}

fn secure(headers: &mut HeaderMap, request_id: &str, public_base: &str) {
    let cached = headers.contains_key(header::CACHE_CONTROL);
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(HeaderName::from_static("x-request-id"), request_id);
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    if public_base.starts_with("https://") {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    if !cached {
        set(header::CACHE_CONTROL, "no-store");
    }
}
