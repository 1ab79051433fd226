//! Fewer Okta calls for the same read: identical concurrent reads (the same search page, the
//! same user) become one call whose answer every caller gets, and search pages are kept for
//! `okta.budget.search_cache_seconds` (default 5 s).
//!
//! Every principal who may search sees the same results (the portal reads Okta with one
//! credential; who may search at all is decided before the call), so a page is cached per
//! query alone. A change the portal makes to a user drops every cached page that holds that
//! user, and a new user drops them all, so an agent never sees a search older than their own
//! change. Changes made outside the portal show up within the cache time.
//!
//! The list of groups (the search filter, the create form) is kept for
//! `okta.budget.group_cache_seconds` (default 5 min) and dropped when the portal creates,
//! changes or deletes a group (membership changes do not change the list).
//!
//! With `[cluster] redis_url` the search pages are kept in Redis instead ([`Shared`]'s
//! `cached_page`/`keep_page`): one instance asks Okta for a page while the others wait for
//! its answer, and a change any instance makes drops the pages that show that user on all of
//! them. This instance then only coalesces identical reads in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::cluster::Shared;

use super::error::OktaError;
use super::models::{Group, User, UserPage};

/// Search pages kept at most (per instance).
const MAX_PAGES: u64 = 2_000;
/// How long an instance waits for another one's answer to the same search before asking Okta
/// itself, and how long its claim to be asking holds.
const SHARED_WAIT: Duration = Duration::from_millis(1500);

pub struct Reads {
    pages: Cache<String, Arc<UserPage>>,
    /// Loads in flight: an entry lives only while its call runs (coalescing, not caching).
    users: Cache<String, Arc<User>>,
    cache_pages: bool,
    page_ttl: Duration,
    /// Redis, when instances share their search pages.
    shared: Option<Shared>,
    groups: Cache<String, Arc<Vec<Group>>>,
    cache_groups: bool,
    pub(super) counts: ReadCounts,
}

/// What the coalescing and the cache saved (for metrics and tests).
#[derive(Debug, Default)]
pub struct ReadCounts {
    pub okta_calls: AtomicU64,
    pub served_from_cache: AtomicU64,
    pub coalesced: AtomicU64,
}

impl Reads {
    pub fn new(search_cache: Duration, group_cache: Duration) -> Reads {
        let cache_pages = !search_cache.is_zero();
        Reads {
            pages: Cache::builder()
                .max_capacity(MAX_PAGES)
                .time_to_live(search_cache.max(Duration::from_millis(1)))
                .support_invalidation_closures()
                .build(),
            users: Cache::builder().max_capacity(10_000).build(),
            cache_pages,
            page_ttl: search_cache,
            shared: None,
            groups: Cache::builder()
                .max_capacity(100)
                .time_to_live(group_cache.max(Duration::from_millis(1)))
                .build(),
            cache_groups: !group_cache.is_zero(),
            counts: ReadCounts::default(),
        }
    }

    /// Search pages are kept in Redis, shared with the other instances (when it is configured
    /// and the pages are cached at all).
    pub fn share_with(&mut self, shared: Shared) {
        if shared.configured() && self.cache_pages {
            self.shared = Some(shared);
        }
    }

    /// A search page: from the cache, from a call already running for the same query, or
    /// from `load`.
    pub async fn page<F>(&self, key: String, load: F) -> Result<UserPage, OktaError>
    where
        F: Future<Output = Result<UserPage, OktaError>>,
    {
        let was_cached = self.pages.contains_key(&key);
        // 1: this caller asked Okta; 2: it found the page in Redis.
        let loaded = AtomicU64::new(0);
        let page = self
            .pages
            .try_get_with(key.clone(), async {
                let (page, from_redis) = self.load_page(&key, load).await?;
                loaded.store(if from_redis { 2 } else { 1 }, Ordering::Relaxed);
                Ok::<_, OktaError>(Arc::new(page))
            })
            .await;
        let (loaded, was_cached) = match loaded.load(Ordering::Relaxed) {
            2 => (false, true),
            n => (n == 1, was_cached),
        };
        self.count(loaded, was_cached);
        match (loaded, was_cached) {
            (false, false) => crate::metrics::coalesced("search"),
            (loaded, _) => crate::metrics::search_cache(!loaded),
        }
        if !self.cache_pages || self.shared.is_some() {
            // Shared pages live in Redis; here, identical reads in flight are still one.
            self.pages.invalidate(&key).await;
        }
        match page {
            Ok(page) => Ok(UserPage::clone(&page)),
            Err(e) => Err(OktaError::clone(&e)),
        }
    }

    /// Without Redis: `load`. With it: the page another instance keeps, or the answer of the
    /// one asking Okta for it now, or `load` (kept for the others). Returns whether the page
    /// came from Redis.
    async fn load_page<F>(&self, key: &str, load: F) -> Result<(UserPage, bool), OktaError>
    where
        F: Future<Output = Result<UserPage, OktaError>>,
    {
        let Some(shared) = &self.shared else {
            return Ok((load.await?, false));
        };
        let digest: String = Sha256::digest(key.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let kept =
            |json: Option<String>| json.and_then(|j| serde_json::from_str::<UserPage>(&j).ok());
        if let Some(page) = kept(shared.cached_page(&digest).await) {
            return Ok((page, true));
        }
        let claimed = shared.claim_page(&digest, SHARED_WAIT).await;
        if !claimed {
            let deadline = Instant::now() + SHARED_WAIT;
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(page) = kept(shared.cached_page(&digest).await) {
                    return Ok((page, true));
                }
            }
        }
        let page = load.await;
        if let Ok(page) = &page
            && let Ok(json) = serde_json::to_string(page)
        {
            let users: Vec<String> = page
                .users
                .iter()
                .flat_map(|u| [u.id.to_lowercase(), u.profile.login.to_lowercase()])
                .collect();
            shared
                .keep_page(&digest, &json, &users, self.page_ttl)
                .await;
        }
        if claimed {
            shared.release_page(&digest).await;
        }
        Ok((page?, false))
    }

