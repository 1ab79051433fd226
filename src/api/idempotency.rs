//! `Idempotency-Key` on every creating `POST`: the first response is kept for 24 hours per
//! client and key (table `idempotency_keys`); a repeat with the same body gets it again with
//! the same status (and `Idempotent-Replayed: true`), the same key with another body a 422,
//! a repeat while the first is still running a 409. Okta never sees a second create.
//!
//! A first request that ends in a problem releases its key, so the client can retry.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ApiState;
use super::problem::ApiProblem;
use crate::db::Database;

/// How long a key is remembered.
pub const TTL_SECONDS: i64 = 24 * 60 * 60;

/// A response worth keeping.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
}

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        response
    }
}

enum Claim {
    Fresh,
    Replay(Stored),
    Mismatch,
    Running,
}

fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiProblem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        _ => Err(ApiProblem::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        )),
    }
}

fn hash_of(request: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(request).unwrap_or_default();
    format!("{:x}", Sha256::digest(bytes))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

type Row = (String, Option<i32>, Option<String>, Option<String>);

/// Forgets expired keys and tries to take this one; true when it was free.
async fn insert(db: &Database, client: &str, key: &str, hash: &str) -> anyhow::Result<bool> {
    let (now, expired) = (now(), now() - TTL_SECONDS);
    let inserted = match db {
        Database::Sqlite(pool) => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
                .bind(expired)
                .execute(pool)
                .await?;
            sqlx::query("INSERT INTO idempotency_keys (client_id, idem_key, request_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(client).bind(key).bind(hash).bind(now).execute(pool).await?.rows_affected()
        }
        Database::Postgres(pool) => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(expired)
                .execute(pool)
                .await?;
            sqlx::query("INSERT INTO idempotency_keys (client_id, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(client).bind(key).bind(hash).bind(now).execute(pool).await?.rows_affected()
        }
    };
    Ok(inserted == 1)
}

async fn claim(db: &Database, client: &str, key: &str, hash: &str) -> anyhow::Result<Claim> {
    if insert(db, client, key, hash).await? {
        return Ok(Claim::Fresh);
    }
    let row: Option<Row> = match db {
        Database::Sqlite(pool) => sqlx::query_as("SELECT request_hash, status, location, body FROM idempotency_keys WHERE client_id = ? AND idem_key = ?")
            .bind(client).bind(key).fetch_optional(pool).await?,
        Database::Postgres(pool) => sqlx::query_as("SELECT request_hash, status, location, body FROM idempotency_keys WHERE client_id = $1 AND idem_key = $2")
            .bind(client).bind(key).fetch_optional(pool).await?,
    };
    Ok(match row {
        None => Claim::Running,
        Some((stored_hash, _, _, _)) if stored_hash != hash => Claim::Mismatch,
        Some((_, None, _, _)) => Claim::Running,
        Some((_, Some(status), location, body)) => Claim::Replay(Stored {
            status: StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
            location,
            body: body
                .and_then(|b| serde_json::from_str(&b).ok())
                .unwrap_or(Value::Null),
        }),
    })
}

/// What to answer at once for a key that is not fresh.
fn answer(claim: Claim) -> Option<Result<Response, ApiProblem>> {
    match claim {
        Claim::Fresh => None,
        Claim::Replay(stored) => {
            let mut response = stored.into_response();
            let replayed = HeaderValue::from_static("true");
            response
                .headers_mut()
                .insert("idempotent-replayed", replayed);
            Some(Ok(response))
        }
        Claim::Mismatch => Some(Err(ApiProblem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        ))),
        Claim::Running => Some(Err(ApiProblem::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still running; retry later.",
        ))),
    }
}

async fn finish(
    db: &Database,
    client: &str,
    key: &str,
    stored: Option<&Stored>,
) -> anyhow::Result<()> {
    match (db, stored) {
        (Database::Sqlite(pool), Some(s)) => {
            sqlx::query("UPDATE idempotency_keys SET status = ?, location = ?, body = ? WHERE client_id = ? AND idem_key = ?")
                .bind(i32::from(s.status.as_u16())).bind(&s.location).bind(s.body.to_string()).bind(client).bind(key).execute(pool).await?;
        }
        (Database::Postgres(pool), Some(s)) => {
            sqlx::query("UPDATE idempotency_keys SET status = $1, location = $2, body = $3 WHERE client_id = $4 AND idem_key = $5")
                .bind(i32::from(s.status.as_u16())).bind(&s.location).bind(s.body.to_string()).bind(client).bind(key).execute(pool).await?;
        }
        (Database::Sqlite(pool), None) => {
            sqlx::query("DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ?")
                .bind(client)
                .bind(key)
                .execute(pool)
                .await?;
        }
        (Database::Postgres(pool), None) => {
            sqlx::query("DELETE FROM idempotency_keys WHERE client_id = $1 AND idem_key = $2")
                .bind(client)
                .bind(key)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

fn store_failed(e: anyhow::Error) -> ApiProblem {
    tracing::error!(error = ?e, "idempotency key store failed");
    ApiProblem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "idempotency_unavailable",
        "The idempotency store could not be used; nothing was done. Try again.",
    )
}

/// Runs `work` at most once per client and `Idempotency-Key` (without a key: always).
/// `keep` is what is stored of a success (e.g. without a one-time secret).
pub async fn once<F, Fut>(
    api: &ApiState,
    client: &str,
    headers: &HeaderMap,
    request: &impl Serialize,
    keep: fn(&Stored) -> Stored,
    work: F,
) -> Result<Response, ApiProblem>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Stored, ApiProblem>>,
{
    let Some(key) = key_of(headers)? else {
        return Ok(work().await?.into_response());
    };
    let claimed = claim(&api.db, client, &key, &hash_of(request)).await;
    if let Some(answer) = answer(claimed.map_err(store_failed)?) {
        return answer;
    }
    let result = work().await;
    let kept = result.as_ref().ok().map(keep);
    finish(&api.db, client, &key, kept.as_ref())
        .await
        .map_err(store_failed)?;
    Ok(result?.into_response())
}
