//! The session store: the same database as the audit trail, read through a small cache.
//!
//! - The table is keyed by the SHA-256 of the cookie's value and holds the session data
//!   sealed with `session.encryption_key` ([`cipher`]): a copy of the table signs nobody in
//!   and shows no token. A row that does not open is a signed-out session, not an error.
//! - Reads go through a bounded in-process cache; an entry older than
//!   `session.cache_recheck_seconds` is read again from the database, which stays the truth
//!   for every instance. Ending a session deletes the row and this instance's entry.
//! - A request writes only when the data changed or the idle expiry would move by more than
//!   `SessionConfig::expiry_write_threshold`. An update never recreates a row that another
//!   instance deleted.
//! - When a session ends (deleted, or swept after expiry) its data is handed to a
//!   [`SessionEnded`] hook (the portal revokes the refresh token there).

mod cipher;
mod rows;

pub use cipher::{SessionCipher, SessionKey, Unreadable, hash_id};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::db::Database;
use rows::Row;

/// What is done with the data of a session that ended.
#[async_trait]
pub trait SessionEnded: Send + Sync {
    /// Called once the session's row is gone (or about to go, for an expired one). `false`
    /// asks the sweeper to try again on its next round.
    async fn ended(&self, data: &HashMap<String, Value>) -> bool;
}

/// A session as this instance last saw it in the database.
struct Cached {
    data: HashMap<String, Value>,
    expires_at: i64,
    checked: Instant,
}

struct Inner {
    db: Database,
    cipher: SessionCipher,
    cache: moka::future::Cache<String, Arc<Cached>>,
    recheck: Duration,
    write_threshold: i64,
    hook: Option<Arc<dyn SessionEnded>>,
    writes: AtomicU64,
}

/// Cheap to clone; every clone shares the cache.
#[derive(Clone)]
pub struct DbSessionStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the cache's entries: they hold the session data.
        f.debug_struct("DbSessionStore")
            .field("backend", &self.inner.db.backend())
            .field("cached", &self.inner.cache.entry_count())
            .finish()
    }
}

/// Sessions expired longer ago than this are deleted even if their hook keeps failing.
const GIVE_UP_AFTER: i64 = 24 * 3600;
/// Expired rows handled per sweep query.
const SWEEP_BATCH: i64 = 200;

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn encode(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Encode(e.to_string())
}

/// What the store needs from `[session]`.
pub struct StoreSettings<'a> {
    pub encryption_key: Option<&'a secrecy::SecretString>,
    pub old_keys: &'a [secrecy::SecretString],
    pub cache_capacity: u64,
    pub idle: Duration,
    pub recheck: Duration,
    pub write_threshold: Duration,
}

impl DbSessionStore {
    /// The store over `db` (whose migrations created the table), with `settings` (from
    /// `[session]`, see `SessionConfig::store_settings`).
    pub fn new(
        db: &Database,
        settings: StoreSettings<'_>,
        hook: Option<Arc<dyn SessionEnded>>,
    ) -> anyhow::Result<DbSessionStore> {
        let key = settings
            .encryption_key
            .ok_or_else(|| anyhow::anyhow!("session.encryption_key is not set"))?;
        let parse = |k| SessionKey::parse(k).map_err(|e| anyhow::anyhow!("session key {e}"));
        let current = parse(key)?;
        let old = settings
            .old_keys
            .iter()
            .map(parse)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cache = moka::future::Cache::builder()
            .max_capacity(settings.cache_capacity)
            .time_to_idle(settings.idle)
            .build();
        Ok(DbSessionStore {
            inner: Arc::new(Inner {
                db: db.clone(),
                cipher: SessionCipher::new(current, old),
                cache,
                recheck: settings.recheck,
                write_threshold: settings.write_threshold.as_secs() as i64,
                hook,
                writes: AtomicU64::new(0),
            }),
        })
    }

    /// Rows written (created or updated) by this instance since it started.
    pub fn writes(&self) -> u64 {
        self.inner.writes.load(Ordering::Relaxed)
    }

    fn seal(&self, id_hash: &str, data: &HashMap<String, Value>) -> session_store::Result<Vec<u8>> {
        let plain = serde_json::to_vec(data).map_err(encode)?;
        self.inner.cipher.seal(id_hash, &plain).map_err(encode)
    }

