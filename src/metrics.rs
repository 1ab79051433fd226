//! What the portal counts, exposed at `/metrics` in Prometheus' text format (see
//! `web::metrics` for the endpoint and who may read it).
//!
//! The counters are recorded with the `metrics` facade at the place each event happens (the
//! Okta client, the budget, the read cache, the limiters); without an installed recorder
//! (`[metrics] enabled = false`) every call here does nothing. The Prometheus recorder is
//! global to the process, so it is built once ([`recorder`]) however many applications the
//! process starts (the test suite starts many).
//!
//! Every label value is bounded: Okta buckets are the normalised names of `okta::client`
//! (never a raw path), statuses are numbers or `error`, kinds are fixed words.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use ipnet::IpNet;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// The prefix of every metric name.
pub const PREFIX: &str = "admin_portal";

pub const HTTP_DURATION: &str = "admin_portal_http_requests_duration_seconds";
pub const OKTA_CALLS: &str = "admin_portal_okta_calls_total";
pub const OKTA_BUDGET_REMAINING: &str = "admin_portal_okta_budget_remaining";
pub const OKTA_BUDGET_LIMIT: &str = "admin_portal_okta_budget_limit";
pub const OKTA_BUDGET_WAIT: &str = "admin_portal_okta_budget_wait_seconds";
pub const OKTA_BUDGET_REFUSALS: &str = "admin_portal_okta_budget_refusals_total";
pub const OKTA_COALESCED: &str = "admin_portal_okta_coalesced_total";
pub const SEARCH_CACHE: &str = "admin_portal_search_cache_total";
pub const RATE_LIMITED: &str = "admin_portal_rate_limit_refusals_total";
pub const CLUSTER_HEALTH: &str = "admin_portal_cluster_health";

/// Seconds: the buckets of every latency histogram (HTTP requests and budget waits).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `[metrics]`: whether `/metrics` answers, and to whom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record and serve metrics (default true). False: `/metrics` is a 404 and nothing is
    /// recorded.
    pub enabled: bool,
    /// Client networks that may read `/metrics` (CIDR, e.g. `10.0.0.0/8`); default loopback
    /// only. Everyone else gets a 404.
    pub allow: Vec<IpNet>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            allow: loopback(),
        }
    }
}

#[allow(clippy::expect_used, reason = "literal networks always parse")]
fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| n.parse().expect("a literal network"))
        .collect()
}

impl MetricsConfig {
    /// Whether a client at `ip` may read the metrics.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.enabled && self.allow.iter().any(|net| net.contains(&ip))
    }
}

/// The client address `/metrics` judges: the peer, or what a trusted proxy reports in
/// `X-Forwarded-For`; None when a request was forwarded by a proxy that is not trusted (the
/// peer's address then says nothing about the client).
pub fn metrics_client(
    peer: IpAddr,
    headers: &http::HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    if trusted.contains(&peer) {
        return Some(crate::http::client_ip(peer, headers, trusted));
    }
    let forwarded =
        headers.contains_key("x-forwarded-for") || headers.contains_key(http::header::FORWARDED);
    (!forwarded).then_some(peer)
}

/// Whether a request from `peer` may read the metrics (never when they are off).
pub fn may_read(
    config: &MetricsConfig,
    trusted: &[IpAddr],
    peer: Option<IpAddr>,
    headers: &http::HeaderMap,
) -> bool {
    peer.and_then(|peer| metrics_client(peer, headers, trusted))
        .is_some_and(|client| config.allows(client))
}

/// The content type of the metrics text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process' Prometheus recorder, installed on first use. `None` when another recorder
/// was installed before (then the portal's metrics go there).
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .and_then(|b| b.install_recorder());
            match built {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the metrics recorder could not be installed");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        OKTA_CALLS,
        "Calls sent to Okta, by bucket and HTTP status (error: no answer)."
    );
    describe_gauge!(
        OKTA_BUDGET_REMAINING,
        "Okta's X-Rate-Limit-Remaining for the bucket at its last answer."
    );
    describe_gauge!(
        OKTA_BUDGET_LIMIT,
        "Okta's X-Rate-Limit-Limit for the bucket at its last answer."
    );
    describe_histogram!(
        OKTA_BUDGET_WAIT,
        metrics::Unit::Seconds,
        "Time calls waited for the portal's Okta budget, by bucket and kind."
    );
    describe_counter!(
        OKTA_BUDGET_REFUSALS,
        "Calls the portal refused to send to Okta (okta_busy), by kind."
    );
    describe_counter!(
        OKTA_COALESCED,
        "Reads answered by an identical call already in flight, by read."
    );
    describe_counter!(
        SEARCH_CACHE,
        "Search pages asked for, by result (hit/miss)."
    );
    describe_counter!(RATE_LIMITED, "Requests refused by the portal's own limits.");
    describe_gauge!(
        CLUSTER_HEALTH,
        "1 for the cluster's current state (local, ok, degraded), 0 for the others."
    );
}

