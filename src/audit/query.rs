//! Filtered, keyset-paginated reads of the audit trail, and the aggregates behind the
//! activity charts.

use serde::Deserialize;

use super::dialect::{Bind, Dialect, bind_all, on_pool};
use super::{AuditRecord, AuditStore};

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

/// A WHERE clause with numbered or anonymous placeholders for the backend.
struct Where {
    backend: Dialect,
    parts: Vec<String>,
    binds: Vec<Bind>,
    /// Placeholders already used by earlier parts of the same statement (PostgreSQL numbers
    /// them across the whole statement).
    offset: usize,
}

/// How one arm of a query matches the agent filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentMatch {
    /// Subject or login (one condition: fine for scans and exports).
    Either,
    Sub,
    Login,
}

/// Where a page starts: before this record id, in id or in time order.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    before: i64,
    by_time: bool,
}

impl Where {
    fn new(backend: Dialect) -> Where {
        Where::after(backend, 0)
    }

    fn after(backend: Dialect, offset: usize) -> Where {
        Where {
            backend,
            parts: Vec::new(),
            binds: Vec::new(),
            offset,
        }
    }

    fn placeholder(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        match self.backend {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${}", self.offset + self.binds.len()),
        }
    }

    fn timestamp(&mut self, value: String) -> String {
        let p = self.placeholder(Bind::Text(value));
        self.backend.timestamp(&p)
    }

    fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.parts.join(" AND "))
        }
    }
}

