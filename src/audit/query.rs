//! Filtered, keyset-paginated reads of the audit trail, and the aggregates behind the
//! activity charts.

use serde::Deserialize;

use super::{AuditRecord, AuditStore, SELECT_POSTGRES, SELECT_SQLITE};
use crate::db::Database;

/// Longest filter value accepted (longer is a 422: no stored value is longer than
/// `audit::MAX_TEXT`, and a huge LIKE pattern is refused by SQLite).
pub const MAX_FILTER: usize = 1000;

/// The filters of `/activity` (and of its exports), as they appear in the URL.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Agent: subject or login.
    #[serde(default)]
    pub agent: Option<String>,
    /// Target user: id, login, or part of the name.
    #[serde(default)]
    pub target: Option<String>,
    /// Exactly this target id (the user page).
    #[serde(default)]
    pub target_id: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    /// First day, `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub ticket: Option<String>,
    /// `session` for agents in the browser, or a service client id.
    #[serde(default)]
    pub client: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Int(i64),
}

/// A WHERE clause with numbered or anonymous placeholders for the backend.
struct Where {
    backend: Backend,
    parts: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn new(backend: Backend) -> Where {
        Where {
            backend,
            parts: Vec::new(),
            binds: Vec::new(),
        }
    }

    fn placeholder(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${}", self.binds.len()),
        }
    }

    fn timestamp(&mut self, value: String) -> String {
        let p = self.placeholder(Bind::Text(value));
        match self.backend {
            Backend::Sqlite => p,
            Backend::Postgres => format!("CAST({p} AS TIMESTAMPTZ)"),
        }
    }

    fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.parts.join(" AND "))
        }
    }
}

fn clean(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `YYYY-MM-DD` → the start of that day, and the start of the next day.
pub fn day_bounds(day: &str) -> Option<(String, String)> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day.trim(), &format).ok()?;
    if !(1970..=9998).contains(&date.year()) {
        return None;
    }
    let next = date.next_day()?;
    Some((
        format!("{}T00:00:00.000Z", date.format(&format).ok()?),
        format!("{}T00:00:00.000Z", next.format(&format).ok()?),
    ))
}

impl ActivityFilter {
    /// Problems with the filter values, for the form.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [("from", &self.from), ("to", &self.to)] {
            if let Some(v) = clean(value)
                && day_bounds(&v).is_none()
            {
                problems.push(format!("“{name}” must be a date like 2026-11-29."));
            }
        }
        for (name, value) in self.fields() {
            if value.as_deref().is_some_and(|v| v.len() > MAX_FILTER) {
                problems.push(format!(
                    "“{name}” is too long: at most {MAX_FILTER} characters."
                ));
            }
        }
        problems
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 9] {
        [
            ("agent", &self.agent),
            ("target", &self.target),
            ("target_id", &self.target_id),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
            ("ticket", &self.ticket),
            ("client", &self.client),
        ]
    }

    pub fn is_empty(&self) -> bool {
        *self == ActivityFilter::default()
    }

    fn where_clause(&self, backend: Backend, before_id: Option<i64>) -> Where {
        let mut w = Where::new(backend);
        if let Some(agent) = clean(&self.agent) {
            let a = w.placeholder(Bind::Text(agent.clone()));
            let b = w.placeholder(Bind::Text(agent.to_lowercase()));
            w.parts
                .push(format!("(actor_sub = {a} OR LOWER(actor_login) = {b})"));
        }
        if let Some(target) = clean(&self.target) {
            // An id or a login is matched exactly (indexed); anything else is part of a name.
            if target.starts_with("00u") && !target.contains(' ') {
                let a = w.placeholder(Bind::Text(target.clone()));
                w.parts.push(format!("target_id = {a}"));
            } else if target.contains('@') {
                let b = w.placeholder(Bind::Text(target.to_lowercase()));
                w.parts.push(format!("LOWER(target_login) = {b}"));
            } else {
                let pattern = format!("%{}%", target.to_lowercase().replace(['%', '_'], ""));
                let c = w.placeholder(Bind::Text(pattern));
                w.parts.push(format!("LOWER(target_name) LIKE {c}"));
            }
        }
        if let Some(id) = clean(&self.target_id) {
            let p = w.placeholder(Bind::Text(id));
            w.parts.push(format!("target_id = {p}"));
        }
        if let Some(action) = clean(&self.action) {
            let p = w.placeholder(Bind::Text(action));
            w.parts.push(format!("action = {p}"));
        }
        if let Some(outcome) = clean(&self.outcome) {
            let p = w.placeholder(Bind::Text(outcome));
            w.parts.push(format!("outcome = {p}"));
        }
        if let Some((start, _)) = clean(&self.from).as_deref().and_then(day_bounds) {
            let p = w.timestamp(start);
            w.parts.push(format!("occurred_at >= {p}"));
        }
        if let Some((_, end)) = clean(&self.to).as_deref().and_then(day_bounds) {
            let p = w.timestamp(end);
            w.parts.push(format!("occurred_at < {p}"));
        }
        if let Some(ticket) = clean(&self.ticket) {
            let p = w.placeholder(Bind::Text(ticket));
            w.parts.push(format!("ticket = {p}"));
        }
        match clean(&self.client).as_deref() {
            None => {}
            Some("session") => w.parts.push("client_id IS NULL".to_string()),
            Some(client) => {
                let p = w.placeholder(Bind::Text(client.to_string()));
                w.parts.push(format!("client_id = {p}"));
            }
        }
        if let Some(before) = before_id {
            let p = w.placeholder(Bind::Int(before));
            w.parts.push(format!("id < {p}"));
        }
        w
    }

    /// The filter as a query string (without the cursor), for links and exports.
    pub fn query_string(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.fields() {
            if let Some(v) = clean(v) {
                s.append_pair(k, &v);
            }
        }
        s.finish()
    }
}

