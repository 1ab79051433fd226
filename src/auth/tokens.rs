//! JWT access-token verification, shared by the browser sign-in (the agent's access token)
//! and the service API (a client's bearer token).
//!
//! The checks, in order: the header parses and names no `typ` other than `at+jwt` / `JWT`
//! (Okta sends none); the algorithm is one the authorization server advertises (asymmetric
//! only: never `none`, never HS*); the key is found by `kid` in the cached JWKS, with one
//! re-fetch when the `kid` is unknown (key rotation); the signature verifies; `iss` is exactly
//! the issuer; `aud` contains the audience; `exp` and `nbf` hold with the configured leeway.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

/// The keys of an authorization server and the algorithms it advertises, as fetched once.
#[derive(Debug)]
pub struct KeySet {
    pub jwks: JwkSet,
    /// Asymmetric algorithms only (see [`asymmetric`]).
    pub algorithms: Vec<Algorithm>,
    pub fetched_at: Instant,
}

/// What a token must say about who issued it and for whom.
#[derive(Debug, Clone)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: u64,
}

/// Why a token was refused. The messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("token type {0:?} is not an access token")]
    Type(String),
    #[error("algorithm {0} is not one the authorization server advertises")]
    Algorithm(String),
    #[error("signed by a key the provider does not publish")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token failed verification: {0}")]
    Invalid(String),
    #[error("the authorization server's keys could not be loaded: {0}")]
    Keys(String),
}

/// Whether `alg` is an asymmetric JWS algorithm (the only kind accepted).
pub fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn type_ok(typ: Option<&str>) -> bool {
    match typ {
        None => true,
        Some(t) => {
            let t = t.to_ascii_lowercase();
            matches!(t.as_str(), "at+jwt" | "application/at+jwt" | "jwt")
        }
    }
}

/// Verifies `token` against `keys`; on an unknown `kid`, asks `refetch` (given when the keys
/// in hand were fetched) for fresh keys, once.
pub async fn verify<F, Fut>(
    keys: Arc<KeySet>,
    refetch: F,
    token: &str,
    expect: &Expect,
) -> Result<HashMap<String, Value>, TokenError>
where
    F: FnOnce(Instant) -> Fut,
    Fut: Future<Output = Result<Arc<KeySet>, TokenError>>,
{
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if !type_ok(header.typ.as_deref()) {
        return Err(TokenError::Type(header.typ.unwrap_or_default()));
    }
    if !asymmetric(header.alg) || !keys.algorithms.contains(&header.alg) {
        return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let kid = header
        .kid
        .ok_or_else(|| TokenError::Malformed("no kid in the token header".into()))?;
    let jwk = match keys.jwks.find(&kid) {
        Some(jwk) => jwk.clone(),
        None => refetch(keys.fetched_at)
            .await?
            .jwks
            .find(&kid)
            .cloned()
            .ok_or(TokenError::UnknownKey)?,
    };
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
    // Exactly the token's algorithm (already checked against the advertised ones): a list
    // mixing key types would make jsonwebtoken refuse every token.
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.leeway = expect.leeway_seconds;
    validation.validate_nbf = true;
    validation.set_issuer(&[expect.issuer.as_str()]);
    validation.set_audience(&[expect.audience.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    match jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        }),
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

/// A JWKS cache of its own, for an authorization server other than the sign-in issuer:
/// discovery (`/.well-known/openid-configuration`) and JWKS, refreshed after `ttl` and at
/// most once per unknown `kid`.
pub struct KeyCache {
    http: reqwest::Client,
    issuer: String,
    ttl: Duration,
    keys: RwLock<Option<Arc<KeySet>>>,
    fetch_lock: Mutex<()>,
}

impl KeyCache {
    pub fn new(http: reqwest::Client, issuer: &str, ttl: Duration) -> KeyCache {
        KeyCache {
            http,
            issuer: issuer.trim_end_matches('/').to_string(),
            ttl,
            keys: RwLock::new(None),
            fetch_lock: Mutex::new(()),
        }
    }

    pub async fn keys(&self) -> Result<Arc<KeySet>, TokenError> {
        if let Some(k) = self.keys.read().await.as_ref()
            && k.fetched_at.elapsed() < self.ttl
        {
            return Ok(k.clone());
        }
        self.refetch(None).await
    }

    /// Fetches again, unless another task did so after `seen`.
    pub async fn refetch(&self, seen: Option<Instant>) -> Result<Arc<KeySet>, TokenError> {
        let _guard = self.fetch_lock.lock().await;
        if let Some(k) = self.keys.read().await.as_ref() {
            let fresh = match seen {
                Some(seen) => k.fetched_at > seen,
                None => k.fetched_at.elapsed() < self.ttl,
            };
            if fresh {
                return Ok(k.clone());
            }
        }
        let keys = Arc::new(self.fetch().await?);
        *self.keys.write().await = Some(keys.clone());
        Ok(keys)
    }

    async fn fetch(&self) -> Result<KeySet, TokenError> {
        let fail = |e: reqwest::Error| TokenError::Keys(e.to_string());
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Discovery = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fail)?
            .json()
            .await
            .map_err(fail)?;
        if discovery.issuer.trim_end_matches('/') != self.issuer {
            return Err(TokenError::Keys("discovery names another issuer".into()));
        }
        let jwks: JwkSet = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fail)?
            .json()
            .await
            .map_err(fail)?;
        let algorithms = advertised(&discovery.id_token_signing_alg_values_supported);
        if algorithms.is_empty() {
            return Err(TokenError::Keys(
                "the authorization server advertises no asymmetric algorithm".into(),
            ));
        }
        Ok(KeySet {
            jwks,
            algorithms,
            fetched_at: Instant::now(),
        })
    }
}

