//! Tamper evidence: verify the hash chain, and prune old records behind a checkpoint.

use futures_util::TryStreamExt;

use super::dialect::{Dialect, on_pool};
use super::{AuditRecord, AuditStore, GENESIS, RowContent};

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub checked: u64,
    /// The first record that does not fit the chain, and why.
    pub broken: Option<Broken>,
    /// Records removed by `audit prune` (behind a checkpoint).
    pub pruned: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The id of the first bad record (or of the last good one for a missing tail).
    pub id: i64,
    pub reason: String,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

#[derive(sqlx::FromRow)]
struct Head {
    last_id: i64,
    last_hash: String,
    row_count: i64,
}

#[derive(sqlx::FromRow)]
struct Checkpoint {
    through_id: i64,
    through_hash: String,
    pruned: i64,
}

/// The walk along the chain: where it is, and what the next record must point to.
struct Walk {
    expected_prev: String,
    last_id: i64,
    checked: u64,
    /// No checkpoint: the first record must be record 1.
    from_genesis: bool,
}

impl Walk {
    /// Why `r` does not continue the chain, if it does not; else moves past it.
    fn step(&mut self, r: &AuditRecord) -> Option<String> {
        self.checked += 1;
        let reason = if r.id <= self.last_id {
            Some("records are out of order".to_string())
        } else if r.prev_hash != self.expected_prev {
            Some(if self.checked == 1 && self.from_genesis && r.id != 1 {
                "the first records of the trail are missing".to_string()
            } else {
                "the previous record was removed or changed (previous hash does not match)"
                    .to_string()
            })
        } else if RowContent::from_record(r).hash(&r.prev_hash) != r.hash {
            Some("the record's content was changed (hash does not match)".to_string())
        } else {
            None
        };
        if reason.is_none() {
            self.expected_prev = r.hash.clone();
            self.last_id = r.id;
        }
        reason
    }

    /// Whether the walk ended where the chain head says the trail ends.
    fn end(&self, head: Option<&Head>, pruned: i64) -> Option<String> {
        let Some(h) = head else {
            return Some("the chain head is missing".into());
        };
        if h.last_id != self.last_id || h.last_hash != self.expected_prev {
            Some(format!(
                "the newest records were removed: the chain head is record {} but the trail ends at {}",
                h.last_id, self.last_id
            ))
        } else if h.row_count != self.checked as i64 + pruned {
            Some(format!(
                "{} records were written but {} are present and {} pruned",
                h.row_count, self.checked, pruned
            ))
        } else {
            None
        }
    }
}

impl AuditStore {
    /// The chain head and the latest checkpoint (with the total pruned).
    async fn chain_ends(&self) -> anyhow::Result<(Option<Head>, Option<Checkpoint>)> {
        let sum = match Dialect::of(self.db()) {
            Dialect::Sqlite => "(SELECT COALESCE(SUM(pruned_count), 0) FROM audit_checkpoints)",
            Dialect::Postgres => {
                "(SELECT COALESCE(SUM(pruned_count), 0)::BIGINT FROM audit_checkpoints)"
            }
        };
        let checkpoint_sql = format!(
            "SELECT through_id, through_hash, {sum} AS pruned FROM audit_checkpoints ORDER BY id DESC LIMIT 1"
        );
        let head_sql = "SELECT last_id, last_hash, row_count FROM audit_chain WHERE id = 1";
        Ok(on_pool!(self.db(), |pool| (
            sqlx::query_as::<_, Head>(head_sql)
                .fetch_optional(pool)
                .await?,
            sqlx::query_as::<_, Checkpoint>(&checkpoint_sql)
                .fetch_optional(pool)
                .await?,
        )))
    }

    /// Walks the whole chain in id order and reports the first broken link.
    pub async fn verify(&self) -> anyhow::Result<Verification> {
        let (head, checkpoint) = self.chain_ends().await?;
        let pruned = checkpoint.as_ref().map(|c| c.pruned).unwrap_or(0);
        let mut walk = Walk {
            expected_prev: checkpoint
                .as_ref()
                .map(|c| c.through_hash.clone())
                .unwrap_or_else(|| GENESIS.to_string()),
            last_id: checkpoint.as_ref().map(|c| c.through_id).unwrap_or(0),
            checked: 0,
            from_genesis: checkpoint.is_none(),
        };
        // Only up to the head read above: records written meanwhile are not part of this
        // check (and are not mistaken for tampering).
        let head_limit = head.as_ref().map(|h| h.last_id).unwrap_or(i64::MAX);
        let d = Dialect::of(self.db());
        let sql = d.sql(&format!("{} WHERE id <= ? ORDER BY id", d.select_records()));
        let mut broken = None;
        on_pool!(self.db(), |pool| {
            let mut rows = sqlx::query_as::<_, AuditRecord>(&sql)
                .bind(head_limit)
                .fetch(pool);
            while let Some(r) = rows.try_next().await? {
                if let Some(reason) = walk.step(&r) {
                    broken = Some(Broken { id: r.id, reason });
                    break;
                }
            }
        });
        let broken = broken.or_else(|| {
            walk.end(head.as_ref(), pruned).map(|reason| Broken {
                id: walk.last_id,
                reason,
            })
        });
        Ok(Verification {
            checked: walk.checked,
            broken,
            pruned,
        })
    }

    /// Deletes the records older than `before` (a `YYYY-MM-DD` day, exclusive) behind a
    /// checkpoint that keeps the rest verifiable. Returns how many were removed.
    pub async fn prune(&self, before: &str) -> anyhow::Result<i64> {
        let (start, _) = super::query::day_bounds(before)
            .ok_or_else(|| anyhow::anyhow!("--before must be a date like 2026-01-31"))?;
        let now = super::format_timestamp(time::OffsetDateTime::now_utc());
        let day: String = start.chars().take(10).collect();
        let d = Dialect::of(self.db());
        let last_before = d.sql(&format!(
            "SELECT id, hash FROM audit_events WHERE occurred_at < {} ORDER BY id DESC LIMIT 1",
            d.timestamp("?")
        ));
        let count_through = d.sql("SELECT COUNT(*) FROM audit_events WHERE id <= ?");
        let checkpoint = d.sql(&format!(
            "INSERT INTO audit_checkpoints (created_at, before, through_id, through_hash, pruned_count) \
             VALUES ({}, {}, ?, ?, ?)",
            d.timestamp("?"),
            d.timestamp("?")
        ));
        let delete_events = d.sql("DELETE FROM audit_events WHERE id <= ?");
        let delete_days = d.sql("DELETE FROM audit_daily WHERE day < ?");
        on_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            if let Some(lock) = d.lock_head() {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            sqlx::query(d.read_head()).execute(&mut *tx).await?;
            let through: Option<(i64, String)> = sqlx::query_as(&last_before)
                .bind(&start)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((through_id, through_hash)) = through else {
                return Ok(0);
            };
            let (count,): (i64,) = sqlx::query_as(&count_through)
                .bind(through_id)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(&checkpoint)
                .bind(&now)
                .bind(&start)
                .bind(through_id)
                .bind(&through_hash)
                .bind(count)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&delete_events)
                .bind(through_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&delete_days)
                .bind(&day)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(count)
        })
    }
}
