//! Okta's rate limits as a budget the portal rations before it sends anything.
//!
//! Okta limits every bucket (method + endpoint group) per window and the whole org's
//! concurrent requests (OKTA-FACTS.md §3). Each bucket's window is learnt from the
//! `X-Rate-Limit-Limit/Remaining/Reset` headers of every answer (a configured limit stands in
//! before the first one). The portal takes at most `share_percent` of each bucket; of that,
//! `write_reserve_percent` is kept for writes, so a storm of searches cannot stop the unlock
//! an agent sends while on the phone. Okta's own `Remaining` (which counts every app of the
//! org) is a second ceiling: the portal never sends what Okta has said it would refuse.
//!
//! A read over budget waits up to `read_wait_ms` for the window to turn, then gets
//! [`Busy`] (shown as "Okta is busy — try again in N s", 429 + `Retry-After` on the API).
//! Reads are also rationed per requester (agent or client, [`REQUESTER`]): while others wait,
//! one requester may use at most `requester_share_percent` of a bucket's reads.
//!
//! With `[cluster] redis_url` every instance takes from one window in Redis
//! (`cluster::budget`); without it, or while Redis does not answer, each instance keeps its own
//! and takes `1/instances` of the share. The concurrency cap is always per instance
//! (`1/instances` of it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cluster::Shared;
use crate::cluster::budget::{BudgetRules, Take};

/// The rate-limit headers of an answer: `X-Rate-Limit-Limit/Remaining/Reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    pub reset: i64,
}

tokio::task_local! {
    /// Who the current request is for (an agent's `sub` or a client id), filled in by the
    /// front ends once they know; used for the per-requester read ration.
    pub static REQUESTER: Arc<Mutex<Option<String>>>;
}

tokio::task_local! {
    /// Set while the reads a change depends on run (the user and groups its guards check):
    /// they are part of the change, so they may use the write reserve like the change itself.
    static FOR_A_CHANGE: ();
}

/// Runs `reads` as part of a change: a read storm cannot stop the unlock because its guard
/// could not read the user.
pub async fn for_a_change<F: Future>(reads: F) -> F::Output {
    FOR_A_CHANGE.scope((), reads).await
}

/// The kind a call is budgeted as: a write, or a read that is part of a change, counts as a write.
pub fn kind_of(idempotent: bool) -> Kind {
    if idempotent && FOR_A_CHANGE.try_with(|_| ()).is_err() {
        Kind::Read
    } else {
        Kind::Write
    }
}

/// Names the requester of the current request, if the request runs inside [`REQUESTER`].
pub fn set_requester(id: &str) {
    let _ = REQUESTER.try_with(|slot| {
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(id.to_string());
        }
    });
}

fn requester() -> Option<String> {
    REQUESTER
        .try_with(|slot| slot.lock().ok().and_then(|s| s.clone()))
        .ok()
        .flatten()
}

/// `[okta.budget]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// The part of each bucket the portal may use (Okta gives one app at most half by default).
    pub share_percent: u32,
    /// The part of the portal's share only writes may use.
    pub write_reserve_percent: u32,
    /// How long a read over budget waits for capacity before it is refused.
    pub read_wait_ms: u64,
    /// While others wait, the part of a bucket's reads one agent or client may use.
    pub requester_share_percent: u32,
    /// Okta's concurrent-request limit for the org; the portal keeps below
    /// `concurrency_percent` of it.
    pub org_concurrency_limit: u32,
    pub concurrency_percent: u32,
    /// How many portal instances share the org (each takes 1/instances of the share).
    pub instances: u32,
    /// Requests per window assumed for a bucket before Okta's first answer names its limit.
    pub default_limit: u32,
    /// Known limits per bucket (`"GET /api/v1/users" = 600`), used until Okta's first answer.
    pub limits: BTreeMap<String, u32>,
    /// How long a search page is served again without asking Okta (0: never; identical
    /// searches running at the same moment still share one call).
    pub search_cache_seconds: u64,
    /// How long the list of groups (the search filter, the create form, the registration
    /// groups) is kept (0: read every time). Dropped when the portal changes a group.
    pub group_cache_seconds: u64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            share_percent: 50,
            write_reserve_percent: 20,
            read_wait_ms: 1000,
            requester_share_percent: 50,
            org_concurrency_limit: 75,
            concurrency_percent: 75,
            instances: 1,
            default_limit: 100,
            limits: BTreeMap::new(),
            search_cache_seconds: 5,
            group_cache_seconds: 300,
        }
    }
}

