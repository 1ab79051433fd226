//! Okta's budget shared in Redis: the same arithmetic as `okta::budget` (share, write reserve,
//! Okta's `Remaining` as a ceiling, the per-requester ration while others wait), done by one
//! Lua script per call so that every instance takes from one window.

use super::Shared;

/// KEYS: window hash, per-requester hash, waiting set. ARGV: kind (`r`/`w`), requester (or
/// empty), waiting (`1` when this call already waited), default limit, share %, write
/// reserve %, requester share %, wait ms. Returns {1, reset} or {0, reset}.
pub(super) const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1])
local now_ms = now * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind, who = ARGV[1], ARGV[2]
local w = redis.call('HMGET', KEYS[1], 'limit', 'reset', 'ours', 'okta')
local limit = tonumber(w[1]) or tonumber(ARGV[4])
local reset = tonumber(w[2])
local ours = tonumber(w[3]) or 0
local okta = tonumber(w[4])
if reset == nil or now >= reset then
  reset = now + 60
  ours = 0
  okta = nil
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'okta')
end
local share = math.max(1, math.floor(limit * tonumber(ARGV[5]) / 100))
local reads = math.max(1, share - math.floor(share * tonumber(ARGV[6]) / 100))
local cap, floor = reads, share - reads
if kind == 'w' then cap, floor = share, 0 end
if ARGV[3] == '1' and who ~= '' then
  redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[8]), who)
  redis.call('PEXPIRE', KEYS[3], 60000)
end
if ours >= cap or (okta ~= nil and okta <= floor) then
  return {0, reset}
end
if kind == 'r' and who ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
  local others = redis.call('ZCARD', KEYS[3])
  if redis.call('ZSCORE', KEYS[3], who) then others = others - 1 end
  local mine = tonumber(redis.call('HGET', KEYS[2], who)) or 0
  local ration = math.max(1, math.floor(reads * tonumber(ARGV[7]) / 100))
  if mine >= ration and others > 0 then
    return {0, reset}
  end
  redis.call('HINCRBY', KEYS[2], who, 1)
  redis.call('EXPIREAT', KEYS[2], reset + 60)
  redis.call('ZREM', KEYS[3], who)
end
redis.call('HSET', KEYS[1], 'limit', limit, 'reset', reset, 'ours', ours + 1)
if okta ~= nil then
  redis.call('HSET', KEYS[1], 'okta', math.max(okta - 1, 0))
end
redis.call('EXPIREAT', KEYS[1], reset + 60)
return {1, reset}
";

/// KEYS: window hash, per-requester hash. ARGV: Okta's Limit, Remaining, Reset.
pub(super) const OBSERVE: &str = r"
local limit, remaining, seen = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if limit == 0 then return 0 end
if remaining > limit then remaining = limit end
local now = tonumber(redis.call('TIME')[1])
local w = redis.call('HMGET', KEYS[1], 'reset', 'ours', 'okta')
local reset = tonumber(w[1]) or (now + 60)
local ours = tonumber(w[2]) or 0
local okta = tonumber(w[3])
if seen > reset + 1 then
  reset = seen
  ours = math.min(ours, limit - remaining)
  okta = remaining
  redis.call('DEL', KEYS[2])
else
  reset = math.max(math.min(reset, seen), math.min(now, seen))
  if okta == nil or remaining < okta then okta = remaining end
end
redis.call('HSET', KEYS[1], 'limit', limit, 'reset', reset, 'ours', ours, 'okta', okta)
redis.call('EXPIREAT', KEYS[1], reset + 60)
return 1
";

/// The rules of one call to the shared budget.
#[derive(Debug, Clone, Copy)]
pub struct BudgetRules {
    pub default_limit: u32,
    pub share_percent: u32,
    pub write_reserve_percent: u32,
    pub requester_share_percent: u32,
    pub wait_ms: u64,
}

/// One call to take from a bucket.
#[derive(Debug, Clone, Copy)]
pub struct Take<'a> {
    pub bucket: &'a str,
    pub write: bool,
    pub requester: Option<&'a str>,
    /// This call has waited already (it counts as waiting for the ration of others).
    pub waiting: bool,
}

impl Shared {
    pub(super) fn budget_keys(&self, bucket: &str) -> [String; 3] {
        [
            self.key(&["budget", bucket]),
            self.key(&["budget", bucket, "by"]),
            self.key(&["budget", bucket, "waiting"]),
        ]
    }

    /// Takes one call from the shared window: `Some(Ok(()))`, `Some(Err(reset))` when the
    /// bucket is spent until `reset` (unix seconds), `None` when Redis is not in use (the caller
    /// keeps its own window).
    pub async fn budget_take(
        &self,
        take: Take<'_>,
        rules: &BudgetRules,
    ) -> Option<Result<(), i64>> {
        let [window, by, waiting] = self.budget_keys(take.bucket);
        let mut invocation = self.inner.budget_take.key(window);
        invocation
            .key(by)
            .key(waiting)
            .arg(if take.write { "w" } else { "r" })
            .arg(take.requester.unwrap_or(""))
            .arg(if take.waiting { "1" } else { "0" })
            .arg(rules.default_limit)
            .arg(rules.share_percent)
            .arg(rules.write_reserve_percent)
            .arg(rules.requester_share_percent)
            .arg(rules.wait_ms);
        let (taken, reset) = self.run::<(i64, i64)>(invocation).await?;
        Some(if taken == 1 { Ok(()) } else { Err(reset) })
    }

    /// Learns a bucket's window from Okta's headers, for every instance. False when Redis is
    /// not in use.
    pub async fn budget_observe(
        &self,
        bucket: &str,
        limit: u64,
        remaining: u64,
        reset: i64,
    ) -> bool {
        let [window, by, _] = self.budget_keys(bucket);
        let mut invocation = self.inner.budget_observe.key(window);
        invocation.key(by).arg(limit).arg(remaining).arg(reset);
        self.run::<i64>(invocation).await.is_some()
    }
}