/// One page of records, newest first, with the cursor of the next (older) page.
#[derive(Default)]
pub struct ActivityPage {
    pub records: Vec<AuditRecord>,
    pub next_before: Option<i64>,
}

/// Records per day and action (the stacked chart), and per agent (the destructive chart).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DayCount {
    pub day: String,
    pub action: String,
    pub outcome: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgentCount {
    pub actor_sub: String,
    pub actor_name: String,
    pub count: i64,
}

/// Actions that take something away from a user.
pub const DESTRUCTIVE: [&str; 6] = [
    "user.deactivate",
    "user.delete",
    "user.suspend",
    "user.reset_password",
    "factors.reset",
    "factors.reset_all",
];

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Text(t) => q.bind(t.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

impl AuditStore {
    /// Keyset pagination by id (never OFFSET): `before` is the last id of the previous page.
    pub async fn page(
        &self,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<ActivityPage> {
        let limit = limit.clamp(1, 1000);
        let mut records = match self.db() {
            Database::Sqlite(pool) => {
                let w = filter.where_clause(Backend::Sqlite, before);
                let sql = format!(
                    "{SELECT_SQLITE}{} ORDER BY id DESC LIMIT {}",
                    w.sql(),
                    limit + 1
                );
                bind_all!(sqlx::query_as::<_, AuditRecord>(&sql), &w.binds)
                    .fetch_all(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                let w = filter.where_clause(Backend::Postgres, before);
                let sql = format!(
                    "{SELECT_POSTGRES}{} ORDER BY id DESC LIMIT {}",
                    w.sql(),
                    limit + 1
                );
                bind_all!(sqlx::query_as::<_, AuditRecord>(&sql), &w.binds)
                    .fetch_all(pool)
                    .await?
            }
        };
        let next_before = if records.len() as i64 > limit {
            records.truncate(limit as usize);
            records.last().map(|r| r.id)
        } else {
            None
        };
        Ok(ActivityPage {
            records,
            next_before,
        })
    }

    /// Counts per day, action and outcome for the filtered records: from the daily rollup
    /// when the filter allows (dates, action, outcome), else by scanning the trail.
    pub async fn day_counts(&self, filter: &ActivityFilter) -> anyhow::Result<Vec<DayCount>> {
        match self.rollup_where(filter) {
            Some((sql_where, binds)) => {
                let sql = format!(
                    "SELECT day, action, outcome, CAST(SUM(count) AS BIGINT) AS count FROM audit_daily{sql_where} \
                     GROUP BY day, action, outcome ORDER BY day, action, outcome"
                );
                Ok(match self.db() {
                    Database::Sqlite(pool) => {
                        bind_all!(sqlx::query_as::<_, DayCount>(&sql), &binds)
                            .fetch_all(pool)
                            .await?
                    }
                    Database::Postgres(pool) => {
                        bind_all!(sqlx::query_as::<_, DayCount>(&sql), &binds)
                            .fetch_all(pool)
                            .await?
                    }
                })
            }
            None => self.day_counts_scanning(filter).await,
        }
    }

    /// The filter as a WHERE clause over `audit_daily`, when it only uses what the rollup
    /// keeps (a complete date range, action, outcome).
    fn rollup_where(&self, filter: &ActivityFilter) -> Option<(String, Vec<Bind>)> {
        let only_rollup_fields = ActivityFilter {
            from: None,
            to: None,
            action: None,
            outcome: None,
            ..filter.clone()
        }
        .is_empty();
        let from = clean(&filter.from).filter(|d| day_bounds(d).is_some())?;
        let to = clean(&filter.to).filter(|d| day_bounds(d).is_some())?;
        if !only_rollup_fields {
            return None;
        }
        let backend = match self.db() {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        };
        let mut w = Where::new(backend);
        let a = w.placeholder(Bind::Text(from));
        let b = w.placeholder(Bind::Text(to));
        w.parts.push(format!("day >= {a} AND day <= {b}"));
        if let Some(action) = clean(&filter.action) {
            let p = w.placeholder(Bind::Text(action));
            w.parts.push(format!("action = {p}"));
        }
        if let Some(outcome) = clean(&filter.outcome) {
            let p = w.placeholder(Bind::Text(outcome));
            w.parts.push(format!("outcome = {p}"));
        }
        Some((w.sql(), w.binds))
    }

    /// Counts per day, action and outcome, always by scanning the trail.
    pub async fn day_counts_scanning(
        &self,
        filter: &ActivityFilter,
    ) -> anyhow::Result<Vec<DayCount>> {
        Ok(match self.db() {
            Database::Sqlite(pool) => {
                let w = filter.where_clause(Backend::Sqlite, None);
                let sql = format!(
                    "SELECT substr(occurred_at, 1, 10) AS day, action, outcome, COUNT(*) AS count FROM audit_events{} \
                     GROUP BY day, action, outcome ORDER BY day, action, outcome",
                    w.sql()
                );
                bind_all!(sqlx::query_as::<_, DayCount>(&sql), &w.binds)
                    .fetch_all(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                let w = filter.where_clause(Backend::Postgres, None);
                let sql = format!(
                    "SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, action, outcome, COUNT(*) AS count \
                     FROM audit_events{} GROUP BY day, action, outcome ORDER BY day, action, outcome",
                    w.sql()
                );
                bind_all!(sqlx::query_as::<_, DayCount>(&sql), &w.binds)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// Agents with the most destructive actions among the filtered records.
    pub async fn top_destructive_agents(
        &self,
        filter: &ActivityFilter,
        limit: i64,
    ) -> anyhow::Result<Vec<AgentCount>> {
        let list = DESTRUCTIVE
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some((sql_where, binds)) = self.rollup_where(filter) {
            let sql = format!(
                "SELECT actor_sub, MAX(COALESCE(actor_name, actor_sub)) AS actor_name, CAST(SUM(count) AS BIGINT) AS count \
                 FROM audit_daily{sql_where} AND action IN ({list}) AND actor_sub <> '' \
                 GROUP BY actor_sub ORDER BY count DESC, actor_sub LIMIT {limit}"
            );
            return Ok(match self.db() {
                Database::Sqlite(pool) => {
                    bind_all!(sqlx::query_as::<_, AgentCount>(&sql), &binds)
                        .fetch_all(pool)
                        .await?
                }
                Database::Postgres(pool) => {
                    bind_all!(sqlx::query_as::<_, AgentCount>(&sql), &binds)
                        .fetch_all(pool)
                        .await?
                }
            });
        }
        let extra = format!("action IN ({list}) AND actor_sub IS NOT NULL");
        Ok(match self.db() {
            Database::Sqlite(pool) => {
                let mut w = filter.where_clause(Backend::Sqlite, None);
                w.parts.push(extra);
                let sql = format!(
                    "SELECT actor_sub, MAX(COALESCE(actor_name, actor_login, actor_sub)) AS actor_name, COUNT(*) AS count \
                     FROM audit_events{} GROUP BY actor_sub ORDER BY count DESC, actor_sub LIMIT {limit}",
                    w.sql()
                );
                bind_all!(sqlx::query_as::<_, AgentCount>(&sql), &w.binds)
                    .fetch_all(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                let mut w = filter.where_clause(Backend::Postgres, None);
                w.parts.push(extra);
                let sql = format!(
                    "SELECT actor_sub, MAX(COALESCE(actor_name, actor_login, actor_sub)) AS actor_name, COUNT(*) AS count \
                     FROM audit_events{} GROUP BY actor_sub ORDER BY count DESC, actor_sub LIMIT {limit}",
                    w.sql()
                );
                bind_all!(sqlx::query_as::<_, AgentCount>(&sql), &w.binds)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// Streams every filtered record, newest first, formatted by `line`, in chunks of about
    /// 64 KiB through a bounded channel: memory stays constant however many rows match.
    /// Stops early when the receiver is gone. Returns the number of rows sent.
    pub async fn stream_lines(
        &self,
        filter: &ActivityFilter,
        line: fn(&AuditRecord) -> String,
        tx: &tokio::sync::mpsc::Sender<Result<String, std::io::Error>>,
    ) -> anyhow::Result<u64> {
        use futures_util::TryStreamExt;
        const CHUNK: usize = 64 * 1024;
        const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
        let mut count = 0u64;
        let mut batch = String::with_capacity(CHUNK + 1024);
        macro_rules! drain {
            ($rows:expr) => {{
                let mut rows = $rows;
                while let Some(row) = rows.try_next().await? {
                    count += 1;
                    batch.push_str(&line(&row));
                    if batch.len() >= CHUNK {
                        // A client that stops reading must not hold a connection forever.
                        let sent = tokio::time::timeout(
                            SEND_TIMEOUT,
                            tx.send(Ok(std::mem::take(&mut batch))),
                        )
                        .await;
                        if !matches!(sent, Ok(Ok(()))) {
                            return Ok(count);
                        }
                    }
                }
            }};
        }
        match self.db() {
            Database::Sqlite(pool) => {
                let w = filter.where_clause(Backend::Sqlite, None);
                let sql = format!("{SELECT_SQLITE}{} ORDER BY id DESC", w.sql());
                drain!(bind_all!(sqlx::query_as::<_, AuditRecord>(&sql), &w.binds).fetch(pool));
            }
            Database::Postgres(pool) => {
                let w = filter.where_clause(Backend::Postgres, None);
                let sql = format!("{SELECT_POSTGRES}{} ORDER BY id DESC", w.sql());
                drain!(bind_all!(sqlx::query_as::<_, AuditRecord>(&sql), &w.binds).fetch(pool));
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch)).await;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_clause_numbers_postgres_placeholders_and_binds_values() {
        let f = ActivityFilter {
            agent: Some("agent@example.com".into()),
            outcome: Some("failure".into()),
            from: Some("2026-11-01".into()),
            client: Some("session".into()),
            ..ActivityFilter::default()
        };
        let w = f.where_clause(Backend::Postgres, Some(42));
        assert_eq!(
            w.sql(),
            " WHERE (actor_sub = $1 OR LOWER(actor_login) = $2) AND outcome = $3 AND occurred_at >= CAST($4 AS TIMESTAMPTZ) AND client_id IS NULL AND id < $5"
        );
        assert_eq!(w.binds.len(), 5);
        let s = f.where_clause(Backend::Sqlite, None);
        assert!(s.sql().contains("occurred_at >= ?") && !s.sql().contains('$'));
    }

    #[test]
    fn dates_are_whole_days_and_bad_ones_are_reported() {
        assert_eq!(
            day_bounds("2026-11-29"),
            Some((
                "2026-11-29T00:00:00.000Z".into(),
                "2026-11-30T00:00:00.000Z".into()
            ))
        );
        assert_eq!(day_bounds("29/11/2026"), None);
        assert_eq!(day_bounds("-9999-01-05"), None);
        assert_eq!(day_bounds("0001-01-01"), None);
        let f = ActivityFilter {
            from: Some("yesterday".into()),
            ..ActivityFilter::default()
        };
        assert_eq!(f.problems().len(), 1);
    }

    #[test]
    fn like_patterns_cannot_be_injected() {
        let f = ActivityFilter {
            target: Some("%_%".into()),
            ..ActivityFilter::default()
        };
        let w = f.where_clause(Backend::Sqlite, None);
        assert!(matches!(&w.binds[0], Bind::Text(t) if t == "%%"));
        let by_login = ActivityFilter {
            target: Some("Ada@Example.com".into()),
            ..ActivityFilter::default()
        };
        assert_eq!(
            by_login.where_clause(Backend::Sqlite, None).sql(),
            " WHERE LOWER(target_login) = ?"
        );
    }

    #[test]
    fn the_query_string_round_trips() {
        let f = ActivityFilter {
            agent: Some("a b".into()),
            to: Some("2026-11-29".into()),
            ..ActivityFilter::default()
        };
        assert_eq!(f.query_string(), "agent=a+b&to=2026-11-29");
        let back: ActivityFilter = serde_urlencoded_from(&f.query_string());
        assert_eq!(back, f);
    }

    fn serde_urlencoded_from(qs: &str) -> ActivityFilter {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(qs.as_bytes())
            .into_owned()
            .collect();
        let mut f = ActivityFilter::default();
        for (k, v) in pairs {
            match k.as_str() {
                "agent" => f.agent = Some(v),
                "to" => f.to = Some(v),
                _ => {}
            }
        }
        f
    }
}