/// One answer (or failure to answer) from Okta: `status` is the HTTP status, or None when no
/// answer came (timeout, connection refused).
pub fn okta_call(bucket: &str, status: Option<u16>) {
    let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
    metrics::counter!(OKTA_CALLS, "bucket" => bucket.to_string(), "status" => status).increment(1);
}

/// Okta's `X-Rate-Limit-Limit` and `-Remaining` for a bucket, from its latest answer.
pub fn okta_budget(bucket: &str, limit: u64, remaining: u64) {
    metrics::gauge!(OKTA_BUDGET_LIMIT, "bucket" => bucket.to_string()).set(limit as f64);
    metrics::gauge!(OKTA_BUDGET_REMAINING, "bucket" => bucket.to_string()).set(remaining as f64);
}

/// A call that had to wait for the budget, `waited` long (whether it then went or not).
pub fn budget_wait(bucket: &str, kind: &'static str, waited: Duration) {
    metrics::histogram!(OKTA_BUDGET_WAIT, "bucket" => bucket.to_string(), "kind" => kind)
        .record(waited.as_secs_f64());
}

/// A call refused because the budget (or the concurrency cap) is spent.
pub fn budget_refused(bucket: &str, kind: &'static str) {
    metrics::counter!(OKTA_BUDGET_REFUSALS, "bucket" => bucket.to_string(), "kind" => kind)
        .increment(1);
}

/// A read answered by an identical call in flight (`read`: `search` or `user`).
pub fn coalesced(read: &'static str) {
    metrics::counter!(OKTA_COALESCED, "read" => read).increment(1);
}

/// A search page served from the cache (hit) or asked of Okta (miss).
pub fn search_cache(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!(SEARCH_CACHE, "result" => result).increment(1);
}

/// A request refused by one of the portal's own limits. `kind`: `agent` (an agent's
/// requests), `client` (a service client's API requests), `signin_failure` (anonymous sign-in
/// failures not recorded one by one), `registration` (the registration edge's limits),
/// `velocity` (velocity caps on destructive actions).
pub fn rate_limited(kind: &'static str) {
    metrics::counter!(RATE_LIMITED, "kind" => kind).increment(1);
}

/// The cluster's state (`local`, `ok`, `degraded`): 1 for the current one, 0 for the others.
pub fn cluster_health(current: &str) {
    for state in ["local", "ok", "degraded"] {
        let value = if state == current { 1.0 } else { 0.0 };
        metrics::gauge!(CLUSTER_HEALTH, "state" => state).set(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_networks_may_read_and_only_when_enabled() {
        let default = MetricsConfig::default();
        assert!(default.allows("127.0.0.1".parse().unwrap()));
        assert!(default.allows("127.8.9.10".parse().unwrap()));
        assert!(default.allows("::1".parse().unwrap()));
        assert!(
            default.allows("::ffff:127.0.0.1".parse().unwrap()),
            "an IPv4 client on a dual-stack socket"
        );
        assert!(!default.allows("10.1.2.3".parse().unwrap()));
        assert!(!default.allows("::ffff:10.1.2.3".parse().unwrap()));
        let office = MetricsConfig {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            ..MetricsConfig::default()
        };
        assert!(office.allows("10.1.2.3".parse().unwrap()));
        assert!(!office.allows("127.0.0.1".parse().unwrap()));
        let off = MetricsConfig {
            enabled: false,
            ..MetricsConfig::default()
        };
        assert!(!off.allows("127.0.0.1".parse().unwrap()));
    }
}
