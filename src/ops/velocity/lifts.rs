//! Lifted velocity caps, in the database (`velocity_lifts`) so that every instance sees them.

use time::OffsetDateTime;

use crate::audit::dialect::{Dialect, on_pool};
use crate::auth::principal::Principal;
use crate::db::Database;
use crate::ops::Why;

/// A lift in force: whose caps, until when, by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lift {
    pub subject: String,
    pub until: OffsetDateTime,
    /// The manager's name.
    pub by_name: String,
}

impl Lift {
    /// "2026-12-08 00:00 UTC".
    pub fn until_label(&self) -> String {
        let u = self.until.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            u.year(),
            u.month() as u8,
            u.day(),
            u.hour(),
            u.minute()
        )
    }
}

/// The lift of `subject` in force now, the latest if there are several.
pub(super) async fn active(db: &Database, subject: &str) -> anyhow::Result<Option<Lift>> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let sql = Dialect::of(db).sql(
        "SELECT until_at, lifted_by_name FROM velocity_lifts \
         WHERE subject = ? AND until_at > ? ORDER BY until_at DESC LIMIT 1",
    );
    let row: Option<(i64, String)> = on_pool!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(subject)
            .bind(now)
            .fetch_optional(pool)
            .await?
    });
    let Some((until, by_name)) = row else {
        return Ok(None);
    };
    Ok(Some(Lift {
        subject: subject.to_string(),
        until: OffsetDateTime::from_unix_timestamp(until)?,
        by_name,
    }))
}

/// Stores a lift.
pub(super) async fn insert(
    db: &Database,
    lift: &Lift,
    by: &Principal,
    why: &Why,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let sql = Dialect::of(db).sql(
        "INSERT INTO velocity_lifts (subject, lifted_at, until_at, lifted_by_sub, lifted_by_name, reason) \
         VALUES (?, ?, ?, ?, ?, ?)",
    );
    on_pool!(db, |pool| {
        sqlx::query(&sql)
            .bind(&lift.subject)
            .bind(now.unix_timestamp())
            .bind(lift.until.unix_timestamp())
            .bind(&by.subject)
            .bind(&lift.by_name)
            .bind(why.reason())
            .execute(pool)
            .await?;
    });
    Ok(())
}
