//! Tamper evidence: verify the hash chain, and prune old records behind a checkpoint.

use futures_util::TryStreamExt;

use super::{AuditRecord, AuditStore, GENESIS, RowContent, SELECT_POSTGRES, SELECT_SQLITE};
use crate::db::Database;

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

impl AuditStore {
    /// Walks the whole chain in id order and reports the first broken link.
    pub async fn verify(&self) -> anyhow::Result<Verification> {
        let (head, checkpoint) = match self.db() {
            Database::Sqlite(pool) => (
                sqlx::query_as::<_, Head>("SELECT last_id, last_hash, row_count FROM audit_chain WHERE id = 1")
                    .fetch_optional(pool)
                    .await?,
                sqlx::query_as::<_, Checkpoint>(
                    "SELECT through_id, through_hash, (SELECT COALESCE(SUM(pruned_count), 0) FROM audit_checkpoints) AS pruned \
                     FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?,
            ),
            Database::Postgres(pool) => (
                sqlx::query_as::<_, Head>("SELECT last_id, last_hash, row_count FROM audit_chain WHERE id = 1")
                    .fetch_optional(pool)
                    .await?,
                sqlx::query_as::<_, Checkpoint>(
                    "SELECT through_id, through_hash, (SELECT COALESCE(SUM(pruned_count), 0)::BIGINT FROM audit_checkpoints) AS pruned \
                     FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?,
            ),
        };
        let (mut expected_prev, mut last_id, pruned) = match &checkpoint {
            Some(c) => (c.through_hash.clone(), c.through_id, c.pruned),
            None => (GENESIS.to_string(), 0, 0),
        };
        let head_limit = head.as_ref().map(|h| h.last_id).unwrap_or(i64::MAX);
        let mut checked = 0u64;
        let mut broken: Option<Broken> = None;
        {
            let mut check = |r: AuditRecord| -> bool {
                checked += 1;
                let reason = if r.id <= last_id {
                    Some("records are out of order".to_string())
                } else if r.prev_hash != expected_prev {
                    Some(if checked == 1 && checkpoint.is_none() && r.id != 1 {
                        "the first records of the trail are missing".to_string()
                    } else {
                        "the previous record was removed or changed (previous hash does not match)"
                            .to_string()
                    })
                } else if RowContent::from_record(&r).hash(&r.prev_hash) != r.hash {
                    Some("the record's content was changed (hash does not match)".to_string())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    broken = Some(Broken { id: r.id, reason });
                    return false;
                }
                expected_prev = r.hash.clone();
                last_id = r.id;
                true
            };
            match self.db() {
                Database::Sqlite(pool) => {
                    // Only up to the head read above: records written meanwhile are not part of
                    // this check (and are not mistaken for tampering).
                    let sql = format!("{SELECT_SQLITE} WHERE id <= ? ORDER BY id");
                    let mut rows = sqlx::query_as::<_, AuditRecord>(&sql)
                        .bind(head_limit)
                        .fetch(pool);
                    while let Some(r) = rows.try_next().await? {
                        if !check(r) {
                            break;
                        }
                    }
                }
                Database::Postgres(pool) => {
                    let sql = format!("{SELECT_POSTGRES} WHERE id <= $1 ORDER BY id");
                    let mut rows = sqlx::query_as::<_, AuditRecord>(&sql)
                        .bind(head_limit)
                        .fetch(pool);
                    while let Some(r) = rows.try_next().await? {
                        if !check(r) {
                            break;
                        }
                    }
                }
            }
        }
        if broken.is_none() {
            match head {
                None => {
                    broken = Some(Broken {
                        id: last_id,
                        reason: "the chain head is missing".into(),
                    })
                }
                Some(h) => {
                    if h.last_id != last_id || h.last_hash != expected_prev {
                        broken = Some(Broken {
                            id: last_id,
                            reason: format!(
                                "the newest records were removed: the chain head is record {} but the trail ends at {}",
                                h.last_id, last_id
                            ),
                        });
                    } else if h.row_count != checked as i64 + pruned {
                        broken = Some(Broken {
                            id: last_id,
                            reason: format!(
                                "{} records were written but {} are present and {} pruned",
                                h.row_count, checked, pruned
                            ),
                        });
                    }
                }
            }
        }
        Ok(Verification {
            checked,
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
        match self.db() {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("UPDATE audit_chain SET row_count = row_count WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                let through: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, hash FROM audit_events WHERE occurred_at < ? ORDER BY id DESC LIMIT 1")
                        .bind(&start)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((through_id, through_hash)) = through else {
                    return Ok(0);
                };
                let (count,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE id <= ?")
                        .bind(through_id)
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query(
                    "INSERT INTO audit_checkpoints (created_at, before, through_id, through_hash, pruned_count) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&now)
                .bind(&start)
                .bind(through_id)
                .bind(&through_hash)
                .bind(count)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM audit_events WHERE id <= ?")
                    .bind(through_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM audit_daily WHERE day < ?")
                    .bind(&day)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(count)
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT 1 FROM audit_chain WHERE id = 1 FOR UPDATE")
                    .execute(&mut *tx)
                    .await?;
                let through: Option<(i64, String)> = sqlx::query_as(
                    "SELECT id, hash FROM audit_events WHERE occurred_at < CAST($1 AS TIMESTAMPTZ) ORDER BY id DESC LIMIT 1",
                )
                .bind(&start)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((through_id, through_hash)) = through else {
                    return Ok(0);
                };
                let (count,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE id <= $1")
                        .bind(through_id)
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query(
                    "INSERT INTO audit_checkpoints (created_at, before, through_id, through_hash, pruned_count) \
                     VALUES (CAST($1 AS TIMESTAMPTZ), CAST($2 AS TIMESTAMPTZ), $3, $4, $5)",
                )
                .bind(&now)
                .bind(&start)
                .bind(through_id)
                .bind(&through_hash)
                .bind(count)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM audit_events WHERE id <= $1")
                    .bind(through_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM audit_daily WHERE day < $1")
                    .bind(&day)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(count)
            }
        }
    }
}
