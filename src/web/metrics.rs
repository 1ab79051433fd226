//! `/metrics`: the Prometheus text for the clients `[metrics] allow` names, and the layer that
//! times every request by route. Everyone else (and everyone when `[metrics] enabled = false`)
//! gets the portal's usual 404 page. No session is read or written and nothing is audited.
//!
//! The client is the peer, or, when the peer is one of `[http] trusted_proxies`, the address
//! that proxy put in `X-Forwarded-For`. A request that carries `X-Forwarded-For` or `Forwarded`
//! from a peer that is not a trusted proxy is refused: it came through a proxy the portal does
//! not know, so the peer's address says nothing about the client.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_prometheus::metrics_exporter_prometheus::PrometheusHandle;
use axum_prometheus::{EndpointLabel, PrometheusMetricLayer, PrometheusMetricLayerBuilder};

use crate::cluster::Shared;
use crate::error::AppError;
use crate::metrics::{MetricsConfig, PREFIX};
use crate::state::AppState;

#[derive(Clone)]
struct Exposure {
    config: Arc<MetricsConfig>,
    trusted: Arc<Vec<IpAddr>>,
    /// None when metrics are off (or another recorder owns the process).
    handle: Option<PrometheusHandle>,
    shared: Shared,
}

/// The `/metrics` route, with its own state (merge it into the router).
pub fn routes<S: Clone + Send + Sync + 'static>(state: &AppState) -> Router<S> {
    let config = state.config.metrics.clone();
    let exposure = Exposure {
        handle: config.enabled.then(crate::metrics::recorder).flatten(),
        config: Arc::new(config),
        trusted: Arc::new(state.config.http.trusted_proxies.clone()),
        shared: state.shared.clone(),
    };
    Router::new()
        .route("/metrics", get(serve))
        .with_state(exposure)
}

/// Times every request by its route template (`/users/{id}`, never the path asked for; a path
/// no route matches is `unmatched`) and status: `admin_portal_http_requests_*`. Built once per
/// process (the layer's names are global).
pub fn layer() -> PrometheusMetricLayer<'static> {
    static LAYER: OnceLock<PrometheusMetricLayer<'static>> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            PrometheusMetricLayerBuilder::new()
                .with_prefix(PREFIX)
                .with_ignore_patterns(&["/metrics"])
                .with_endpoint_label_type(EndpointLabel::MatchedPathWithFallbackFn(unmatched))
                .build()
        })
        .clone()
}

fn unmatched(_path: &str) -> String {
    "unmatched".to_string()
}

async fn serve(State(exposure): State<Exposure>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let readable =
        crate::metrics::may_read(&exposure.config, &exposure.trusted, peer, request.headers());
    let Some(handle) = exposure.handle.as_ref().filter(|_| readable) else {
        return AppError::NotFound.into_response();
    };
    crate::metrics::cluster_health(exposure.shared.probe().await.as_str());
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::metrics_client;
    use axum::http::HeaderMap;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_peer_or_what_a_trusted_proxy_says() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            metrics_client(ip("127.0.0.1"), &headers, &[]),
            Some(ip("127.0.0.1"))
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(
            metrics_client(ip("127.0.0.1"), &headers, &[]),
            None,
            "forwarded by a proxy the portal does not know"
        );
        assert_eq!(
            metrics_client(ip("127.0.0.1"), &headers, &[ip("127.0.0.1")]),
            Some(ip("203.0.113.9"))
        );
        let mut rfc = HeaderMap::new();
        rfc.insert(
            header::FORWARDED,
            HeaderValue::from_static("for=203.0.113.9"),
        );
        assert_eq!(metrics_client(ip("127.0.0.1"), &rfc, &[]), None);
    }
}
