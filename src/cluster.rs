//! Several instances acting as one (`[cluster] redis_url`).
//!
//! Sessions and the audit trail are shared through the database. What instances must also
//! agree on — the portal's own rate limits, velocity caps and Okta's budget — lives in Redis
//! when it is configured: [`Shared::check`] is a GCRA limiter run as one Lua script, so a
//! check and its update are atomic across instances. Without Redis, and whenever Redis does
//! not answer within `timeout_ms`, the same limits are kept per instance (governor) and the
//! portal says so (a warning in the log, `"cluster": "degraded"` on `/readyz`): never no limits.
//!
//! Keys (all under `key_prefix`, default `admin-portal:`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `gcra:{limit}:{subject}` | string (ms) | theoretical arrival time of a limit, e.g. `gcra:agent.requests:{sub}`, `gcra:api.client:{client id}`, `gcra:edge.ip:{address}` |
//! | `velocity:{cap}:{subject}` | sorted set | velocity cap window (see [`velocity`]) |
//! | `budget:{bucket}` | hash | Okta bucket window: `limit`, `reset`, `ours`, `okta` |
//! | `budget:{bucket}:by` | hash | reads per requester in the window |
//! | `budget:{bucket}:waiting` | sorted set | requesters waiting for a read (score: until, ms) |
//! | `count:{name}:{subject}` | string | a count in a fixed window ([`counters`]), e.g. the edge's refused submissions per address |
//! | `once:{name}:{id}` | string | a once-only claim, e.g. a spent proof-of-work challenge |
//! | `reads:page:{digest}`, `reads:holds:{user}`, `reads:pages` | string, sets | search pages shared by the instances, and which users each shows ([`cache`]) |
//!
//! Every key expires by itself (GCRA keys when their limit is back to full, budget keys a
//! minute after their window).

pub mod budget;
pub mod cache;
pub mod counters;
pub mod velocity;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota as GovernorQuota, RateLimiter};
use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://host:6379` (or `rediss://`); unset: every instance keeps its own limits.
    pub redis_url: Option<SecretString>,
    /// Prefix of every key the portal writes.
    pub key_prefix: String,
    /// How long a Redis call may take before the instance falls back to its own limits.
    pub timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            key_prefix: "admin-portal:".into(),
            timeout_ms: 250,
        }
    }
}

impl ClusterConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.redis_url
            && redis::Client::open(url.expose_secret()).is_err()
        {
            problems.push("cluster.redis_url is not a valid redis:// URL".into());
        }
        if self.timeout_ms == 0 {
            problems.push("cluster.timeout_ms must be at least 1".into());
        }
        problems
    }
}

/// A limit: `count` per `per` at the steady rate, and at most `burst` at once (GCRA; the
/// burst is `count` unless set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Quota {
    pub fn per_hour(count: u32) -> Quota {
        Quota {
            count,
            per: Duration::from_secs(3600),
            burst: count,
        }
    }

    pub fn per_minute(count: u32) -> Quota {
        Quota {
            count,
            per: Duration::from_secs(60),
            burst: count,
        }
    }

    pub fn with_burst(self, burst: u32) -> Quota {
        Quota { burst, ..self }
    }

    /// How long until a limit with `remaining` left is full again.
    pub fn full_again(&self, remaining: u32) -> Duration {
        let missing = u64::from(self.burst.max(1).saturating_sub(remaining));
        Duration::from_millis(missing * self.interval_ms())
    }

    /// Time between two requests at the steady rate, in ms (at least 1).
    fn interval_ms(&self) -> u64 {
        (self.per.as_millis() as u64 / u64::from(self.count.max(1))).max(1)
    }
}

/// Allowed; `remaining` more would be allowed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub remaining: u32,
}

/// Refused until `retry_after` from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

type LocalLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// GCRA over Redis: KEYS[1] the key; ARGV[1] the emission interval (ms), ARGV[2] the burst.
/// Returns {1, remaining} or {0, retry after ms}. Redis' own clock, so instances need not agree.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - tolerance - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((tolerance - (new_tat - interval - now)) / interval)}
";