    /// The row's data, or `None` when it does not open or parse.
    fn open(&self, row: &Row) -> Option<HashMap<String, Value>> {
        let plain = self.inner.cipher.open(&row.id_hash, &row.data).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    async fn remember(&self, id_hash: String, data: HashMap<String, Value>, expires_at: i64) {
        let entry = Cached {
            data,
            expires_at,
            checked: Instant::now(),
        };
        self.inner.cache.insert(id_hash, Arc::new(entry)).await;
    }

    /// Reads the row (the truth) and refreshes the cache from it.
    async fn load_from_db(
        &self,
        id: &Id,
        id_hash: String,
    ) -> session_store::Result<Option<Record>> {
        let Some(row) = rows::select(&self.inner.db, &id_hash, Some(now_unix())).await? else {
            self.inner.cache.invalidate(&id_hash).await;
            return Ok(None);
        };
        let Some(data) = self.open(&row) else {
            tracing::warn!("a stored session could not be decrypted; it is ended");
            self.inner.cache.invalidate(&id_hash).await;
            rows::delete(&self.inner.db, &id_hash, None).await?;
            return Ok(None);
        };
        self.remember(id_hash, data.clone(), row.expires_at).await;
        Ok(Some(record(*id, data, row.expires_at)))
    }

    /// Removes expired sessions, handing each one's data to the hook first. Returns how many
    /// rows were deleted.
    pub async fn sweep_expired(&self) -> session_store::Result<usize> {
        let now = now_unix();
        let mut deleted = 0;
        loop {
            let batch = rows::expired(&self.inner.db, now, SWEEP_BATCH).await?;
            let full = batch.len() as i64 == SWEEP_BATCH;
            let mut kept = 0;
            for row in batch {
                let done = match (self.open(&row), &self.inner.hook) {
                    (Some(data), Some(hook)) => hook.ended(&data).await,
                    _ => true,
                };
                if done || now - row.expires_at > GIVE_UP_AFTER {
                    rows::delete(&self.inner.db, &row.id_hash, Some(now)).await?;
                    self.inner.cache.invalidate(&row.id_hash).await;
                    deleted += 1;
                } else {
                    kept += 1;
                }
            }
            // Rows kept for another try would come back first: stop and retry next round.
            if !full || kept > 0 {
                return Ok(deleted);
            }
        }
    }
}

fn record(id: Id, data: HashMap<String, Value>, expires_at: i64) -> Record {
    Record {
        id,
        data,
        expiry_date: OffsetDateTime::from_unix_timestamp(expires_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let expires_at = record.expiry_date.unix_timestamp();
        loop {
            let id_hash = hash_id(&record.id);
            let row = Row {
                data: self.seal(&id_hash, &record.data)?,
                id_hash,
                expires_at,
            };
            if rows::insert(&self.inner.db, &row).await? {
                self.inner.writes.fetch_add(1, Ordering::Relaxed);
                self.remember(row.id_hash, record.data.clone(), expires_at)
                    .await;
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let id_hash = hash_id(&record.id);
        let expires_at = record.expiry_date.unix_timestamp();
        if let Some(seen) = self.inner.cache.get(&id_hash).await {
            let moved = expires_at - seen.expires_at;
            if seen.data == record.data && (0..self.inner.write_threshold).contains(&moved) {
                return Ok(());
            }
        }
        let row = Row {
            data: self.seal(&id_hash, &record.data)?,
            id_hash,
            expires_at,
        };
        if rows::update(&self.inner.db, &row, now_unix()).await? {
            self.inner.writes.fetch_add(1, Ordering::Relaxed);
            self.remember(row.id_hash, record.data.clone(), expires_at)
                .await;
        } else {
            tracing::debug!("session ended meanwhile; not recreated");
            self.inner.cache.invalidate(&row.id_hash).await;
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let id_hash = hash_id(id);
        if let Some(seen) = self.inner.cache.get(&id_hash).await
            && seen.checked.elapsed() < self.inner.recheck
            && seen.expires_at > now_unix()
        {
            return Ok(Some(record(*id, seen.data.clone(), seen.expires_at)));
        }
        self.load_from_db(id, id_hash).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let id_hash = hash_id(id);
        self.inner.cache.invalidate(&id_hash).await;
        let row = rows::select(&self.inner.db, &id_hash, None).await?;
        rows::delete(&self.inner.db, &id_hash, None).await?;
        if let (Some(data), Some(hook)) = (row.and_then(|r| self.open(&r)), &self.inner.hook) {
            hook.ended(&data).await;
        }
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.sweep_expired().await.map(|_| ())
    }
}
