//! What the benchmarks share beside the test harness: a runtime, and percentiles.

use std::time::Duration;

/// The portal binary's allocator, so that benchmarks measure what runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs a benchmark's body on a multi-threaded runtime.
pub fn block_on<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body)
}

/// The `p` quantile (0–1) of sorted times, in ms (0 when there are none).
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default().as_secs_f64() * 1000.0
}

/// The simulator's own search for what the portal sends for `q`: the baseline of the
/// search benchmarks.
#[allow(dead_code)]
pub fn sim_search_url(sim_base: &str, q: &str) -> String {
    let expression = admin_portal::ops::reads::expression(q, None)
        .map(|e| e.to_string())
        .unwrap_or_default();
    let encoded: String = url::form_urlencoded::byte_serialize(expression.as_bytes()).collect();
    format!("{sim_base}/api/v1/users?limit=20&search={encoded}")
}

#[allow(dead_code)]
pub mod agents;

#[allow(dead_code)]
pub mod load;
