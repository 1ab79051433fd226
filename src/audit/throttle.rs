//! Anonymous failures (a sign-in callback with a provider error or an unknown `state`) can
//! be sent by anyone, as fast as they like. They are still worth a record, but not one per
//! request: identical failures from one address within a window are counted and written as
//! one record with the count, and each address may start only a few new records per minute.
//! That per-address limit is one for all instances when they share Redis (`[cluster]`); the
//! counting of identical failures stays per instance, so N instances write at most N records
//! per failure and window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{AuditStore, NewEvent};
use crate::cluster::{Quota, Shared};

/// `[audit.throttle]`: how anonymous failures are rate-limited and aggregated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// New records one client address may cause per minute (the burst is the same number).
    #[serde(default = "default_per_minute")]
    pub records_per_minute: u32,
    /// Identical failures from one address within this many seconds become one record
    /// with a count.
    #[serde(default = "default_window")]
    pub window_seconds: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            records_per_minute: default_per_minute(),
            window_seconds: default_window(),
        }
    }
}

fn default_per_minute() -> u32 {
    5
}
fn default_window() -> u64 {
    60
}

/// Distinct (address, failure) pairs remembered at most; beyond it, failures are only counted
/// in one overflow bucket.
const MAX_TRACKED: usize = 10_000;
/// The key of the overflow bucket (and of a client without a known address).
const OVERFLOW: &str = "*";

struct Pending {
    /// The first time this failure was written in the current window.
    since: Instant,
    /// Failures suppressed since then.
    suppressed: u64,
    /// The last suppressed event, written with the count when the window is flushed.
    last: Option<NewEvent>,
}

pub(crate) struct Throttle {
    shared: Shared,
    quota: Quota,
    window: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

/// What to do with one anonymous failure.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Write,
    Suppressed,
}