struct Inner {
    configured: bool,
    prefix: String,
    timeout: Duration,
    redis: RwLock<Option<ConnectionManager>>,
    degraded: AtomicBool,
    gcra: redis::Script,
    budget_take: redis::Script,
    budget_observe: redis::Script,
    velocity: velocity::Windows,
    local: Mutex<HashMap<Quota, Arc<LocalLimiter>>>,
    counters: counters::Local,
}

/// What instances share (or, without Redis, what this instance keeps for itself).
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("redis", &self.configured())
            .field("degraded", &self.degraded())
            .finish()
    }
}

/// How `/readyz` reports the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No Redis configured: limits are per instance by choice.
    Local,
    Ok,
    /// Redis configured but not answering: limits are per instance until it is back.
    Degraded,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Local => "local",
            Health::Ok => "ok",
            Health::Degraded => "degraded",
        }
    }
}

impl Shared {
    /// Limits kept by this instance alone.
    pub fn local() -> Shared {
        Shared::with(false, String::new(), Duration::from_millis(250))
    }

    fn with(configured: bool, prefix: String, timeout: Duration) -> Shared {
        Shared {
            inner: Arc::new(Inner {
                configured,
                prefix,
                timeout,
                redis: RwLock::new(None),
                degraded: AtomicBool::new(false),
                gcra: redis::Script::new(GCRA),
                budget_take: redis::Script::new(budget::TAKE),
                budget_observe: redis::Script::new(budget::OBSERVE),
                velocity: velocity::Windows::new(),
                local: Mutex::new(HashMap::new()),
                counters: counters::Local::default(),
            }),
        }
    }

    /// Connects to Redis when configured. Redis down at start-up does not stop the portal: it
    /// starts degraded and keeps trying to connect in the background.
    pub async fn connect(config: &ClusterConfig) -> anyhow::Result<Shared> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let Some(url) = &config.redis_url else {
            return Ok(Shared::local());
        };
        let client = redis::Client::open(url.expose_secret())?;
        let shared = Shared::with(true, config.key_prefix.clone(), timeout);
        let connecting = shared.clone();
        let first = tokio::spawn(async move { connecting.connect_loop(client).await });
        // Give the first attempt a moment so a healthy Redis is in use from the first request.
        let _ = tokio::time::timeout(timeout * 4, async {
            while shared.connection().is_none() && !first.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if shared.connection().is_none() {
            shared.fell_back(&"not connected yet");
        }
        Ok(shared)
    }

    async fn connect_loop(&self, client: redis::Client) {
        loop {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.inner.timeout * 4))
                .set_response_timeout(Some(self.inner.timeout));
            match ConnectionManager::new_with_config(client.clone(), config).await {
                Ok(manager) => {
                    if let Ok(mut slot) = self.inner.redis.write() {
                        *slot = Some(manager);
                    }
                    self.recovered();
                    return;
                }
                Err(e) => {
                    self.fell_back(&e);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }

    pub fn configured(&self) -> bool {
        self.inner.configured
    }

    pub fn degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }

    pub fn health(&self) -> Health {
        match (self.configured(), self.degraded()) {
            (false, _) => Health::Local,
            (true, false) => Health::Ok,
            (true, true) => Health::Degraded,
        }
    }

    /// Asks Redis now (for `/readyz`), and says how the cluster stands.
    pub async fn probe(&self) -> Health {
        if self.configured() && self.connection().is_none() {
            self.fell_back(&"not connected");
        }
        if let Some(mut conn) = self.connection() {
            let ping = redis::cmd("PING");
            match tokio::time::timeout(self.inner.timeout, ping.query_async::<String>(&mut conn))
                .await
            {
                Ok(Ok(_)) => self.recovered(),
                Ok(Err(e)) => self.fell_back(&e),
                Err(_) => self.fell_back(&"no answer in time"),
            }
        }
        self.health()
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.inner.prefix.clone();
        key.push_str(&parts.join(":"));
        key
    }

    fn connection(&self) -> Option<ConnectionManager> {
        self.inner.redis.read().ok().and_then(|r| r.clone())
    }

    fn fell_back(&self, why: &dyn std::fmt::Display) {
        if !self.inner.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %why,
                "Redis is not answering: limits and the Okta budget are kept per instance until it is back"
            );
        }
    }

    fn recovered(&self) {
        if self.inner.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis answers again: limits and the Okta budget are shared");
        }
    }

    /// Runs a script on Redis within the timeout; `None` (and degraded) when Redis is not
    /// configured or does not answer.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        let Some(mut conn) = self.connection() else {
            if self.configured() {
                self.fell_back(&"not connected");
            }
            return None;
        };
        let call = invocation.invoke_async::<T>(&mut conn);
        match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(Ok(value)) => {
                self.recovered();
                Some(value)
            }
            Ok(Err(e)) => {
                self.fell_back(&e);
                None
            }
            Err(_) => {
                self.fell_back(&"no answer in time");
                None
            }
        }
    }

    /// Takes one from `limit` for `subject` (e.g. `("velocity.deactivate", agent)`), shared
    /// by all instances when Redis is up.
    pub async fn check(
        &self,
        limit: &str,
        subject: &str,
        quota: Quota,
    ) -> Result<Allowed, Limited> {
        let key = self.key(&["gcra", limit, subject]);
        let mut invocation = self.inner.gcra.key(&key);
        invocation.arg(quota.interval_ms()).arg(quota.burst.max(1));
        match self.run::<(i64, i64)>(invocation).await {
            Some((1, remaining)) => Ok(Allowed {
                remaining: remaining.max(0) as u32,
            }),
            Some((_, wait_ms)) => Err(Limited {
                retry_after: Duration::from_millis(wait_ms.max(0) as u64),
            }),
            None => self.check_local(&key, quota),
        }
    }

    fn check_local(&self, key: &str, quota: Quota) -> Result<Allowed, Limited> {
        let limiter = {
            let Ok(mut local) = self.inner.local.lock() else {
                return Err(Limited {
                    retry_after: Duration::from_secs(1),
                });
            };
            local
                .entry(quota)
                .or_insert_with(|| Arc::new(local_limiter(quota)))
                .clone()
        };
        match limiter.check_key(&key.to_string()) {
            Ok(snapshot) => Ok(Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            }),
            Err(not_until) => Err(Limited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
        }
    }
}

