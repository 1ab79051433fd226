//! Velocity windows: "at most N of these per subject in any rolling hour", shared by every
//! instance through Redis.
//!
//! A cap is a real sliding window, not GCRA (a GCRA with burst = N lets about 2 × N through in
//! an hour: the burst, then the refill). Each counted action is one member of a sorted set
//! scored by the time it was taken (Redis' clock); a take first drops members older than the
//! window, then adds itself only when fewer than N are left, in one Lua script, so a check and
//! its update are atomic across instances. A member can be released again (an action that
//! was counted but that Okta did not carry out).
//!
//! Key (under `key_prefix`): `velocity:{cap}:{subject}`, a sorted set (member: a random id,
//! score: ms since the epoch), e.g. `admin-portal:velocity:deactivate:00u…`. It expires one
//! window after its newest member.
//!
//! Without Redis, or when it does not answer, the same window is kept per instance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Shared;

/// KEYS[1] the window. ARGV: mode (`take`, `release`, `count`), window ms, limit (0: count
/// without a cap), member. Returns:
/// - `take`: {1, used after} or {0, ms until one more is allowed};
/// - `release`: {removed, 0};
/// - `count`: {used, ms until the oldest leaves the window (0 when empty)}.
pub(super) const WINDOW: &str = r"
local mode = ARGV[1]
if mode == 'release' then
  return {redis.call('ZREM', KEYS[1], ARGV[4]), 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if mode == 'count' then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] == nil then return {0, 0} end
  return {used, tonumber(first[2]) + window - now}
end
local limit = tonumber(ARGV[3])
if limit > 0 and used >= limit then
  local nth = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  return {0, math.max(1, tonumber(nth[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, used + 1}
";

/// The windows' script and this instance's own windows (used without Redis).
pub(super) struct Windows {
    script: redis::Script,
    local: Mutex<HashMap<String, VecDeque<(Instant, String)>>>,
}

impl Windows {
    pub(super) fn new() -> Windows {
        Windows {
            script: redis::Script::new(WINDOW),
            local: Mutex::new(HashMap::new()),
        }
    }
}

/// One counted action, until it is released (or leaves the window by itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    key: String,
    member: String,
    /// Taken in Redis (or in this instance's own window).
    shared: bool,
}

/// The outcome of a take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Counted: `used` in the window now, this one included.
    Counted { slot: Slot, used: u32 },
    /// The cap is reached: one more is allowed in `retry_after`.
    Full { retry_after: Duration },
}

/// How much of a window is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: u32,
    /// Until the oldest counted action leaves the window (zero when none is counted).
    pub oldest_leaves_in: Duration,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}

impl Shared {
    fn velocity_key(&self, cap: &str, subject: &str) -> String {
        self.key(&["velocity", cap, subject])
    }

    /// Counts one action of `cap` for `subject` unless `limit` are already counted in the last
    /// `window` (`limit` 0: count without a cap, e.g. while a manager has lifted it).
    pub async fn velocity_take(
        &self,
        cap: &str,
        subject: &str,
        limit: u32,
        window: Duration,
    ) -> Take {
        let key = self.velocity_key(cap, subject);
        let member = uuid::Uuid::new_v4().simple().to_string();
        let mut invocation = self.inner.velocity.script.key(&key);
        invocation
            .arg("take")
            .arg(ms(window))
            .arg(limit)
            .arg(&member);
        match self.run::<(i64, i64)>(invocation).await {
            Some((1, used)) => Take::Counted {
                slot: Slot {
                    key,
                    member,
                    shared: true,
                },
                used: used.clamp(0, i64::from(u32::MAX)) as u32,
            },
            Some((_, wait_ms)) => Take::Full {
                retry_after: Duration::from_millis(wait_ms.max(1) as u64),
            },
            None => self.velocity_take_local(key, member, limit, window),
        }
    }