impl Throttle {
    pub(crate) fn new(config: &ThrottleConfig, shared: Shared) -> Arc<Throttle> {
        Arc::new(Throttle {
            shared,
            quota: Quota::per_minute(config.records_per_minute.max(1)),
            window: Duration::from_secs(config.window_seconds.max(1)),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn key(event: &NewEvent) -> (Option<IpAddr>, String) {
        let ip = event
            .meta
            .client_ip
            .as_deref()
            .and_then(|s| s.parse::<IpAddr>().ok());
        let what = format!(
            "{}|{}|{}",
            event.action.as_str(),
            event.outcome.as_str(),
            event.detail.as_deref().unwrap_or("")
        );
        let key = match ip {
            Some(ip) => format!("{ip}|{what}"),
            None => format!("{OVERFLOW}|{what}"),
        };
        (ip, key)
    }

    /// A repeat of a failure written within the window is only counted.
    fn repeat(&self, key: &str, event: &NewEvent, now: Instant) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(key) {
            Some(p) if now.duration_since(p.since) < self.window => {
                p.suppressed += 1;
                p.last = Some(event.clone());
                true
            }
            _ => false,
        }
    }

    async fn judge(&self, event: &NewEvent) -> Verdict {
        let (ip, key) = Self::key(event);
        let now = Instant::now();
        if self.repeat(&key, event, now) {
            return Verdict::Suppressed;
        }
        let allowed = match ip {
            Some(ip) => {
                let who = ip.to_string();
                let checked = self.shared.check("signin-failures", &who, self.quota);
                checked.await.is_ok()
            }
            None => false,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = if allowed {
            key
        } else {
            // Over the address's budget (or no address): one bucket per address.
            let who = ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| OVERFLOW.into());
            format!("{who}|rate-limited")
        };
        let bucket = if pending.len() >= MAX_TRACKED && !pending.contains_key(&bucket) {
            OVERFLOW.to_string()
        } else {
            bucket
        };
        let entry = pending.entry(bucket).or_insert(Pending {
            since: now,
            suppressed: 0,
            last: None,
        });
        if allowed && entry.suppressed == 0 && entry.last.is_none() {
            entry.since = now;
            return Verdict::Write;
        }
        entry.suppressed += 1;
        entry.last = Some(event.clone());
        Verdict::Suppressed
    }

    /// Takes the counted failures (all of them with `all`, else those whose window ended)
    /// and forgets entries whose window ended.
    fn take(&self, all: bool) -> Vec<(u64, NewEvent)> {
        let now = Instant::now();
        let Ok(mut pending) = self.pending.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        pending.retain(|_, p| {
            let ended = now.duration_since(p.since) >= self.window;
            if (ended || all)
                && p.suppressed > 0
                && let Some(event) = p.last.take()
            {
                out.push((p.suppressed, event));
                p.suppressed = 0;
            }
            !ended
        });
        out
    }
}

impl AuditStore {
    /// Records an anonymous failure, unless it repeats one recorded within the window or
    /// the client's address is over its budget; then it is only counted, and written later
    /// as one record by [`AuditStore::flush_suppressed`]. Returns the id when written now.
    pub async fn record_anonymous_failure(&self, event: NewEvent) -> Option<anyhow::Result<i64>> {
        match self.throttle.judge(&event).await {
            Verdict::Write => Some(self.record(event).await),
            Verdict::Suppressed => {
                crate::metrics::rate_limited("signin_failure");
                None
            }
        }
    }

    /// Writes one record for each group of suppressed failures (every group with `all`,
    /// otherwise those whose window has ended). Runs periodically; returns how many records
    /// were written.
    pub async fn flush_suppressed(&self, all: bool) -> anyhow::Result<usize> {
        let groups = self.throttle.take(all);
        let written = groups.len();
        for (count, mut event) in groups {
            let detail = event.detail.take().unwrap_or_default();
            event.detail = Some(format!("{count} × (not recorded one by one): {detail}"));
            self.record(event).await?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Action, Actor, Outcome, RequestMeta};

    fn failure(ip: &str, detail: &str) -> NewEvent {
        NewEvent::new(
            Action::SignIn,
            Outcome::Failure,
            Actor::default(),
            RequestMeta {
                request_id: "r".into(),
                client_ip: Some(ip.into()),
                user_agent: None,
            },
        )
        .detail(detail)
    }

    #[tokio::test]
    async fn identical_failures_are_counted_and_distinct_ones_limited_per_address() {
        let t = Throttle::new(
            &ThrottleConfig {
                records_per_minute: 3,
                window_seconds: 60,
            },
            Shared::local(),
        );
        assert_eq!(t.judge(&failure("127.0.0.1", "a")).await, Verdict::Write);
        for _ in 0..100 {
            assert_eq!(
                t.judge(&failure("127.0.0.1", "a")).await,
                Verdict::Suppressed
            );
        }
        assert_eq!(t.judge(&failure("127.0.0.1", "b")).await, Verdict::Write);
        assert_eq!(t.judge(&failure("127.0.0.1", "c")).await, Verdict::Write);
        // The address's budget is spent: new kinds of failure are only counted.
        assert_eq!(
            t.judge(&failure("127.0.0.1", "d")).await,
            Verdict::Suppressed
        );
        assert_eq!(
            t.judge(&failure("127.0.0.1", "e")).await,
            Verdict::Suppressed
        );
        // Another address has its own budget.
        assert_eq!(t.judge(&failure("127.0.0.2", "a")).await, Verdict::Write);
        let mut taken = t.take(true);
        taken.sort_by_key(|(n, _)| *n);
        let counts: Vec<u64> = taken.iter().map(|(n, _)| *n).collect();
        assert_eq!(counts, vec![2, 100]);
        assert!(t.take(true).is_empty(), "counts are taken once");
    }

    /// With Redis the per-address limit is one for every instance: a second instance does
    /// not give the same address a fresh budget of new records.
    #[tokio::test]
    async fn the_per_address_limit_is_shared_by_instances_on_one_redis() {
        let a = crate::cluster::tests::redis_shared("throttle").await;
        let b = crate::cluster::tests::same_cluster(&a).await;
        let config = ThrottleConfig {
            records_per_minute: 2,
            window_seconds: 60,
        };
        let (one, two) = (Throttle::new(&config, a), Throttle::new(&config, b));
        assert_eq!(one.judge(&failure("10.0.0.1", "a")).await, Verdict::Write);
        assert_eq!(two.judge(&failure("10.0.0.1", "b")).await, Verdict::Write);
        assert_eq!(
            one.judge(&failure("10.0.0.1", "c")).await,
            Verdict::Suppressed,
            "the address's two records were written, one on each instance"
        );
        assert_eq!(two.judge(&failure("10.0.0.2", "a")).await, Verdict::Write);
    }
}