fn local_limiter(quota: Quota) -> LocalLimiter {
    let burst = NonZeroU32::new(quota.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let governor_quota = GovernorQuota::with_period(Duration::from_millis(quota.interval_ms()))
        .unwrap_or(GovernorQuota::per_second(burst))
        .allow_burst(burst);
    RateLimiter::keyed(governor_quota).with_middleware::<StateInformationMiddleware>()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[tokio::test]
    async fn local_limits_allow_the_burst_then_say_when() {
        let shared = Shared::local();
        let quota = Quota::per_hour(3);
        for left in [2, 1, 0] {
            assert_eq!(
                shared.check("velocity.deactivate", "a", quota).await,
                Ok(Allowed { remaining: left })
            );
        }
        let refused = shared.check("velocity.deactivate", "a", quota).await;
        let wait = refused.expect_err("the fourth in an hour").retry_after;
        assert!(wait > Duration::from_secs(1100) && wait <= Duration::from_secs(1200));
        assert!(
            shared
                .check("velocity.deactivate", "b", quota)
                .await
                .is_ok()
        );
        assert_eq!(shared.health(), Health::Local);
    }

    /// Redis from the environment (`.ci/run` sets it), under a prefix of its own.
    pub(crate) async fn redis_shared(name: &str) -> Shared {
        let url = std::env::var("ADMIN_PORTAL_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let config = ClusterConfig {
            redis_url: Some(url.into()),
            key_prefix: format!("test:{name}:{}:", uuid::Uuid::new_v4()),
            timeout_ms: 2000,
        };
        let shared = Shared::connect(&config).await.unwrap();
        assert_eq!(
            shared.probe().await,
            Health::Ok,
            "Redis must be running for this test"
        );
        shared
    }

    /// A second instance on the same Redis and prefix.
    pub(crate) async fn same_cluster(one: &Shared) -> Shared {
        let url = std::env::var("ADMIN_PORTAL_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        Shared::connect(&ClusterConfig {
            redis_url: Some(url.into()),
            key_prefix: one.inner.prefix.clone(),
            timeout_ms: 2000,
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_redis_limit_is_one_limit_for_every_instance() {
        let a = redis_shared("gcra").await;
        let b = same_cluster(&a).await;
        let quota = Quota::per_hour(3);
        assert_eq!(
            a.check("velocity.deactivate", "agent", quota).await,
            Ok(Allowed { remaining: 2 })
        );
        assert_eq!(
            b.check("velocity.deactivate", "agent", quota).await,
            Ok(Allowed { remaining: 1 })
        );
        assert!(a.check("velocity.deactivate", "agent", quota).await.is_ok());
        let refused = b.check("velocity.deactivate", "agent", quota).await;
        let wait = refused.expect_err("the fourth in an hour, on another instance");
        assert!(wait.retry_after > Duration::from_secs(1100), "{wait:?}");
        assert!(b.check("velocity.deactivate", "other", quota).await.is_ok());
        assert!(!a.degraded() && !b.degraded());
    }

    #[tokio::test]
    async fn the_shared_budget_keeps_the_reserve_and_the_ration() {
        let a = redis_shared("budget").await;
        let b = same_cluster(&a).await;
        let rules = budget::BudgetRules {
            default_limit: 100,
            share_percent: 50,
            write_reserve_percent: 20,
            requester_share_percent: 50,
            wait_ms: 1000,
        };
        let take = |write: bool, who: Option<&'static str>, waiting: bool| budget::Take {
            bucket: "GET /api/v1/users",
            write,
            requester: who,
            waiting,
        };
        let mut reads = 0;
        for i in 0..60 {
            let on = if i % 2 == 0 { &a } else { &b };
            if on.budget_take(take(false, None, false), &rules).await == Some(Ok(())) {
                reads += 1;
            }
        }
        assert_eq!(reads, 40, "50 % of 100, less the 20 % reserve, across both");
        let mut writes = 0;
        for _ in 0..20 {
            if b.budget_take(take(true, None, false), &rules).await == Some(Ok(())) {
                writes += 1;
            }
        }
        assert_eq!(writes, 10);
        // A new window from Okta: 100 left; agent a takes its ration while b waits.
        let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 120;
        assert!(a.budget_observe("GET /api/v1/users", 100, 100, reset).await);
        for _ in 0..20 {
            assert_eq!(
                a.budget_take(take(false, Some("a"), false), &rules).await,
                Some(Ok(()))
            );
        }
        assert_eq!(
            b.budget_take(take(false, Some("b"), true), &rules).await,
            Some(Ok(()))
        );
        assert_eq!(
            a.budget_take(take(false, Some("a"), false), &rules).await,
            Some(Ok(())),
            "b was served and waits no more: a alone may go on"
        );
        // d waits (as a refused read of another instance would).
        let [_, _, waiting] = a.budget_keys("GET /api/v1/users");
        let until = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 5000;
        let mut conn = a.connection().unwrap();
        let _: i64 = redis::cmd("ZADD")
            .arg(&waiting)
            .arg(until)
            .arg("d")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            a.budget_take(take(false, Some("a"), false), &rules).await,
            Some(Err(reset)),
            "a is over its ration (20 of 40) while d waits"
        );
        assert_eq!(
            b.budget_take(take(false, Some("d"), true), &rules).await,
            Some(Ok(()))
        );
    }

    #[tokio::test]
    async fn without_redis_the_limits_hold_per_instance_and_readyz_says_degraded() {
        let shared = Shared::connect(&ClusterConfig {
            redis_url: Some("redis://127.0.0.1:1".to_string().into()),
            key_prefix: "test:down:".into(),
            timeout_ms: 100,
        })
        .await
        .unwrap();
        assert_eq!(shared.probe().await, Health::Degraded);
        let quota = Quota::per_hour(1);
        assert!(shared.check("velocity.delete", "a", quota).await.is_ok());
        assert!(shared.check("velocity.delete", "a", quota).await.is_err());
    }
}
