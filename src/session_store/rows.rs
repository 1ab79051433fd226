//! The `portal_sessions` table (migrations `0007_sessions.sql`): `id_hash` (hex SHA-256 of
//! the cookie's value), `data` (sealed), `expires_at` (Unix seconds). The same SQL (`$n` placeholders) on either backend.

use tower_sessions::session_store;

use crate::audit::dialect::on_pool;
use crate::db::Database;

/// A row as stored.
pub struct Row {
    pub id_hash: String,
    pub data: Vec<u8>,
    pub expires_at: i64,
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// Inserts a new row; `false` when the id hash is taken (a new id is drawn).
pub async fn insert(db: &Database, row: &Row) -> session_store::Result<bool> {
    let sql = "INSERT INTO portal_sessions (id_hash, data, expires_at) VALUES ($1, $2, $3)";
    let result = on_pool!(db, |pool| sqlx::query(sql)
        .bind(&row.id_hash)
        .bind(&row.data)
        .bind(row.expires_at)
        .execute(pool)
        .await
        .map(|_| ()));
    match result {
        Ok(()) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

/// Updates a live row; `false` when it is gone (ended elsewhere): it is not recreated.
pub async fn update(db: &Database, row: &Row, now: i64) -> session_store::Result<bool> {
    let sql = "UPDATE portal_sessions SET data = $1, expires_at = $2 WHERE id_hash = $3 AND expires_at > $4";
    let affected = on_pool!(db, |pool| sqlx::query(sql)
        .bind(&row.data)
        .bind(row.expires_at)
        .bind(&row.id_hash)
        .bind(now)
        .execute(pool)
        .await
        .map_err(backend)?
        .rows_affected());
    Ok(affected > 0)
}

/// The row, if it has not expired at `now` (`None` for `now` reads it whatever its expiry).
pub async fn select(
    db: &Database,
    id_hash: &str,
    now: Option<i64>,
) -> session_store::Result<Option<Row>> {
    let sql = "SELECT data, expires_at FROM portal_sessions WHERE id_hash = $1 AND expires_at > $2";
    let after = now.unwrap_or(i64::MIN);
    let found: Option<(Vec<u8>, i64)> = on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(id_hash)
        .bind(after)
        .fetch_optional(pool)
        .await
        .map_err(backend)?);
    Ok(found.map(|(data, expires_at)| Row {
        id_hash: id_hash.to_string(),
        data,
        expires_at,
    }))
}

/// Deletes the row; with `expired_at`, only if it has expired by then (a sweep must not
/// delete a session that was extended meanwhile).
pub async fn delete(
    db: &Database,
    id_hash: &str,
    expired_at: Option<i64>,
) -> session_store::Result<()> {
    let sql = "DELETE FROM portal_sessions WHERE id_hash = $1 AND expires_at <= $2";
    let before = expired_at.unwrap_or(i64::MAX);
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(id_hash)
        .bind(before)
        .execute(pool)
        .await
        .map_err(backend)?
        .rows_affected());
    Ok(())
}

/// Up to `limit` rows expired at `now`, oldest first.
pub async fn expired(db: &Database, now: i64, limit: i64) -> session_store::Result<Vec<Row>> {
    let sql = "SELECT id_hash, data, expires_at FROM portal_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2";
    let rows: Vec<(String, Vec<u8>, i64)> = on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(backend)?);
    Ok(rows
        .into_iter()
        .map(|(id_hash, data, expires_at)| Row {
            id_hash,
            data,
            expires_at,
        })
        .collect())
}