/// The asymmetric algorithms among advertised names (`RS256`, …); unknown names are ignored.
pub fn advertised(names: &[String]) -> Vec<Algorithm> {
    names
        .iter()
        .filter_map(|n| n.parse::<Algorithm>().ok())
        .filter(|a| asymmetric(*a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_count() {
        let names: Vec<String> = ["RS256", "HS256", "none", "ES256"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(advertised(&names), vec![Algorithm::RS256, Algorithm::ES256]);
    }

    #[test]
    fn okta_sends_no_typ_and_other_types_are_refused() {
        assert!(type_ok(None));
        assert!(type_ok(Some("at+jwt")));
        assert!(type_ok(Some("JWT")));
        assert!(!type_ok(Some("id_token+jwt")));
        assert!(!type_ok(Some("logout+jwt")));
    }

    #[tokio::test]
    async fn none_and_hs256_are_refused_before_any_key_lookup() {
        use base64::Engine;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let keys = Arc::new(KeySet {
            jwks: JwkSet { keys: vec![] },
            algorithms: vec![Algorithm::RS256],
            fetched_at: Instant::now(),
        });
        let expect = Expect {
            issuer: "http://127.0.0.1/".into(),
            audience: "api://x".into(),
            leeway_seconds: 0,
        };
        let claims = b64(r#"{"iss":"http://127.0.0.1/","aud":"api://x","exp":9999999999}"#);
        let none = format!("{}.{claims}.", b64(r#"{"alg":"none","kid":"k"}"#));
        let hs = format!("{}.{claims}.c2ln", b64(r#"{"alg":"HS256","kid":"k"}"#));
        let no_refetch = |_| async { Err(TokenError::UnknownKey) };
        assert!(matches!(
            verify(keys.clone(), no_refetch, &none, &expect).await,
            Err(TokenError::Malformed(_))
        ));
        assert_eq!(
            verify(keys, no_refetch, &hs, &expect).await,
            Err(TokenError::Algorithm("HS256".into()))
        );
    }
}