    /// Uncounts an action (Okta did not carry it out).
    pub async fn velocity_release(&self, slot: Slot) {
        if slot.shared {
            let mut invocation = self.inner.velocity.script.key(&slot.key);
            invocation.arg("release").arg(1).arg(0).arg(&slot.member);
            // Redis gone since the take: the member leaves the window by itself.
            let _ = self.run::<(i64, i64)>(invocation).await;
            return;
        }
        if let Ok(mut local) = self.inner.velocity.local.lock()
            && let Some(window) = local.get_mut(&slot.key)
        {
            window.retain(|(_, m)| *m != slot.member);
        }
    }

    /// How much of `cap`'s window `subject` has used.
    pub async fn velocity_usage(&self, cap: &str, subject: &str, window: Duration) -> Usage {
        let key = self.velocity_key(cap, subject);
        let mut invocation = self.inner.velocity.script.key(&key);
        invocation.arg("count").arg(ms(window)).arg(0).arg("");
        match self.run::<(i64, i64)>(invocation).await {
            Some((used, wait_ms)) => Usage {
                used: used.clamp(0, i64::from(u32::MAX)) as u32,
                oldest_leaves_in: Duration::from_millis(wait_ms.max(0) as u64),
            },
            None => self.velocity_usage_local(&key, window),
        }
    }

    fn velocity_take_local(
        &self,
        key: String,
        member: String,
        limit: u32,
        window: Duration,
    ) -> Take {
        let Ok(mut local) = self.inner.velocity.local.lock() else {
            // Never no cap: a poisoned lock refuses.
            return Take::Full {
                retry_after: Duration::from_secs(1),
            };
        };
        let now = Instant::now();
        if local.len() > 10_000 {
            local.retain(|_, w| w.back().is_some_and(|(at, _)| now - *at < window));
        }
        let entries = local.entry(key.clone()).or_default();
        drop_old(entries, now, window);
        let used = entries.len();
        if limit > 0 && used >= limit as usize {
            let nth = &entries[used - limit as usize].0;
            let retry_after = (window.saturating_sub(now - *nth)).max(Duration::from_millis(1));
            return Take::Full { retry_after };
        }
        entries.push_back((now, member.clone()));
        Take::Counted {
            slot: Slot {
                key,
                member,
                shared: false,
            },
            used: (used + 1).min(u32::MAX as usize) as u32,
        }
    }

    fn velocity_usage_local(&self, key: &str, window: Duration) -> Usage {
        let now = Instant::now();
        let Ok(mut local) = self.inner.velocity.local.lock() else {
            return Usage {
                used: 0,
                oldest_leaves_in: Duration::ZERO,
            };
        };
        let Some(entries) = local.get_mut(key) else {
            return Usage {
                used: 0,
                oldest_leaves_in: Duration::ZERO,
            };
        };
        drop_old(entries, now, window);
        Usage {
            used: entries.len().min(u32::MAX as usize) as u32,
            oldest_leaves_in: entries
                .front()
                .map_or(Duration::ZERO, |(at, _)| window.saturating_sub(now - *at)),
        }
    }
}

