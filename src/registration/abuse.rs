//! Abuse controls: GCRA limits per client address, per email address and for submissions
//! without a proof of work, and a count of refused submissions per address that makes that
//! address's later challenges harder (the slow-down: the client spends the time, the server
//! does not sleep). They live in [`Shared`]: in Redis when the edge is given
//! `[registration.cluster] redis_url`, so every edge behind a balancer counts as one, and per
//! process otherwise (or while Redis does not answer).

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::config::Limits;
use crate::cluster::{Limited, Quota, Shared};

/// The hardest challenge is this many times the configured difficulty.
const MAX_SLOWDOWN_SHIFT: u32 = 6;

/// Over a limit: come back after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl From<Limited> for RetryAfter {
    fn from(limited: Limited) -> Self {
        crate::metrics::rate_limited("registration");
        let wait = limited.retry_after;
        RetryAfter(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }
}

pub struct Abuse {
    limits: Limits,
    shared: Shared,
}

fn quota(per_hour: u32, burst: u32) -> Quota {
    Quota::per_hour(per_hour.max(1)).with_burst(burst.max(1))
}

/// Email addresses are not kept in Redis as they were typed: the key is a digest of the
/// lower-cased address.
fn email_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Abuse {
    /// The limits, kept in `shared` (Redis when the edge has `[registration.cluster]`).
    pub fn new(limits: &Limits, shared: Shared) -> Abuse {
        Abuse {
            limits: limits.clone(),
            shared,
        }
    }

    /// One submission from this address.
    pub async fn ip(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        let quota = quota(self.limits.per_ip_per_hour, self.limits.per_ip_burst);
        self.shared.check("edge.ip", &ip.to_string(), quota).await?;
        Ok(())
    }

    /// One submission for this email address (compared case-insensitively).
    pub async fn email(&self, email: &str) -> Result<(), RetryAfter> {
        let quota = quota(self.limits.per_email_per_hour, self.limits.per_email_burst);
        self.shared
            .check("edge.email", &email_key(email), quota)
            .await?;
        Ok(())
    }

    /// One form submission without a proof of work from this address (none at all when
    /// `no_pow_per_ip_per_hour` is 0).
    pub async fn without_pow(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        let per_hour = self.limits.no_pow_per_ip_per_hour;
        if per_hour == 0 {
            return Err(RetryAfter(3600));
        }
        let quota = quota(per_hour, per_hour);
        self.shared
            .check("edge.no-pow", &ip.to_string(), quota)
            .await?;
        Ok(())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.limits.failure_window_seconds.max(1))
    }

    /// A refused submission (honeypot, bad or reused proof of work, invalid input).
    pub async fn failed(&self, ip: IpAddr) {
        self.shared
            .count("edge.failures", &ip.to_string(), self.window())
            .await;
    }

    /// The difficulty of the next challenge for this address: the configured one, doubled
    /// for every refused submission past `failures_before_slowdown` in the window.
    pub async fn difficulty(&self, ip: IpAddr) -> u64 {
        let count = self.shared.peek("edge.failures", &ip.to_string()).await;
        let excess = count.saturating_sub(u64::from(self.limits.failures_before_slowdown));
        self.limits.pow_max_number << excess.min(u64::from(MAX_SLOWDOWN_SHIFT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, last])
    }

    #[tokio::test]
    async fn each_limit_trips_after_its_burst_and_keys_are_separate() {
        let limits = Limits {
            per_ip_burst: 2,
            per_email_burst: 1,
            no_pow_per_ip_per_hour: 1,
            ..Limits::default()
        };
        let abuse = Abuse::new(&limits, Shared::local());
        assert!(abuse.ip(ip(1)).await.is_ok() && abuse.ip(ip(1)).await.is_ok());
        let RetryAfter(wait) = abuse.ip(ip(1)).await.unwrap_err();
        assert!(wait >= 1, "{wait}");
        assert!(abuse.ip(ip(2)).await.is_ok());
        assert!(abuse.email("Pat@Example.com").await.is_ok());
        assert!(abuse.email("pat@example.com ").await.is_err());
        assert!(abuse.without_pow(ip(1)).await.is_ok());
        assert!(abuse.without_pow(ip(1)).await.is_err());
    }

    #[tokio::test]
    async fn repeated_failures_make_the_challenges_harder() {
        let abuse = Abuse::new(&Limits::default(), Shared::local());
        let base = Limits::default().pow_max_number;
        for _ in 0..3 {
            abuse.failed(ip(9)).await;
        }
        assert_eq!(abuse.difficulty(ip(9)).await, base);
        abuse.failed(ip(9)).await;
        abuse.failed(ip(9)).await;
        assert_eq!(abuse.difficulty(ip(9)).await, base * 4);
        for _ in 0..20 {
            abuse.failed(ip(9)).await;
        }
        assert_eq!(abuse.difficulty(ip(9)).await, base * 64);
        assert_eq!(abuse.difficulty(ip(10)).await, base);
    }
}
