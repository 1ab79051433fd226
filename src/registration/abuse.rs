//! Abuse controls in process: GCRA limits per client address, per email address and for
//! submissions without a proof of work (`governor`), and a count of refused submissions per
//! address that makes that address's later challenges harder (the slow-down: the client
//! spends the time, the server does not sleep).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::config::Limits;

/// Keys kept by each limiter before the idle ones are dropped.
const PRUNE_ABOVE: usize = 50_000;
/// The hardest challenge is this many times the configured difficulty.
const MAX_SLOWDOWN_SHIFT: u32 = 6;

/// Over a limit: come back after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

pub struct Abuse {
    limits: Limits,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_email: DefaultKeyedRateLimiter<String>,
    no_pow: DefaultKeyedRateLimiter<IpAddr>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

fn quota(per_hour: u32, burst: u32) -> Quota {
    let per_hour = per_hour.max(1);
    let period = Duration::from_secs(3600) / per_hour;
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(burst)
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), RetryAfter> {
    if limiter.len() > PRUNE_ABOVE {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|not_until| {
        crate::metrics::rate_limited("registration");
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        RetryAfter(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    })
}

impl Abuse {
    pub fn new(limits: &Limits) -> Abuse {
        Abuse {
            per_ip: RateLimiter::keyed(quota(limits.per_ip_per_hour, limits.per_ip_burst)),
            per_email: RateLimiter::keyed(quota(limits.per_email_per_hour, limits.per_email_burst)),
            no_pow: RateLimiter::keyed(quota(
                limits.no_pow_per_ip_per_hour.max(1),
                limits.no_pow_per_ip_per_hour.max(1),
            )),
            failures: Mutex::new(HashMap::new()),
            limits: limits.clone(),
        }
    }

    /// One submission from this address.
    pub fn ip(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        check(&self.per_ip, &ip)
    }

    /// One submission for this email address (compared case-insensitively).
    pub fn email(&self, email: &str) -> Result<(), RetryAfter> {
        check(&self.per_email, &email.trim().to_lowercase())
    }

    /// One form submission without a proof of work from this address (none at all when
    /// `no_pow_per_ip_per_hour` is 0).
    pub fn without_pow(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        if self.limits.no_pow_per_ip_per_hour == 0 {
            return Err(RetryAfter(3600));
        }
        check(&self.no_pow, &ip)
    }

    /// A refused submission (honeypot, bad or reused proof of work, invalid input).
    pub fn failed(&self, ip: IpAddr) {
        let window = Duration::from_secs(self.limits.failure_window_seconds);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= window {
            *entry = (0, Instant::now());
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// The difficulty of the next challenge for this address: the configured one, doubled
    /// for every refused submission past `failures_before_slowdown` in the window.
    pub fn difficulty(&self, ip: IpAddr) -> u64 {
        let window = Duration::from_secs(self.limits.failure_window_seconds);
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures
            .get(&ip)
            .filter(|(_, since)| since.elapsed() < window)
            .map_or(0, |(n, _)| *n);
        let excess = count.saturating_sub(self.limits.failures_before_slowdown);
        self.limits.pow_max_number << excess.min(MAX_SLOWDOWN_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, last])
    }

    #[test]
    fn each_limit_trips_after_its_burst_and_keys_are_separate() {
        let limits = Limits {
            per_ip_burst: 2,
            per_email_burst: 1,
            no_pow_per_ip_per_hour: 1,
            ..Limits::default()
        };
        let abuse = Abuse::new(&limits);
        assert!(abuse.ip(ip(1)).is_ok() && abuse.ip(ip(1)).is_ok());
        let RetryAfter(wait) = abuse.ip(ip(1)).unwrap_err();
        assert!(wait >= 1, "{wait}");
        assert!(abuse.ip(ip(2)).is_ok());
        assert!(abuse.email("Pat@Example.com").is_ok());
        assert!(abuse.email("pat@example.com ").is_err());
        assert!(abuse.without_pow(ip(1)).is_ok());
        assert!(abuse.without_pow(ip(1)).is_err());
    }

    #[test]
    fn repeated_failures_make_the_challenges_harder() {
        let abuse = Abuse::new(&Limits::default());
        let base = Limits::default().pow_max_number;
        for _ in 0..3 {
            abuse.failed(ip(9));
        }
        assert_eq!(abuse.difficulty(ip(9)), base);
        abuse.failed(ip(9));
        abuse.failed(ip(9));
        assert_eq!(abuse.difficulty(ip(9)), base * 4);
        for _ in 0..20 {
            abuse.failed(ip(9));
        }
        assert_eq!(abuse.difficulty(ip(9)), base * 64);
        assert_eq!(abuse.difficulty(ip(10)), base);
    }
}
