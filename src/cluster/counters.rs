//! Two small shared primitives besides the GCRA limiter: a counter per fixed window (how many
//! failures an address caused in the last quarter hour) and a once-only claim (a solved
//! proof-of-work challenge is accepted by one instance, once). In Redis when it answers; kept
//! by this instance otherwise, bounded, like every other fallback in [`super`].
//!
//! Keys (under the prefix): `count:{name}:{subject}` (string, expires with its window) and
//! `once:{name}:{id}` (string, expires when the claim may be forgotten).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::Shared;

/// Local entries kept at most per map; past it, expired ones are dropped first, and then new
/// claims are refused (never forgotten early) and new counters start at the cap.
const MAX_LOCAL: usize = 200_000;

/// KEYS[1] the counter, ARGV[1] its window (ms): adds one and returns the count.
static COUNT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
",
    )
});

/// KEYS[1] the counter: its count (0 when absent).
static PEEK: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new("return tonumber(redis.call('GET', KEYS[1]) or '0')"));

/// KEYS[1] the claim, ARGV[1] how long it holds (ms): 1 when this call made it, 0 when it
/// was already made.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
",
    )
});

/// What this instance keeps when Redis does not answer.
#[derive(Default)]
pub(super) struct Local {
    counts: Mutex<HashMap<String, (u64, Instant)>>,
    claims: Mutex<HashMap<String, Instant>>,
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl Local {
    fn count(&self, key: String, window: Duration) -> u64 {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= MAX_LOCAL {
            counts.retain(|_, (_, until)| *until > now);
        }
        if counts.len() >= MAX_LOCAL && !counts.contains_key(&key) {
            return u64::MAX;
        }
        let entry = counts.entry(key).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        entry.0
    }

    fn peek(&self, key: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map_or(0, |(n, _)| *n)
    }

    fn claim(&self, key: String, hold: Duration) -> bool {
        let now = Instant::now();
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if claims.len() >= MAX_LOCAL {
            claims.retain(|_, until| *until > now);
        }
        match claims.get(&key) {
            Some(until) if *until > now => false,
            _ if claims.len() >= MAX_LOCAL => false,
            _ => {
                claims.insert(key, now + hold);
                true
            }
        }
    }
}

impl Shared {
    /// Adds one to `name` for `subject` in a window of `window` that starts with the first
    /// count, and returns the count so far in it.
    pub async fn count(&self, name: &str, subject: &str, window: Duration) -> u64 {
        let key = self.key(&["count", name, subject]);
        let mut invocation = COUNT.key(&key);
        invocation.arg(millis(window));
        match self.run::<u64>(invocation).await {
            Some(n) => n,
            None => self.inner.counters.count(key, window),
        }
    }

    /// The count of `name` for `subject` in its current window.
    pub async fn peek(&self, name: &str, subject: &str) -> u64 {
        let key = self.key(&["count", name, subject]);
        match self.run::<u64>(PEEK.key(&key)).await {
            Some(n) => n,
            None => self.inner.counters.peek(&key),
        }
    }

    /// Claims `id` under `name` for `hold`: true for the first claim, false for every later
    /// one until it expires (and false when the local fallback is full).
    pub async fn claim_once(&self, name: &str, id: &str, hold: Duration) -> bool {
        let key = self.key(&["once", name, id]);
        let mut invocation = CLAIM.key(&key);
        invocation.arg(millis(hold));
        match self.run::<u8>(invocation).await {
            Some(n) => n == 1,
            None => self.inner.counters.claim(key, hold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{redis_shared, same_cluster};
    use super::*;

    #[tokio::test]
    async fn local_counters_and_claims_keep_their_windows() {
        let shared = Shared::local();
        let window = Duration::from_millis(200);
        assert_eq!(shared.count("failures", "a", window).await, 1);
        assert_eq!(shared.count("failures", "a", window).await, 2);
        assert_eq!(shared.peek("failures", "a").await, 2);
        assert_eq!(shared.peek("failures", "b").await, 0);
        assert!(shared.claim_once("pow", "sig", window).await);
        assert!(!shared.claim_once("pow", "sig", window).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(shared.peek("failures", "a").await, 0, "the window ended");
        assert_eq!(shared.count("failures", "a", window).await, 1);
        assert!(shared.claim_once("pow", "sig", window).await, "expired");
    }

    #[tokio::test]
    async fn redis_counters_and_claims_are_one_for_every_instance() {
        let a = redis_shared("counters").await;
        let b = same_cluster(&a).await;
        let window = Duration::from_secs(60);
        assert_eq!(a.count("failures", "ip", window).await, 1);
        assert_eq!(b.count("failures", "ip", window).await, 2);
        assert_eq!(a.peek("failures", "ip").await, 2);
        assert!(a.claim_once("pow", "sig", window).await);
        assert!(
            !b.claim_once("pow", "sig", window).await,
            "another instance sees the claim"
        );
        assert!(b.claim_once("pow", "other", window).await);
        assert!(!a.degraded() && !b.degraded());
    }
}