/// Drops what left the window.
fn drop_old(entries: &mut VecDeque<(Instant, String)>, now: Instant, window: Duration) {
    while entries.front().is_some_and(|(at, _)| now - *at >= window) {
        entries.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::tests::{redis_shared, same_cluster};
    use crate::cluster::{ClusterConfig, Health};

    const HOUR: Duration = Duration::from_secs(3600);

    fn counted(take: &Take) -> u32 {
        match take {
            Take::Counted { used, .. } => *used,
            Take::Full { retry_after } => panic!("refused, retry after {retry_after:?}"),
        }
    }

    fn slot(take: Take) -> Slot {
        match take {
            Take::Counted { slot, .. } => slot,
            Take::Full { .. } => panic!("refused"),
        }
    }

    /// The same arithmetic whichever side keeps the window.
    async fn the_window_holds(shared: &Shared, other: &Shared) {
        assert_eq!(
            counted(&shared.velocity_take("deactivate", "a", 2, HOUR).await),
            1
        );
        let second = shared.velocity_take("deactivate", "a", 2, HOUR).await;
        assert_eq!(counted(&second), 2);
        match other.velocity_take("deactivate", "a", 2, HOUR).await {
            Take::Full { retry_after } => assert!(
                retry_after > Duration::from_secs(3590) && retry_after <= HOUR,
                "{retry_after:?}"
            ),
            Take::Counted { used, .. } => panic!("a third in the hour was counted ({used})"),
        }
        // Another subject and another cap have windows of their own.
        assert_eq!(
            counted(&other.velocity_take("deactivate", "b", 2, HOUR).await),
            1
        );
        assert_eq!(
            counted(&other.velocity_take("delete", "a", 2, HOUR).await),
            1
        );
        // A released action no longer counts.
        shared.velocity_release(slot(second)).await;
        let usage = other.velocity_usage("deactivate", "a", HOUR).await;
        assert_eq!(usage.used, 1);
        assert!(
            usage.oldest_leaves_in > Duration::from_secs(3590),
            "{usage:?}"
        );
        assert_eq!(
            counted(&other.velocity_take("deactivate", "a", 2, HOUR).await),
            2
        );
        // Limit 0 counts without a cap (a lifted cap): the usage goes on.
        assert_eq!(
            counted(&shared.velocity_take("deactivate", "a", 0, HOUR).await),
            3
        );
        assert!(matches!(
            shared.velocity_take("deactivate", "a", 3, HOUR).await,
            Take::Full { .. }
        ));
    }

    /// A sliding window: each action leaves it one window after it was taken, not all at once.
    async fn actions_leave_the_window_one_by_one(shared: &Shared) {
        let window = Duration::from_millis(600);
        counted(&shared.velocity_take("reset_factors", "s", 2, window).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        counted(&shared.velocity_take("reset_factors", "s", 2, window).await);
        let Take::Full { retry_after } =
            shared.velocity_take("reset_factors", "s", 2, window).await
        else {
            panic!("a third within the window");
        };
        assert!(retry_after <= Duration::from_millis(300), "{retry_after:?}");
        tokio::time::sleep(retry_after + Duration::from_millis(50)).await;
        assert_eq!(
            counted(&shared.velocity_take("reset_factors", "s", 2, window).await),
            2,
            "the first left the window, the second is still in it"
        );
        assert!(matches!(
            shared.velocity_take("reset_factors", "s", 2, window).await,
            Take::Full { .. }
        ));
        tokio::time::sleep(window + Duration::from_millis(50)).await;
        assert_eq!(
            shared
                .velocity_usage("reset_factors", "s", window)
                .await
                .used,
            0
        );
    }

    #[tokio::test]
    async fn the_redis_window_is_one_window_for_every_instance() {
        let a = redis_shared("velocity").await;
        let b = same_cluster(&a).await;
        the_window_holds(&a, &b).await;
        actions_leave_the_window_one_by_one(&b).await;
        assert!(!a.degraded() && !b.degraded());
    }

    #[tokio::test]
    async fn the_local_window_keeps_the_same_arithmetic() {
        let shared = Shared::local();
        the_window_holds(&shared, &shared).await;
        actions_leave_the_window_one_by_one(&shared).await;
    }

    #[tokio::test]
    async fn with_redis_down_the_cap_holds_per_instance() {
        let shared = Shared::connect(&ClusterConfig {
            redis_url: Some("redis://127.0.0.1:1".to_string().into()),
            key_prefix: "test:velocity-down:".into(),
            timeout_ms: 100,
        })
        .await
        .unwrap();
        assert_eq!(shared.probe().await, Health::Degraded);
        counted(&shared.velocity_take("delete", "a", 1, HOUR).await);
        assert!(matches!(
            shared.velocity_take("delete", "a", 1, HOUR).await,
            Take::Full { .. }
        ));
        assert_eq!(shared.velocity_usage("delete", "a", HOUR).await.used, 1);
    }
}
