//! Crash safety for the audit trail: a change is announced before it is sent to Okta.
//!
//! [`AuditStore::begin`] writes the record the change would get if the process died during
//! the Okta call (outcome `unknown`) into `audit_unfinished`; the real record, written after
//! Okta answers, removes that row in its own transaction
//! ([`AuditStore::record_finishing`]). A row older than `audit.unfinished_after_seconds` can
//! only belong to a process that stopped half-way (an Okta call ends long before: timeout ×
//! retries), so [`AuditStore::recover_unfinished`] appends it to the chain as it was announced.
//! Every change that may have reached Okta therefore ends with exactly one record: its outcome,
//! or `unknown` with the request id to look up in Okta's System Log.

use std::time::Duration;

use time::OffsetDateTime;

use super::dialect::{Dialect, on_pool};
use super::row::RowContent;
use super::store::{AuditStore, Finishing};
use super::{NewEvent, Outcome, format_timestamp};

/// What a record for a crashed change says.
pub const DETAIL: &str = "The portal stopped while this change was being sent to Okta: whether \
     Okta made it is unknown. Look up the request id in Okta's System Log.";

/// Default for `audit.unfinished_after_seconds`.
pub const DEFAULT_AFTER_SECONDS: u64 = 300;

/// A change announced with [`AuditStore::begin`], not yet recorded.
#[derive(Debug)]
pub struct Unfinished(String);

impl Unfinished {
    pub fn id(&self) -> &str {
        &self.0
    }
}

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl AuditStore {
    /// Appends the record of a change announced with [`AuditStore::begin`], removing its
    /// unfinished row in the same transaction.
    pub async fn record_finishing(
        &self,
        event: NewEvent,
        unfinished: Option<&Unfinished>,
    ) -> anyhow::Result<i64> {
        let finishing = unfinished.map(|u| Finishing {
            id: u.id(),
            must_exist: false,
        });
        self.record_with(event, finishing).await
    }

    /// Announces a change before it is sent to Okta. `event` is the record it gets if the
    /// process dies before the outcome is known (its outcome is set to `unknown` here).
    pub async fn begin(&self, mut event: NewEvent) -> anyhow::Result<Unfinished> {
        event.outcome = Outcome::Unknown;
        event.detail = Some(DETAIL.to_string());
        let content = RowContent::from_event(&event, format_timestamp(OffsetDateTime::now_utc()));
        let id = uuid::Uuid::new_v4().simple().to_string();
        let insert = Dialect::of(self.db())
            .sql("INSERT INTO audit_unfinished (id, started_at, content) VALUES (?, ?, ?)");
        let json = serde_json::to_string(&content)?;
        on_pool!(self.db(), |pool| {
            sqlx::query(&insert)
                .bind(&id)
                .bind(now_unix())
                .bind(&json)
                .execute(pool)
                .await?;
        });
        Ok(Unfinished(id))
    }

    /// Records every change announced more than `older_than` ago and never finished, as it
    /// was announced (outcome `unknown`). Safe with several instances: each row is recorded
    /// once, by whichever takes it first. Returns how many were recorded.
    pub async fn recover_unfinished(&self, older_than: Duration) -> anyhow::Result<usize> {
        let before = now_unix() - older_than.as_secs() as i64;
        let select = Dialect::of(self.db()).sql(
            "SELECT id, content FROM audit_unfinished WHERE started_at <= ? ORDER BY started_at LIMIT 500",
        );
        let rows: Vec<(String, String)> = on_pool!(self.db(), |pool| {
            sqlx::query_as(&select).bind(before).fetch_all(pool).await?
        });
        let mut recorded = 0;
        for (id, json) in rows {
            let content: RowContent = serde_json::from_str(&json)?;
            let finishing = Finishing {
                id: &id,
                must_exist: true,
            };
            if let Some(record) = self.append(&content, Some(finishing)).await? {
                tracing::warn!(
                    record,
                    request_id = ?content.request_id,
                    action = ?content.action,
                    "recorded a change left unfinished by a portal that stopped during its Okta call"
                );
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    /// Changes announced and not yet recorded (for `audit verify` and tests).
    pub async fn unfinished_count(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM audit_unfinished";
        Ok(on_pool!(self.db(), |pool| {
            sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?
        }))
    }
}