    /// A list of groups: from the cache, from a call already running for the same query, or
    /// from `load`.
    pub async fn groups<F>(&self, key: String, load: F) -> Result<Vec<Group>, OktaError>
    where
        F: Future<Output = Result<Vec<Group>, OktaError>>,
    {
        let was_cached = self.groups.contains_key(&key);
        let loaded = AtomicU64::new(0);
        let groups = self
            .groups
            .try_get_with(key.clone(), async {
                loaded.store(1, Ordering::Relaxed);
                load.await.map(Arc::new)
            })
            .await;
        self.count(loaded.load(Ordering::Relaxed) == 1, was_cached);
        if !self.cache_groups {
            self.groups.invalidate(&key).await;
        }
        match groups {
            Ok(groups) => Ok(Vec::clone(&groups)),
            Err(e) => Err(OktaError::clone(&e)),
        }
    }

    /// One user: from a call already running for the same id or login, or from `load`.
    pub async fn user<F>(&self, id_or_login: &str, load: F) -> Result<User, OktaError>
    where
        F: Future<Output = Result<User, OktaError>>,
    {
        let key = id_or_login.to_lowercase();
        let loaded = AtomicU64::new(0);
        let user = self
            .users
            .try_get_with(key.clone(), async {
                loaded.store(1, Ordering::Relaxed);
                load.await.map(Arc::new)
            })
            .await;
        let first = loaded.load(Ordering::Relaxed) == 1;
        self.count(first, false);
        if !first {
            crate::metrics::coalesced("user");
        }
        if first {
            // Coalescing only: the next read after this one asks Okta again.
            self.users.invalidate(&key).await;
        }
        match user {
            Ok(user) => Ok(User::clone(&user)),
            Err(e) => Err(OktaError::clone(&e)),
        }
    }

    fn count(&self, loaded: bool, was_cached: bool) {
        let counter = match (loaded, was_cached) {
            (true, _) => &self.counts.okta_calls,
            (false, true) => &self.counts.served_from_cache,
            (false, false) => &self.counts.coalesced,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The portal changed something in Okta at `path`: drops what it makes stale, here and,
    /// with Redis, for every instance.
    pub async fn changed(&self, method: &reqwest::Method, path: &str) {
        let segs: Vec<&str> = path
            .trim_start_matches("/api/v1/")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let user = match segs.as_slice() {
            ["groups"] | ["groups", _] => {
                self.groups.invalidate_all();
                return;
            }
            ["users"] if method == reqwest::Method::POST => None,
            ["users", id, ..] => Some(*id),
            ["groups", _, "users", id] => Some(*id),
            _ => return,
        };
        let Some(encoded) = user else {
            // A new user may match any search.
            self.pages.invalidate_all();
            if let Some(shared) = &self.shared {
                shared.drop_pages(None).await;
            }
            return;
        };
        let id = url::form_urlencoded::parse(format!("x={encoded}").as_bytes())
            .next()
            .map(|(_, v)| v.to_lowercase())
            .unwrap_or_default();
        if let Some(shared) = &self.shared {
            shared.drop_pages(Some(&id)).await;
        }
        let holds = move |_: &String, page: &Arc<UserPage>| {
            page.users
                .iter()
                .any(|u| u.id.to_lowercase() == id || u.profile.login.to_lowercase() == id)
        };
        if self.pages.invalidate_entries_if(holds).is_err() {
            self.pages.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn load(calls: &AtomicU64) -> Result<Vec<Group>, OktaError> {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(Vec::new())
    }

    #[tokio::test]
    async fn the_group_list_is_kept_until_the_portal_changes_a_group() {
        let reads = Reads::new(Duration::from_secs(5), Duration::from_secs(300));
        let calls = AtomicU64::new(0);
        for _ in 0..3 {
            reads.groups("200|".into(), load(&calls)).await.unwrap();
        }
        assert_eq!(calls.load(Ordering::Relaxed), 1, "one call, then the cache");
        // A membership change does not change the list; a change to a group does.
        reads
            .changed(&reqwest::Method::PUT, "/api/v1/groups/00g1/users/00u1")
            .await;
        reads.groups("200|".into(), load(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        reads
            .changed(&reqwest::Method::PUT, "/api/v1/groups/00g1")
            .await;
        reads.groups("200|".into(), load(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn no_group_cache_when_it_is_turned_off() {
        let reads = Reads::new(Duration::from_secs(5), Duration::ZERO);
        let calls = AtomicU64::new(0);
        reads.groups("200|".into(), load(&calls)).await.unwrap();
        reads.groups("200|".into(), load(&calls)).await.unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }
}