impl BudgetConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("share_percent", self.share_percent),
            ("requester_share_percent", self.requester_share_percent),
            ("concurrency_percent", self.concurrency_percent),
        ] {
            if !(1..=100).contains(&value) {
                problems.push(format!("okta.budget.{name} must be between 1 and 100"));
            }
        }
        if self.write_reserve_percent > 90 {
            problems.push("okta.budget.write_reserve_percent must be at most 90".into());
        }
        if self.org_concurrency_limit == 0 || self.instances == 0 || self.default_limit == 0 {
            problems.push(
                "okta.budget.org_concurrency_limit, instances and default_limit must be at least 1"
                    .into(),
            );
        }
        problems
    }
}

/// Whether a call changes something in Okta (writes may use the reserve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
        }
    }
}

/// Refused: the budget is spent until `retry_after` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: i64,
}

/// One bucket's current window as the portal sees it.
#[derive(Debug, Clone)]
struct Window {
    limit: u32,
    /// Unix second the window ends (Okta's `X-Rate-Limit-Reset`, or a guess of 60 s).
    reset: i64,
    /// Calls the portal sent in this window.
    ours: u32,
    /// Okta's `Remaining`, lowered by every call sent since.
    okta_remaining: Option<u32>,
    by_requester: HashMap<String, u32>,
}

impl Window {
    fn new(limit: u32, now: i64) -> Window {
        Window {
            limit,
            reset: now + 60,
            ours: 0,
            okta_remaining: None,
            by_requester: HashMap::new(),
        }
    }
}

/// Held while a call is in flight (the concurrency slot).
#[derive(Debug)]
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug)]
pub struct Budget {
    config: BudgetConfig,
    /// The budget all instances share, when Redis is configured; the local windows stand in
    /// whenever it does not answer (each instance then keeps to its part, see `instances`).
    shared: Option<Shared>,
    windows: Mutex<HashMap<String, Window>>,
    /// Requesters waiting for reads, per bucket.
    waiting: Mutex<HashMap<String, HashMap<String, usize>>>,
    slots: Arc<Semaphore>,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn percent(value: u32, pct: u32) -> u32 {
    (u64::from(value) * u64::from(pct) / 100) as u32
}

impl Budget {
    pub fn new(config: &BudgetConfig) -> Budget {
        let slots = percent(config.org_concurrency_limit, config.concurrency_percent)
            / config.instances.max(1);
        Budget {
            config: config.clone(),
            shared: None,
            windows: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(slots.max(1) as usize)),
        }
    }

    /// Takes from the window all instances share (see `cluster`) instead of this instance's own.
    pub fn share_with(&mut self, shared: Shared) {
        if shared.configured() {
            self.shared = Some(shared);
        }
    }

    /// Takes one call from the shared window when Redis answers, else from the local one.
    async fn take(
        &self,
        bucket: &str,
        kind: Kind,
        who: Option<&str>,
        waiting: bool,
    ) -> Result<(), Busy> {
        if let Some(shared) = &self.shared {
            let take = Take {
                bucket,
                write: kind == Kind::Write,
                requester: who,
                waiting,
            };
            let rules = BudgetRules {
                default_limit: self
                    .config
                    .limits
                    .get(bucket)
                    .copied()
                    .unwrap_or(self.config.default_limit),
                share_percent: self.config.share_percent,
                write_reserve_percent: self.config.write_reserve_percent,
                requester_share_percent: self.config.requester_share_percent,
                wait_ms: self.config.read_wait_ms.max(100),
            };
            if let Some(answer) = shared.budget_take(take, &rules).await {
                return answer.map_err(|reset| Busy { retry_after: reset });
            }
        }
        self.try_take(bucket, kind, who)
    }

    /// The portal's caps in a window of `limit`: (all calls, reads).
    fn caps(&self, limit: u32) -> (u32, u32) {
        let share = (percent(limit, self.config.share_percent) / self.config.instances).max(1);
        let reserve = percent(share, self.config.write_reserve_percent);
        (share, share.saturating_sub(reserve).max(1))
    }

