//! A short shared cache of Okta answers (search pages), so that instances behind one balancer
//! make one Okta call for the same search and drop a page everywhere the moment any of them
//! changes a user on it.
//!
//! Keys (under the prefix): `reads:page:{digest}` (the answer, JSON, expires with the cache
//! time), `reads:holds:{user}` (set: the pages that show a user, by id and by login),
//! `reads:pages` (set: every cached page, to drop them all when a user is created) and
//! `once:reads.inflight:{digest}` (the instance that is asking Okta for that page now).
//! When Redis does not answer, every call here says "nothing shared" and the caller reads
//! Okta itself.

use std::sync::LazyLock;
use std::time::Duration;

use super::Shared;

/// KEYS[1] the page, KEYS[2] the set of all pages, KEYS[3..] the `holds` sets of its users;
/// ARGV[1] the answer, ARGV[2] how long it is kept (ms).
static STORE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
",
    )
});

/// KEYS[1] a set of pages: deletes them and the set.
static DROP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local pages = redis.call('SMEMBERS', KEYS[1])
for _, page in ipairs(pages) do redis.call('DEL', page) end
redis.call('DEL', KEYS[1])
return #pages
",
    )
});

/// KEYS[1]: its value, if any.
static GET: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new("return redis.call('GET', KEYS[1])"));

/// KEYS[1]: deleted.
static FORGET: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new("return redis.call('DEL', KEYS[1])"));

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl Shared {
    /// A cached page, when Redis holds one (`None` also when Redis does not answer).
    pub async fn cached_page(&self, digest: &str) -> Option<String> {
        if !self.configured() {
            return None;
        }
        let key = self.key(&["reads", "page", digest]);
        self.run::<Option<String>>(GET.key(&key)).await.flatten()
    }

    /// Keeps a page for `ttl`, noted under each of `users` (ids and logins, lower case).
    pub async fn keep_page(&self, digest: &str, answer: &str, users: &[String], ttl: Duration) {
        if !self.configured() {
            return;
        }
        let mut invocation = STORE.key(self.key(&["reads", "page", digest]));
        invocation.key(self.key(&["reads", "pages"]));
        for user in users {
            invocation.key(self.key(&["reads", "holds", user]));
        }
        invocation.arg(answer).arg(millis(ttl));
        let _ = self.run::<i64>(invocation).await;
    }

    /// Drops every cached page that shows `user` (an id or a login, lower case), or every
    /// page with `None` (a new user may match any search).
    pub async fn drop_pages(&self, user: Option<&str>) {
        if !self.configured() {
            return;
        }
        let set = match user {
            Some(user) => self.key(&["reads", "holds", user]),
            None => self.key(&["reads", "pages"]),
        };
        let _ = self.run::<i64>(DROP.key(&set)).await;
    }

    /// This instance asks Okta for the page; the others wait for its answer (`false`: another
    /// one already does).
    pub async fn claim_page(&self, digest: &str, hold: Duration) -> bool {
        self.claim_once("reads.inflight", digest, hold).await
    }

    /// The page is answered (or its call failed): the next instance may ask.
    pub async fn release_page(&self, digest: &str) {
        let key = self.key(&["once", "reads.inflight", digest]);
        let _ = self.run::<i64>(FORGET.key(&key)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{redis_shared, same_cluster};
    use super::*;

    #[tokio::test]
    async fn a_page_kept_by_one_instance_is_read_and_dropped_by_another() {
        let a = redis_shared("reads").await;
        let b = same_cluster(&a).await;
        let ttl = Duration::from_secs(5);
        let users = ["00u1".to_string(), "ada@example.com".to_string()];
        a.keep_page("p1", "{\"page\":1}", &users, ttl).await;
        a.keep_page("p2", "{\"page\":2}", &["00u2".to_string()], ttl)
            .await;
        assert_eq!(b.cached_page("p1").await.as_deref(), Some("{\"page\":1}"));
        b.drop_pages(Some("ada@example.com")).await;
        assert_eq!(
            a.cached_page("p1").await,
            None,
            "dropped by its user's login"
        );
        assert!(a.cached_page("p2").await.is_some());
        b.drop_pages(None).await;
        assert_eq!(a.cached_page("p2").await, None, "a new user drops them all");
        assert!(a.claim_page("p3", ttl).await);
        assert!(!b.claim_page("p3", ttl).await, "a is asking Okta");
        a.release_page("p3").await;
        assert!(b.claim_page("p3", ttl).await);
    }

    #[tokio::test]
    async fn without_redis_nothing_is_shared() {
        let local = Shared::local();
        local
            .keep_page("p", "{}", &[], Duration::from_secs(5))
            .await;
        assert_eq!(local.cached_page("p").await, None);
    }
}
