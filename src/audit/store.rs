//! The store: appends records to the hash chain, reads them back.

use time::OffsetDateTime;

use super::dialect::{Dialect, on_pool};
use super::row::{INSERT_COLUMNS, ROLLUP_UPSERT, Rollup, RowContent, add_to_rollup, write_rollup};
use super::{ActivityFilter, AuditRecord, NewEvent, format_timestamp, throttle};
use crate::db::Database;

/// Removes a finished row of `audit_unfinished` (either backend; `?` placeholders).
const REMOVE_UNFINISHED: &str = "DELETE FROM audit_unfinished WHERE id = ?";

/// The unfinished row an append removes; `must_exist` when the append is the recovery, which
/// another instance may have done first.
pub(super) struct Finishing<'a> {
    pub id: &'a str,
    pub must_exist: bool,
}

#[derive(Clone)]
pub struct AuditStore {
    db: Database,
    pub(super) throttle: std::sync::Arc<throttle::Throttle>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore").field("db", &self.db).finish()
    }
}

impl AuditStore {
    pub fn new(db: Database) -> AuditStore {
        Self::with_throttle(
            db,
            &throttle::ThrottleConfig::default(),
            crate::cluster::Shared::local(),
        )
    }

    /// A store whose anonymous failures are limited as `throttle` says, per address across
    /// the instances that share `shared`.
    pub fn with_throttle(
        db: Database,
        throttle: &throttle::ThrottleConfig,
        shared: crate::cluster::Shared,
    ) -> AuditStore {
        AuditStore {
            db,
            throttle: throttle::Throttle::new(throttle, shared),
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Appends one record to the chain. The chain head is locked for the transaction, so
    /// concurrent writers (and several instances on PostgreSQL) stay in one order. Callers
    /// decide what a failure means for their response; the failure is always logged here.
    /// Returns the new record's id.
    pub async fn record(&self, event: NewEvent) -> anyhow::Result<i64> {
        self.record_with(event, None).await
    }

    /// Appends the record of `event`, removing the unfinished row it finishes (if any) in the
    /// same transaction.
    pub(super) async fn record_with(
        &self,
        event: NewEvent,
        finishing: Option<Finishing<'_>>,
    ) -> anyhow::Result<i64> {
        let now = OffsetDateTime::now_utc();
        let content = RowContent::from_event(&event, format_timestamp(now));
        let result = self
            .append(&content, finishing)
            .await
            .map(|id| id.unwrap_or_default());
        if let Err(e) = &result {
            tracing::error!(
                request_id = ?event.meta.request_id,
                action = event.action.as_str(),
                error = %e,
                "audit write failed"
            );
        }
        result
    }

    /// One transaction: remove the unfinished row it finishes (if any), lock the chain head,
    /// insert the record with its hashes, move the head, add to the daily rollup. Written once
    /// for both backends. `None` when `finishing` must exist and another writer took it.
    pub(super) async fn append(
        &self,
        content: &RowContent,
        finishing: Option<Finishing<'_>>,
    ) -> anyhow::Result<Option<i64>> {
        let d = Dialect::of(&self.db);
        let insert = d.sql(&format!(
            "INSERT INTO audit_events ({INSERT_COLUMNS}) VALUES ({}, {}) RETURNING id",
            d.timestamp("?"),
            vec!["?"; 22].join(", ")
        ));
        let move_head =
            d.sql("UPDATE audit_chain SET last_id = ?, last_hash = ?, row_count = ? WHERE id = 1");
        let upsert = d.sql(ROLLUP_UPSERT);
        let remove = d.sql(REMOVE_UNFINISHED);
        let mut rollup = Rollup::new();
        add_to_rollup(&mut rollup, content);
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(f) = &finishing {
                let gone = sqlx::query(&remove).bind(f.id).execute(&mut *tx).await?;
                if f.must_exist && gone.rows_affected() == 0 {
                    return Ok(None);
                }
            }
            if let Some(lock) = d.lock_head() {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let (prev, count): (String, i64) =
                sqlx::query_as(d.read_head()).fetch_one(&mut *tx).await?;
            let hash = content.hash(&prev);
            let mut q = sqlx::query(&insert);
            for value in content.values() {
                q = q.bind(value);
            }
            let row = q.bind(&prev).bind(&hash).fetch_one(&mut *tx).await?;
            let id: i64 = sqlx::Row::try_get(&row, 0)?;
            sqlx::query(&move_head)
                .bind(id)
                .bind(&hash)
                .bind(count + 1)
                .execute(&mut *tx)
                .await?;
            write_rollup!(&mut tx, &upsert, &rollup);
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// The newest records first.
    pub async fn recent(&self, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        Ok(self
            .page(&ActivityFilter::default(), None, limit)
            .await?
            .records)
    }

    /// The newest records about one target user.
    pub async fn by_target(&self, target_id: &str, limit: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let filter = ActivityFilter {
            target_id: Some(target_id.to_string()),
            ..ActivityFilter::default()
        };
        Ok(self.page(&filter, None, limit).await?.records)
    }
}
