//! `Idempotency-Key` on every creating `POST`: the first response is kept for 24 hours per
//! client and key (table `idempotency_keys`); a repeat with the same body gets it again with
//! the same status (and `Idempotent-Replayed: true`), the same key with another body a 422,
//! a repeat while the first is still running a 409. Okta never sees a second create.
//!
//! A first request that ends in a problem releases its key, so the client can retry.
//!
//! The work runs in its own task: a client that hangs up (or a proxy timeout that drops the
//! request) does not cancel it half-way, so the key always ends with the stored answer or
//! released, never "running" for a day. Only a process that dies in the middle leaves a key
//! running; its repeat gets 409 until the key expires, because Okta may or may not have acted.

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
/// `keep` is what is stored of a success (e.g. without a one-time secret). `request` is the
/// fingerprint of the request; secrets in it go through [`secret_fingerprint`].
pub async fn once<Fut>(
    api: &ApiState,
    client: &str,
    headers: &HeaderMap,
    request: &impl Serialize,
    keep: fn(&Stored) -> Stored,
    work: Fut,
) -> Result<Response, ApiProblem>
where
    Fut: Future<Output = Result<Stored, ApiProblem>> + Send + 'static,
{
    let Some(key) = key_of(headers)? else {
        return Ok(work.await?.into_response());
    };
    let claimed = claim(&api.db, client, &key, &hash_of(request)).await;
    if let Some(answer) = answer(claimed.map_err(store_failed)?) {
        return answer;
    }
    let (db, client) = (api.db.clone(), client.to_string());
    let task = tokio::spawn(async move {
        let result = work.await;
        let kept = result.as_ref().ok().map(keep);
        finish(&db, &client, &key, kept.as_ref())
            .await
            .map_err(store_failed)?;
        result
    });
    match task.await {
        Ok(result) => Ok(result?.into_response()),
        Err(e) => {
            tracing::error!(error = ?e, "idempotent work did not finish");
            Err(ApiProblem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The request did not finish; retry with the same Idempotency-Key.",
            ))
        }
    }
}

/// What of a secret (a password) goes into a request fingerprint: its SHA-256 salted with the
/// idempotency key, so a retry with another password is a different request (422), while the
/// table never holds an unsalted hash of it (and the row is gone after 24 hours).
pub fn secret_fingerprint(headers: &HeaderMap, secret: Option<&str>) -> Option<String> {
    let secret = secret?;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    Some(format!("{:x}", hasher.finalize()))
}
