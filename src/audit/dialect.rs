//! The one place where the audit queries differ between SQLite and PostgreSQL: placeholders
//! (`?` or `$n`), timestamps (text or `TIMESTAMPTZ`), and locking the chain head. A query is
//! written once, with `?` placeholders, and [`Dialect::sql`] numbers them for PostgreSQL;
//! [`on_pool!`] runs the same code on whichever pool the store has.

use crate::db::Database;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is. The body is
/// written once and type-checked for each backend.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Binds every value of `$binds` (a slice of [`Bind`]) to `$query`.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                $crate::audit::dialect::Bind::Text(t) => q.bind(t.clone()),
                $crate::audit::dialect::Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

pub(crate) const RECORD_COLUMNS: &str = "id, {occurred_at}, request_id, action, outcome, actor_sub, \
     actor_login, actor_name, client_id, permission, target_id, target_login, target_name, reason, ticket, \
     detail, okta_request_id, okta_error_code, status_before, status_after, client_ip, user_agent, prev_hash, hash";

impl Dialect {
    pub(crate) fn of(db: &Database) -> Dialect {
        match db {
            Database::Sqlite(_) => Dialect::Sqlite,
            Database::Postgres(_) => Dialect::Postgres,
        }
    }

    /// `sql` with its `?` placeholders numbered `$1, $2, …` for PostgreSQL (outside quotes).
    pub(crate) fn sql(self, sql: &str) -> String {
        if self == Dialect::Sqlite {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let (mut n, mut quoted) = (0, false);
        for c in sql.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '?' if !quoted => {
                    n += 1;
                    out.push_str(&format!("${n}"));
                }
                c => out.push(c),
            }
        }
        out
    }

    /// A placeholder (written as `?`) for a timestamp in the trail's text format.
    pub(crate) fn timestamp(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => placeholder.to_string(),
            Dialect::Postgres => format!("CAST({placeholder} AS TIMESTAMPTZ)"),
        }
    }

    /// `occurred_at` in the trail's text format (`2026-11-29T09:20:00.123Z`).
    pub(crate) fn occurred_at(self) -> &'static str {
        match self {
            Dialect::Sqlite => "occurred_at",
            Dialect::Postgres => {
                "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS occurred_at"
            }
        }
    }

    /// The day (`YYYY-MM-DD`) of `occurred_at`.
    pub(crate) fn day(self) -> &'static str {
        match self {
            Dialect::Sqlite => "substr(occurred_at, 1, 10)",
            Dialect::Postgres => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        }
    }

    /// `SELECT <every record column> FROM audit_events`.
    pub(crate) fn select_records(self) -> String {
        format!(
            "SELECT {} FROM audit_events",
            RECORD_COLUMNS.replace("{occurred_at}", self.occurred_at())
        )
    }

    /// Reads the chain head inside a transaction so that no other writer can move it until
    /// commit. SQLite takes its write lock with a no-op update first.
    pub(crate) fn lock_head(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some("UPDATE audit_chain SET row_count = row_count WHERE id = 1"),
            Dialect::Postgres => None,
        }
    }

    pub(crate) fn read_head(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT last_hash, row_count FROM audit_chain WHERE id = 1",
            Dialect::Postgres => {
                "SELECT last_hash, row_count FROM audit_chain WHERE id = 1 FOR UPDATE"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let sql = "SELECT 1 WHERE a = ? AND b = '?' AND c = ?";
        assert_eq!(Dialect::Sqlite.sql(sql), sql);
        assert_eq!(
            Dialect::Postgres.sql(sql),
            "SELECT 1 WHERE a = $1 AND b = '?' AND c = $2"
        );
        assert!(
            Dialect::Postgres
                .select_records()
                .contains("to_char(occurred_at")
        );
        assert!(
            Dialect::Sqlite
                .select_records()
                .starts_with("SELECT id, occurred_at, request_id")
        );
    }
}
