//! The edge's own access token: client_credentials with `client_secret_basic` at the
//! configured token endpoint, kept until shortly before it expires.

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

pub struct TokenSource {
    http: reqwest::Client,
    endpoint: url::Url,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, config: &RegistrationConfig) -> TokenSource {
        TokenSource {
            http,
            endpoint: config.token_endpoint.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scopes.join(" "),
            cached: Mutex::new(None),
        }
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
            .http
            .post(self.endpoint.clone())
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", self.scope.as_str()),
            ])
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
