//! The edge's own access token: client_credentials with `client_secret_basic` or
//! `private_key_jwt` at the configured token endpoint, kept until shortly before it expires.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::RegistrationConfig;

/// A token is renewed this long before the authorization server says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the client assertion could not be signed: {0}")]
    Signing(String),
    #[error("the token endpoint refused the edge's client ({status}): {error}")]
    Refused { status: u16, error: String },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
}

/// How the edge authenticates at the token endpoint.
enum ClientAuth {
    /// `client_secret_basic`.
    Secret(SecretString),
    /// `private_key_jwt`: a signed assertion (RS256), new for every request.
    Key {
        key: Box<jsonwebtoken::EncodingKey>,
        kid: String,
    },
}

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

pub struct TokenSource {
    http: reqwest::Client,
    endpoint: url::Url,
    client_id: String,
    auth: ClientAuth,
    scope: String,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    /// Fails when a configured private key cannot be read (validation reports it first).
    pub fn new(http: reqwest::Client, config: &RegistrationConfig) -> anyhow::Result<TokenSource> {
        let auth = match (
            config.signing_key().map_err(anyhow::Error::msg)?,
            &config.key_id,
        ) {
            (Some(key), Some(kid)) => ClientAuth::Key {
                key: Box::new(key),
                kid: kid.clone(),
            },
            _ => ClientAuth::Secret(
                config
                    .client_secret
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("no client secret and no private key"))?,
            ),
        };
        Ok(TokenSource {
            http,
            endpoint: config.token_endpoint.clone(),
            client_id: config.client_id.clone(),
            auth,
            scope: config.scopes.join(" "),
            cached: Mutex::new(None),
        })
    }

    /// The token request, authenticated the configured way.
    fn request(&self) -> Result<reqwest::RequestBuilder, TokenError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("scope", self.scope.clone()),
        ];
        let request = self.http.post(self.endpoint.clone());
        let request = match &self.auth {
            ClientAuth::Secret(secret) => {
                request.basic_auth(&self.client_id, Some(secret.expose_secret()))
            }
            ClientAuth::Key { key, kid } => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let claims = AssertionClaims {
                    iss: &self.client_id,
                    sub: &self.client_id,
                    aud: self.endpoint.as_str(),
                    iat: now,
                    exp: now + 300,
                    jti: uuid::Uuid::new_v4().to_string(),
                };
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.kid = Some(kid.clone());
                let assertion = jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|e| TokenError::Signing(e.to_string()))?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                ));
                form.push(("client_assertion", assertion));
                request
            }
        };
        Ok(request.form(&form))
    }

    /// The current token, fetched when there is none or it is about to expire. Callers
    /// wait on one fetch instead of each asking the authorization server.
    pub async fn token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the token (the API said it is no longer valid).
    pub async fn drop_token(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Cached, TokenError> {
        let response = self
            .request()?
            .send()
            .await
            .map_err(TokenError::Unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let body: TokenErrorBody = response.json().await.unwrap_or(TokenErrorBody {
                error: String::new(),
            });
            return Err(TokenError::Refused {
                status: status.as_u16(),
                error: body.error,
            });
        }
        let body: TokenResponse = response.json().await.map_err(TokenError::Unreachable)?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(300));
        Ok(Cached {
            token: SecretString::from(body.access_token),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE),
        })
    }
}