    /// Waits (reads: up to `read_wait_ms`) until the bucket has room for one call of `kind`
    /// and a concurrency slot is free, and takes them.
    pub async fn acquire(&self, bucket: &str, kind: Kind) -> Result<Permit, Busy> {
        let who = requester();
        let wait = match kind {
            Kind::Read => Duration::from_millis(self.config.read_wait_ms),
            // A write waits at most as long as a read, and only if even the reserve is spent.
            Kind::Write => Duration::from_millis(self.config.read_wait_ms.max(1000)),
        };
        let deadline = Instant::now() + wait;
        let mut queued = false;
        let result = loop {
            match self.take(bucket, kind, who.as_deref(), queued).await {
                Ok(()) => break Ok(()),
                Err(busy) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break Err(busy);
                    }
                    if !queued {
                        self.queue(bucket, who.as_deref(), true);
                        queued = true;
                    }
                    tokio::time::sleep(left.min(Duration::from_millis(25))).await;
                }
            }
        };
        if queued {
            self.queue(bucket, who.as_deref(), false);
            let waited = wait.saturating_sub(deadline.saturating_duration_since(Instant::now()));
            crate::metrics::budget_wait(bucket, kind.as_str(), waited);
        }
        let slot = match result {
            Ok(()) => tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await,
            Err(busy) => {
                crate::metrics::budget_refused(bucket, kind.as_str());
                return Err(busy);
            }
        };
        match slot {
            Ok(Ok(slot)) => Ok(Permit { _slot: slot }),
            _ => {
                crate::metrics::budget_refused(bucket, kind.as_str());
                Err(Busy {
                    retry_after: now_unix() + 1,
                })
            }
        }
    }

    fn queue(&self, bucket: &str, who: Option<&str>, enter: bool) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        let bucket_waiting = waiting.entry(bucket.to_string()).or_default();
        let count = bucket_waiting
            .entry(who.unwrap_or("").to_string())
            .or_default();
        if enter {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            bucket_waiting.retain(|_, n| *n > 0);
        }
    }

    /// Whether someone other than `who` waits for a read in `bucket`.
    fn others_waiting(&self, bucket: &str, who: &str) -> bool {
        self.waiting.lock().is_ok_and(|w| {
            w.get(bucket)
                .is_some_and(|b| b.iter().any(|(k, n)| k != who && *n > 0))
        })
    }

    /// Takes one call from the bucket's window, or says until when it is spent.
    fn try_take(&self, bucket: &str, kind: Kind, who: Option<&str>) -> Result<(), Busy> {
        let now = now_unix();
        let others_waiting = who.is_some_and(|w| self.others_waiting(bucket, w));
        let mut windows = self.windows.lock().map_err(|_| Busy { retry_after: now })?;
        let known = self.config.limits.get(bucket).copied();
        let w = windows
            .entry(bucket.to_string())
            .or_insert_with(|| Window::new(known.unwrap_or(self.config.default_limit), now));
        if now >= w.reset {
            *w = Window::new(w.limit, now);
        }
        let (share, reads) = self.caps(w.limit);
        let reserve = share - reads;
        let busy = Busy {
            retry_after: w.reset,
        };
        let (cap, okta_floor) = match kind {
            Kind::Read => (reads, reserve),
            Kind::Write => (share, 0),
        };
        if w.ours >= cap || w.okta_remaining.is_some_and(|r| r <= okta_floor) {
            return Err(busy);
        }
        if kind == Kind::Read
            && let Some(who) = who
        {
            let mine = w.by_requester.get(who).copied().unwrap_or(0);
            let ration = percent(reads, self.config.requester_share_percent).max(1);
            if mine >= ration && others_waiting {
                return Err(busy);
            }
            *w.by_requester.entry(who.to_string()).or_default() += 1;
        }
        w.ours += 1;
        w.okta_remaining = w.okta_remaining.map(|r| r.saturating_sub(1));
        Ok(())
    }

    /// Learns the bucket's window from an answer's rate-limit headers, here and for all
    /// instances.
    pub async fn observe(&self, bucket: &str, seen: RateLimit) {
        if seen.limit > 0 {
            crate::metrics::okta_budget(bucket, seen.limit, seen.remaining);
        }
        self.observe_local(bucket, seen);
        if let Some(shared) = &self.shared {
            shared
                .budget_observe(bucket, seen.limit, seen.remaining, seen.reset)
                .await;
        }
    }

    fn observe_local(&self, bucket: &str, seen: RateLimit) {
        // Concurrency-limit answers carry Limit = Remaining = 0: not a window.
        if seen.limit == 0 {
            return;
        }
        let now = now_unix();
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let w = windows
            .entry(bucket.to_string())
            .or_insert_with(|| Window::new(seen.limit as u32, now));
        w.limit = seen.limit as u32;
        let used_at_okta = (seen.limit - seen.remaining.min(seen.limit)) as u32;
        if seen.reset > w.reset + 1 {
            // Okta's window turned before ours: start counting in Okta's.
            w.reset = seen.reset;
            w.ours = w.ours.min(used_at_okta);
            w.by_requester.clear();
            w.okta_remaining = Some(seen.remaining as u32);
        } else {
            w.reset = w.reset.min(seen.reset).max(now.min(seen.reset));
            let remaining = seen.remaining as u32;
            w.okta_remaining = Some(w.okta_remaining.map_or(remaining, |r| r.min(remaining)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: u32) -> Budget {
        Budget::new(&BudgetConfig {
            read_wait_ms: 0,
            default_limit: limit,
            ..BudgetConfig::default()
        })
    }

    fn take(b: &Budget, kind: Kind, who: Option<&str>) -> bool {
        b.try_take("GET /api/v1/users", kind, who).is_ok()
    }

    #[test]
    fn reads_stop_at_the_share_less_the_reserve_and_writes_use_the_reserve() {
        // 100 per window: the portal's share is 50, of which 10 are for writes only.
        let b = budget(100);
        assert_eq!((0..60).filter(|_| take(&b, Kind::Read, None)).count(), 40);
        assert_eq!((0..60).filter(|_| take(&b, Kind::Write, None)).count(), 10);
    }

    #[test]
    fn okta_remaining_is_a_ceiling_and_keeps_room_for_writes() {
        let b = budget(100);
        let reset = now_unix() + 30;
        b.observe_local(
            "GET /api/v1/users",
            RateLimit {
                limit: 100,
                remaining: 12,
                reset,
            },
        );
        // Other apps used most of the bucket: 12 left, 10 of them kept for writes.
        assert_eq!((0..20).filter(|_| take(&b, Kind::Read, None)).count(), 2);
        assert_eq!((0..20).filter(|_| take(&b, Kind::Write, None)).count(), 10);
        let refused = b.try_take("GET /api/v1/users", Kind::Write, None);
        assert_eq!(refused, Err(Busy { retry_after: reset }));
    }

    #[test]
    fn a_new_okta_window_gives_the_budget_back() {
        let b = budget(100);
        while take(&b, Kind::Read, None) {}
        b.observe_local(
            "GET /api/v1/users",
            RateLimit {
                limit: 100,
                remaining: 99,
                reset: now_unix() + 120,
            },
        );
        assert!(take(&b, Kind::Read, None));
    }

    #[test]
    fn one_requester_gets_at_most_its_ration_while_others_wait() {
        let b = budget(100);
        // 40 reads in all; one agent's ration is 20 while another waits.
        assert_eq!(
            (0..30).filter(|_| take(&b, Kind::Read, Some("a"))).count(),
            30
        );
        b.queue("GET /api/v1/users", Some("b"), true);
        assert!(!take(&b, Kind::Read, Some("a")));
        assert!(take(&b, Kind::Read, Some("b")));
        b.queue("GET /api/v1/users", Some("b"), false);
        assert!(take(&b, Kind::Read, Some("a")), "alone again: no ration");
    }

    #[test]
    fn instances_split_the_share_and_concurrency() {
        let b = Budget::new(&BudgetConfig {
            instances: 2,
            default_limit: 100,
            ..BudgetConfig::default()
        });
        assert_eq!(b.caps(100), (25, 20));
        assert_eq!(b.slots.available_permits(), 28);
    }

    #[test]
    fn concurrency_answers_are_not_windows() {
        let b = budget(100);
        b.observe_local(
            "GET /api/v1/users",
            RateLimit {
                limit: 0,
                remaining: 0,
                reset: now_unix() + 5,
            },
        );
        assert!(take(&b, Kind::Read, None));
    }

    #[tokio::test]
    async fn a_read_over_budget_waits_then_is_busy() {
        let b = Budget::new(&BudgetConfig {
            read_wait_ms: 50,
            default_limit: 2,
            ..BudgetConfig::default()
        });
        assert!(b.acquire("GET /api/v1/users", Kind::Read).await.is_ok());
        let started = Instant::now();
        let busy = b
            .acquire("GET /api/v1/users", Kind::Read)
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(busy.retry_after > now_unix());
    }
}
