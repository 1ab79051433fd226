//! A newer call with the same key cancels the older one: the live search of an agent who
//! typed another letter is dropped (and with it its place in the Okta budget's queue, or its
//! call to Okta) instead of spending a request nobody will read.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::watch;

/// Keys (agents) remembered at most, and how long an idle key is kept.
const MAX_KEYS: u64 = 10_000;
const IDLE: Duration = Duration::from_secs(120);

pub struct Supersede {
    latest: Cache<String, Arc<watch::Sender<u64>>>,
}

impl Default for Supersede {
    fn default() -> Self {
        Supersede {
            latest: Cache::builder()
                .max_capacity(MAX_KEYS)
                .time_to_idle(IDLE)
                .build(),
        }
    }
}

/// The call was replaced by a newer one with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded;

impl Supersede {
    /// Runs `work` unless (or until) a newer call with `key` starts; then `work` is dropped.
    pub async fn run<T>(&self, key: &str, work: impl Future<Output = T>) -> Result<T, Superseded> {
        let sender = self
            .latest
            .get_with(key.to_string(), || Arc::new(watch::channel(0).0));
        let mut mine = 0;
        sender.send_modify(|n| {
            *n += 1;
            mine = *n;
        });
        let mut newer = sender.subscribe();
        tokio::select! {
            done = work => Ok(done),
            _ = newer.wait_for(|n| *n != mine) => Err(Superseded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_newer_call_cancels_the_older_one_with_the_same_key() {
        let s = Arc::new(Supersede::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let older = {
            let s = s.clone();
            tokio::spawn(async move {
                s.run("agent", async {
                    let _ = rx.await;
                    "older"
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(s.run("agent", async { "newer" }).await, Ok("newer"));
        assert_eq!(older.await.unwrap(), Err(Superseded));
        drop(tx);
        assert_eq!(s.run("other", async { 1 }).await, Ok(1));
    }
}