/// Where the page starts: before the cursor's record, in id or in time order.
fn push_cursor(w: &mut Where, cursor: Option<Cursor>) {
    match cursor {
        None => {}
        Some(Cursor {
            before,
            by_time: false,
        }) => {
            let p = w.placeholder(Bind::Int(before));
            w.parts.push(format!("id < {p}"));
        }
        Some(Cursor {
            before,
            by_time: true,
        }) => {
            let p = w.placeholder(Bind::Int(before));
            w.parts.push(format!(
                "(audit_events.occurred_at, audit_events.id) < \
                 (SELECT c.occurred_at, c.id FROM audit_events c WHERE c.id = {p})"
            ));
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

    fn where_clause(&self, backend: Dialect, before_id: Option<i64>) -> Where {
        let cursor = before_id.map(|before| Cursor {
            before,
            by_time: false,
        });
        self.where_arm(Where::new(backend), cursor, AgentMatch::Either)
    }

    /// Filters with a selective index of their own (beside the dates).
    fn has_selective_filter(&self) -> bool {
        [&self.agent, &self.target, &self.target_id, &self.ticket]
            .iter()
            .any(|v| clean(v).is_some())
    }

    /// Pages bounded by a date, and by nothing more selective, walk the `occurred_at` index
    /// backwards (newest first, no sort of the whole range); every other page walks ids.
    fn pages_by_time(&self) -> bool {
        (clean(&self.from).is_some() || clean(&self.to).is_some()) && !self.has_selective_filter()
    }

    /// The statement for one page of `limit` records. An agent filter becomes two arms (by
    /// subject, by login), each walking its own index in order, merged: one `OR` would read
    /// every record of the agent and sort them.
    fn page_query(&self, backend: Dialect, before: Option<i64>, limit: i64) -> (String, Vec<Bind>) {
        let by_time = self.pages_by_time();
        let cursor = before.map(|before| Cursor { before, by_time });
        let order = if by_time {
            "audit_events.occurred_at DESC, audit_events.id DESC"
        } else {
            "audit_events.id DESC"
        };
        let select = backend.select_records();
        if clean(&self.agent).is_none() {
            let w = self.where_arm(Where::new(backend), cursor, AgentMatch::Either);
            let sql = format!("{select}{} ORDER BY {order} LIMIT {limit}", w.sql());
            return (sql, w.binds);
        }
        let sub = self.where_arm(Where::new(backend), cursor, AgentMatch::Sub);
        let login = self.where_arm(
            Where::after(backend, sub.binds.len()),
            cursor,
            AgentMatch::Login,
        );
        let arm = |w: &Where, name: &str| {
            format!(
                "SELECT * FROM ({select}{} ORDER BY {order} LIMIT {limit}) AS {name}",
                w.sql()
            )
        };
        let merged = if by_time {
            "occurred_at DESC, id DESC"
        } else {
            "id DESC"
        };
        let sql = format!(
            "{} UNION {} ORDER BY {merged} LIMIT {limit}",
            arm(&sub, "by_sub"),
            arm(&login, "by_login")
        );
        (sql, [sub.binds, login.binds].concat())
    }

    fn where_arm(&self, mut w: Where, cursor: Option<Cursor>, agent_match: AgentMatch) -> Where {
        if let Some(agent) = clean(&self.agent) {
            let sub = (agent_match != AgentMatch::Login).then(|| {
                let a = w.placeholder(Bind::Text(agent.clone()));
                format!("actor_sub = {a}")
            });
            let login = (agent_match != AgentMatch::Sub).then(|| {
                let b = w.placeholder(Bind::Text(agent.to_lowercase()));
                format!("LOWER(actor_login) = {b}")
            });
            w.parts.push(match (sub, login) {
                (Some(a), Some(b)) => format!("({a} OR {b})"),
                (a, b) => a.or(b).unwrap_or_default(),
            });
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
        push_cursor(&mut w, cursor);
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

impl AuditStore {
    fn dialect(&self) -> Dialect {
        Dialect::of(self.db())
    }

    /// Keyset pagination by id (never OFFSET): `before` is the last id of the previous page.
    pub async fn page(
        &self,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<ActivityPage> {
        let limit = limit.clamp(1, 1000);
        let (sql, binds) = filter.page_query(self.dialect(), before, limit + 1);
        let mut records = on_pool!(self.db(), |pool| {
            bind_all!(sqlx::query_as::<_, AuditRecord>(&sql), &binds)
                .fetch_all(pool)
                .await?
        });
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
        let Some((sql_where, binds)) = self.rollup_where(filter) else {
            return self.day_counts_scanning(filter).await;
        };
        let sql = format!(
            "SELECT day, action, outcome, CAST(SUM(count) AS BIGINT) AS count FROM audit_daily{sql_where} \
             GROUP BY day, action, outcome ORDER BY day, action, outcome"
        );
        Ok(on_pool!(self.db(), |pool| {
            bind_all!(sqlx::query_as::<_, DayCount>(&sql), &binds)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The filter as a WHERE clause over `audit_daily`, when it only uses what the rollup
    /// keeps (days, action, outcome, agent by subject or latest login). `None` (and no
    /// condition) when it uses anything else.
    fn rollup_where(&self, filter: &ActivityFilter) -> Option<(String, Vec<Bind>)> {
        let only_rollup_fields = ActivityFilter {
            from: None,
            to: None,
            action: None,
            outcome: None,
            agent: None,
            ..filter.clone()
        }
        .is_empty();
        if !only_rollup_fields || !filter.problems().is_empty() {
            return None;
        }
        let mut w = Where::new(self.dialect());
        if let Some(from) = clean(&filter.from) {
            let a = w.placeholder(Bind::Text(from));
            w.parts.push(format!("day >= {a}"));
        }
        if let Some(to) = clean(&filter.to) {
            let b = w.placeholder(Bind::Text(to));
            w.parts.push(format!("day <= {b}"));
        }
        if let Some(agent) = clean(&filter.agent) {
            let a = w.placeholder(Bind::Text(agent.clone()));
            let b = w.placeholder(Bind::Text(agent.to_lowercase()));
            w.parts
                .push(format!("(actor_sub = {a} OR LOWER(actor_login) = {b})"));
        }
        for (column, value) in [("action", &filter.action), ("outcome", &filter.outcome)] {
            if let Some(v) = clean(value) {
                let p = w.placeholder(Bind::Text(v));
                w.parts.push(format!("{column} = {p}"));
            }
        }
        // Always a WHERE, so that callers may add `AND …`.
        w.parts.push("1 = 1".to_string());
        Some((w.sql(), w.binds))
    }

    /// Counts per day, action and outcome, always by scanning the trail.
    pub async fn day_counts_scanning(
        &self,
        filter: &ActivityFilter,
    ) -> anyhow::Result<Vec<DayCount>> {
        let dialect = self.dialect();
        let w = filter.where_clause(dialect, None);
        let sql = format!(
            "SELECT {} AS day, action, outcome, COUNT(*) AS count FROM audit_events{} \
             GROUP BY day, action, outcome ORDER BY day, action, outcome",
            dialect.day(),
            w.sql()
        );
        Ok(on_pool!(self.db(), |pool| {
            bind_all!(sqlx::query_as::<_, DayCount>(&sql), &w.binds)
                .fetch_all(pool)
                .await?
        }))
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
        let (sql, binds) = match self.rollup_where(filter) {
            Some((sql_where, binds)) => (
                format!(
                    "SELECT actor_sub, MAX(COALESCE(actor_name, actor_sub)) AS actor_name, CAST(SUM(count) AS BIGINT) AS count \
                     FROM audit_daily{sql_where} AND action IN ({list}) AND actor_sub <> '' \
                     GROUP BY actor_sub ORDER BY count DESC, actor_sub LIMIT {limit}"
                ),
                binds,
            ),
            None => {
                let mut w = filter.where_clause(self.dialect(), None);
                w.parts
                    .push(format!("action IN ({list}) AND actor_sub IS NOT NULL"));
                let sql = format!(
                    "SELECT actor_sub, MAX(COALESCE(actor_name, actor_login, actor_sub)) AS actor_name, COUNT(*) AS count \
                     FROM audit_events{} GROUP BY actor_sub ORDER BY count DESC, actor_sub LIMIT {limit}",
                    w.sql()
                );
                (sql, w.binds)
            }
        };
        Ok(on_pool!(self.db(), |pool| {
            bind_all!(sqlx::query_as::<_, AgentCount>(&sql), &binds)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Every filtered record, newest first, as a stream. The rows are read by a task of
    /// their own and handed over in batches through a small bounded channel, so memory stays
    /// constant however many rows match, and reading stops soon after the stream is dropped.
    pub fn stream(
        &self,
        filter: &ActivityFilter,
    ) -> impl futures_util::Stream<Item = anyhow::Result<AuditRecord>> + Send + 'static {
        use futures_util::TryStreamExt;
        const BATCH: usize = 256;
        let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<Vec<AuditRecord>>>(4);
        let dialect = self.dialect();
        let w = filter.where_clause(dialect, None);
        let sql = format!("{}{} ORDER BY id DESC", dialect.select_records(), w.sql());
        let db = self.db().clone();
        tokio::spawn(async move {
            let read = async {
                on_pool!(&db, |pool| {
                    let mut rows =
                        bind_all!(sqlx::query_as::<_, AuditRecord>(&sql), &w.binds).fetch(pool);
                    let mut batch = Vec::with_capacity(BATCH);
                    while let Some(row) = rows.try_next().await? {
                        batch.push(row);
                        if batch.len() == BATCH
                            && tx.send(Ok(std::mem::take(&mut batch))).await.is_err()
                        {
                            return anyhow::Ok(());
                        }
                    }
                    if !batch.is_empty() {
                        let _ = tx.send(Ok(batch)).await;
                    }
                });
                anyhow::Ok(())
            };
            if let Err(e) = read.await {
                let _ = tx.send(Err(e)).await;
            }
        });
        let batches = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        batches
            .map_ok(|batch| futures_util::stream::iter(batch.into_iter().map(Ok)))
            .try_flatten()
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
        let w = f.where_clause(Dialect::Postgres, Some(42));
        assert_eq!(
            w.sql(),
            " WHERE (actor_sub = $1 OR LOWER(actor_login) = $2) AND outcome = $3 AND occurred_at >= CAST($4 AS TIMESTAMPTZ) AND client_id IS NULL AND id < $5"
        );
        assert_eq!(w.binds.len(), 5);
        let s = f.where_clause(Dialect::Sqlite, None);
        assert!(s.sql().contains("occurred_at >= ?") && !s.sql().contains('$'));
    }

    #[test]
    fn pages_walk_the_index_that_matches_the_filter() {
        let week = ActivityFilter {
            from: Some("2026-11-01".into()),
            to: Some("2026-11-07".into()),
            ..ActivityFilter::default()
        };
        let (sql, binds) = week.page_query(Dialect::Sqlite, Some(9), 51);
        assert!(
            sql.ends_with("ORDER BY audit_events.occurred_at DESC, audit_events.id DESC LIMIT 51"),
            "{sql}"
        );
        assert!(sql.contains("WHERE c.id = ?") && binds.len() == 3, "{sql}");
        let agent = ActivityFilter {
            agent: Some("Ada@Example.com".into()),
            ..week.clone()
        };
        let (sql, binds) = agent.page_query(Dialect::Postgres, Some(9), 51);
        assert!(
            sql.contains("actor_sub = $1") && sql.contains("LOWER(actor_login) = $5"),
            "{sql}"
        );
        assert!(sql.contains(" UNION ") && !sql.contains(" OR "), "{sql}");
        assert!(sql.ends_with("ORDER BY id DESC LIMIT 51"), "{sql}");
        assert_eq!(binds.len(), 8);
        let (plain, _) = ActivityFilter::default().page_query(Dialect::Sqlite, None, 51);
        assert!(
            plain.ends_with("ORDER BY audit_events.id DESC LIMIT 51"),
            "{plain}"
        );
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
        let w = f.where_clause(Dialect::Sqlite, None);
        assert!(matches!(&w.binds[0], Bind::Text(t) if t == "%%"));
        let by_login = ActivityFilter {
            target: Some("Ada@Example.com".into()),
            ..ActivityFilter::default()
        };
        assert_eq!(
            by_login.where_clause(Dialect::Sqlite, None).sql(),
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
