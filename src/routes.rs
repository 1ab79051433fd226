//! The whole route table and the middleware stack, in one place.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::csrf::CsrfLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::SessionManagerLayer;

use crate::auth::csrf;
use crate::auth::extract::require_session;
use crate::error::AppError;
use crate::session_store::DbSessionStore;
use crate::state::AppState;
use crate::web::{activity, assets, auth, errors, pages, security, users};

/// The Content-Security-Policy: no inline script or style, nothing from other origins,
/// forms may only post here (and follow the sign-out redirect to the provider).
pub fn content_security_policy(provider_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; form-action 'self' {provider_origin}; \
         frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )
}

pub fn router(state: AppState, sessions: SessionManagerLayer<DbSessionStore>) -> Router {
    let oidc = &state.config.oidc;
    // Pages and sign-in: cookies, sessions and CSRF tokens.
    // Every page behind sign-in: the session check runs before the handler (a backstop;
    // each handler's extractor still verifies the session fully).
    let signed_in = Router::new()
        .route("/", get(pages::home))
        .route("/me", get(pages::me))
        .route("/activity", get(activity::index))
        .route("/activity/agents/{sub}", get(activity::agent_timeline))
        .route("/activity/agents/{sub}/lift", post(activity::lift))
        .route("/activity/charts", get(activity::charts))
        .route("/activity/export.csv", get(activity::export_csv))
        .route("/activity/export.jsonl", get(activity::export_jsonl))
        .route("/activity/integrity", get(activity::integrity))
        .merge(users::routes())
        .route_layer(from_fn(require_session));
    let browser = signed_in
        .route("/auth/login", get(auth::login))
        .route(&oidc.redirect_path, get(auth::callback))
        .route("/auth/logout", post(auth::logout))
        .route(&oidc.post_logout_path, get(auth::signed_out))
        .layer(from_fn(csrf::verify))
        .layer(sessions);

    let csp = content_security_policy(&state.oidc.issuer_origin());
    let header = |name: HeaderName, value: &str| {
        SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
        )
    };

    let http = std::sync::Arc::new(state.config.http.clone());
    let hsts = http.hsts(&state.public_base);
    let router = Router::new()
        .merge(browser)
        .nest("/api", crate::api::router(&state))
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz))
        .merge(crate::web::metrics::routes(&state))
        .route("/static/{name}", get(assets::serve))
        .fallback(errors::not_found)
        .layer(from_fn_with_state(http.clone(), security::timeout))
        // Browser-level CSRF check (Sec-Fetch-Site / Origin); the token check is above.
        .layer(CsrfLayer::new().with_rejection_response(|_| AppError::Csrf.into_response()))
        .layer(from_fn(errors::render_errors))
        .layer(header(header::CONTENT_SECURITY_POLICY, &csp))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(header::CACHE_CONTROL, "no-store"))
        .layer(header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(header(header::VARY, "HX-Request"));
    let router = match hsts {
        Some(value) => router.layer(header(header::STRICT_TRANSPORT_SECURITY, &value)),
        None => router,
    };
    router
        .layer(
            // Only the path is logged: query strings carry authorization codes.
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let request_id = request
                    .headers()
                    .get(security::REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = ?request.uri().path(),
                    request_id = ?request_id,
                )
            }),
        )
        .layer(from_fn_with_state(http, security::request_id))
        .layer(from_fn(security::requester_scope))
        .layer(crate::web::metrics::layer())
        .with_state(state)
}
