//! `audit seed-bench`: fills the trail with realistic synthetic records (valid hash chain) for
//! benchmarks. Rows are written in large batches inside transactions.

use super::{AuditStore, Rollup, RowContent, add_to_rollup, format_timestamp, write_rollup};
use crate::db::Database;

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
    RowContent([
        Some(format_timestamp(at)),
        Some(format!("seed-{i:010}")),
        Some(chosen.0.to_string()),
        Some(outcome.to_string()),
        text(format!("00uSeedAgent{agent:08}")),
        text(format!("agent{agent}@example.com")),
        text(format!("Seed Agent {agent}")),
        None,
        (!chosen.1.is_empty()).then(|| chosen.1.to_string()),
        is_user_action.then(|| format!("00uSeedUser{user:09}")),
        is_user_action.then(|| format!("user{user}@example.com")),
        is_user_action.then(|| format!("User {user}")),
        is_user_action.then(|| "Caller verified by the support agent".to_string()),
        (is_user_action && rng.below(3) == 0)
            .then(|| format!("SUP-{}", rng.below(90_000) + 10_000)),
        None,
        is_user_action.then(|| format!("seedokta{i:012}")),
        (outcome == "failure").then(|| "E0000038".to_string()),
        None,
        None,
        text(format!("127.0.0.{}", agent % 250 + 1)),
        Some("admin-portal-seed".to_string()),
    ])
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
            match self.db() {
                Database::Sqlite(pool) => {
                    let mut tx = pool.begin().await?;
                    sqlx::query("UPDATE audit_chain SET row_count = row_count WHERE id = 1")
                        .execute(&mut *tx)
                        .await?;
                    let (mut prev, rows): (String, i64) =
                        sqlx::query_as("SELECT last_hash, row_count FROM audit_chain WHERE id = 1")
                            .fetch_one(&mut *tx)
                            .await?;
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                        "INSERT INTO audit_events ({}) ",
                        super::INSERT_COLUMNS
                    ));
                    let mut contents = Vec::new();
                    for k in 0..n {
                        let c = synthetic(&mut rng, written + k, count, now);
                        let hash = c.hash(&prev);
                        contents.push((c, prev.clone(), hash.clone()));
                        prev = hash;
                    }
                    qb.push_values(contents.iter(), |mut b, (c, p, h)| {
                        for v in &c.0 {
                            b.push_bind(v.clone());
                        }
                        b.push_bind(p.clone()).push_bind(h.clone());
                    });
                    qb.push(" RETURNING id");
                    let ids: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    let last_id = ids.iter().map(|r| r.0).max().unwrap_or(0);
                    sqlx::query("UPDATE audit_chain SET last_id = ?, last_hash = ?, row_count = ? WHERE id = 1")
                        .bind(last_id)
                        .bind(&prev)
                        .bind(rows + n as i64)
                        .execute(&mut *tx)
                        .await?;
                    let mut rollup = Rollup::new();
                    for (c, _, _) in &contents {
                        add_to_rollup(&mut rollup, c);
                    }
                    write_rollup!(&mut tx, super::ROLLUP_SQLITE, &rollup);
                    tx.commit().await?;
                }
                Database::Postgres(pool) => {
                    let mut tx = pool.begin().await?;
                    let (mut prev, rows): (String, i64) = sqlx::query_as(
                        "SELECT last_hash, row_count FROM audit_chain WHERE id = 1 FOR UPDATE",
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
                        "INSERT INTO audit_events ({}) ",
                        super::INSERT_COLUMNS
                    ));
                    let mut contents = Vec::new();
                    for k in 0..n {
                        let c = synthetic(&mut rng, written + k, count, now);
                        let hash = c.hash(&prev);
                        contents.push((c, prev.clone(), hash.clone()));
                        prev = hash;
                    }
                    qb.push_values(contents.iter(), |mut b, (c, p, h)| {
                        let at = c.0[0].clone().unwrap_or_default();
                        b.push("CAST(")
                            .push_bind_unseparated(at)
                            .push_unseparated(" AS TIMESTAMPTZ)");
                        for v in c.0.iter().skip(1) {
                            b.push_bind(v.clone());
                        }
                        b.push_bind(p.clone()).push_bind(h.clone());
                    });
                    qb.push(" RETURNING id");
                    let ids: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    let last_id = ids.iter().map(|r| r.0).max().unwrap_or(0);
                    sqlx::query("UPDATE audit_chain SET last_id = $1, last_hash = $2, row_count = $3 WHERE id = 1")
                        .bind(last_id)
                        .bind(&prev)
                        .bind(rows + n as i64)
                        .execute(&mut *tx)
                        .await?;
                    let mut rollup = Rollup::new();
                    for (c, _, _) in &contents {
                        add_to_rollup(&mut rollup, c);
                    }
                    write_rollup!(&mut tx, super::ROLLUP_POSTGRES, &rollup);
                    tx.commit().await?;
                }
            }
            written += n;
        }
        Ok(written)
    }
}
