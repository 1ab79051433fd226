//! `audit seed-bench`: fills the trail with realistic synthetic records (valid hash chain) for
//! benchmarks. Rows are written in large batches inside transactions.

use super::dialect::{Dialect, on_pool};
use super::row::{INSERT_COLUMNS, ROLLUP_UPSERT, Rollup, RowContent, add_to_rollup, write_rollup};
use super::{AuditStore, format_timestamp};

const ACTIONS: [(&str, &str, u32); 10] = [
    ("auth.sign_in", "", 20),
    ("auth.sign_out", "", 8),
    ("user.unlock", "users.unlock", 14),
    ("user.reset_password", "users.reset_password", 16),
    ("user.suspend", "users.suspend", 6),
    ("user.unsuspend", "users.unsuspend", 5),
    ("user.deactivate", "users.deactivate", 6),
    ("user.create", "users.create", 10),
    ("user.expire_password", "users.expire_password", 5),
    ("policy.denied", "audit.read", 3),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn synthetic(rng: &mut Rng, i: u64, count: u64, now: time::OffsetDateTime) -> RowContent {
    let total: u32 = ACTIONS.iter().map(|a| a.2).sum();
    let mut pick = rng.below(total as u64) as u32;
    let mut chosen = ACTIONS[0];
    for a in ACTIONS {
        if pick < a.2 {
            chosen = a;
            break;
        }
        pick -= a.2;
    }
    // Spread over the last 90 days, oldest first, so ids follow time.
    let span = 90 * 24 * 3600 * 1000i64;
    let offset = span - (span * i as i64 / count.max(1) as i64);
    let at = now - time::Duration::milliseconds(offset);
    let agent = rng.below(40);
    let user = rng.below(20_000);
    let outcome = match (chosen.0, rng.below(100)) {
        ("policy.denied", _) => "denied",
        (_, 0..=5) => "failure",
        _ => "success",
    };
    let is_user_action = chosen.0.starts_with("user.");
    let text = |s: String| Some(s);
    RowContent {
        occurred_at: Some(format_timestamp(at)),
        request_id: Some(format!("seed-{i:010}")),
        action: Some(chosen.0.to_string()),
        outcome: Some(outcome.to_string()),
        actor_sub: text(format!("00uSeedAgent{agent:08}")),
        actor_login: text(format!("agent{agent}@example.com")),
        actor_name: text(format!("Seed Agent {agent}")),
        client_id: None,
        permission: (!chosen.1.is_empty()).then(|| chosen.1.to_string()),
        target_id: is_user_action.then(|| format!("00uSeedUser{user:09}")),
        target_login: is_user_action.then(|| format!("user{user}@example.com")),
        target_name: is_user_action.then(|| format!("User {user}")),
        reason: is_user_action.then(|| "Caller verified by the support agent".to_string()),
        ticket: (is_user_action && rng.below(3) == 0)
            .then(|| format!("SUP-{}", rng.below(90_000) + 10_000)),
        detail: None,
        okta_request_id: is_user_action.then(|| format!("seedokta{i:012}")),
        okta_error_code: (outcome == "failure").then(|| "E0000038".to_string()),
        status_before: None,
        status_after: None,
        client_ip: text(format!("127.0.0.{}", agent % 250 + 1)),
        user_agent: Some("admin-portal-seed".to_string()),
    }
}

impl AuditStore {
    /// Appends `count` synthetic records to the chain. Returns how many were written.
    pub async fn seed_bench(&self, count: u64) -> anyhow::Result<u64> {
        const BATCH: u64 = 500;
        let now = time::OffsetDateTime::now_utc();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut written = 0u64;
        while written < count {
            let n = BATCH.min(count - written);
            let mut contents = Vec::new();
            for k in 0..n {
                contents.push(synthetic(&mut rng, written + k, count, now));
            }
            self.append_batch(&contents).await?;
            written += n;
        }
        Ok(written)
    }

    /// Appends prepared rows to the chain in one transaction (both backends).
    async fn append_batch(&self, contents: &[RowContent]) -> anyhow::Result<()> {
        let d = Dialect::of(self.db());
        let move_head =
            d.sql("UPDATE audit_chain SET last_id = ?, last_hash = ?, row_count = ? WHERE id = 1");
        let upsert = d.sql(ROLLUP_UPSERT);
        // The timestamp column, as `Dialect::timestamp` writes it.
        let (open, close) = match d {
            Dialect::Sqlite => ("", ""),
            Dialect::Postgres => ("CAST(", " AS TIMESTAMPTZ)"),
        };
        let mut rollup = Rollup::new();
        for c in contents {
            add_to_rollup(&mut rollup, c);
        }
        on_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            if let Some(lock) = d.lock_head() {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let (mut prev, rows): (String, i64) =
                sqlx::query_as(d.read_head()).fetch_one(&mut *tx).await?;
            let mut chained = Vec::new();
            for c in contents {
                let hash = c.hash(&prev);
                chained.push((c, prev.clone(), hash.clone()));
                prev = hash;
            }
            let mut qb =
                sqlx::QueryBuilder::new(format!("INSERT INTO audit_events ({INSERT_COLUMNS}) "));
            qb.push_values(chained.iter(), |mut b, (c, p, h)| {
                let values = c.values();
                b.push(open)
                    .push_bind_unseparated(values[0].clone().unwrap_or_default())
                    .push_unseparated(close);
                for v in values.iter().skip(1) {
                    b.push_bind((*v).clone());
                }
                b.push_bind(p.clone()).push_bind(h.clone());
            });
            qb.push(" RETURNING id");
            let ids: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
            let last_id = ids.iter().map(|r| r.0).max().unwrap_or(0);
            sqlx::query(&move_head)
                .bind(last_id)
                .bind(&prev)
                .bind(rows + contents.len() as i64)
                .execute(&mut *tx)
                .await?;
            write_rollup!(&mut tx, &upsert, &rollup);
            tx.commit().await?;
            anyhow::Ok(())
        })
    }
}
