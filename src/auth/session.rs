//! The typed session: what the portal keeps server-side about a signed-in agent.
//!
//! Only the session id reaches the browser (an HttpOnly cookie); tokens stay in the store.

use std::collections::BTreeSet;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::error::AppError;

pub const AGENT_KEY: &str = "agent";
pub const PENDING_LOGIN_KEY: &str = "pending_login";
pub const CSRF_KEY: &str = "csrf";
pub const FLASH_KEY: &str = "flash";

/// Tokens from the provider; never rendered, never logged (`Debug` is redacted).
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    #[serde(with = "secret_string")]
    pub access_token: SecretString,
    #[serde(with = "opt_secret_string", default)]
    pub refresh_token: Option<SecretString>,
    #[serde(with = "secret_string")]
    pub id_token: SecretString,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredTokens(..)")
    }
}

/// The signed-in agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentSession {
    /// The provider's subject (Okta user id).
    pub sub: String,
    pub login: String,
    pub name: String,
    pub email: Option<String>,
    pub groups: BTreeSet<String>,
    pub scopes: BTreeSet<String>,
    pub tokens: StoredTokens,
    /// Unix seconds when the access token expires.
    pub access_expires_at: i64,
    /// Unix seconds of sign-in (for the absolute timeout).
    pub signed_in_at: i64,
    /// Unix seconds of the last authentication at the provider (`auth_time` in the ID
    /// token), when the provider sent it.
    #[serde(default)]
    pub auth_time: Option<i64>,
}

/// A sign-in in progress: what the callback must check.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub started_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: FlashKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum FlashKind {
    Success,
    Info,
    Warning,
}

impl FlashKind {
    pub fn css(self) -> &'static str {
        match self {
            FlashKind::Success => "success",
            FlashKind::Info => "info",
            FlashKind::Warning => "warning",
        }
    }
}

pub async fn agent(session: &Session) -> Result<Option<AgentSession>, AppError> {
    Ok(session.get::<AgentSession>(AGENT_KEY).await?)
}

pub async fn push_flash(
    session: &Session,
    kind: FlashKind,
    text: impl Into<String>,
) -> Result<(), AppError> {
    let mut flashes: Vec<Flash> = session.get(FLASH_KEY).await?.unwrap_or_default();
    flashes.push(Flash {
        kind,
        text: text.into(),
    });
    session.insert(FLASH_KEY, flashes).await?;
    Ok(())
}

pub async fn take_flashes(session: &Session) -> Result<Vec<Flash>, AppError> {
    // Only a session that holds flashes is changed: removing marks the session modified,
    // and every page view would otherwise write it back to the store.
    let flashes: Vec<Flash> = session.get(FLASH_KEY).await?.unwrap_or_default();
    if !flashes.is_empty() {
        session.remove::<Vec<Flash>>(FLASH_KEY).await?;
    }
    Ok(flashes)
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await? {
        return Ok(token);
    }
    let token = crate::auth::random_urlsafe(32);
    session.insert(CSRF_KEY, &token).await?;
    Ok(token)
}

mod secret_string {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.expose_secret())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        Ok(SecretString::from(String::deserialize(d)?))
    }
}

mod opt_secret_string {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(v.expose_secret()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A session with no request for this long ends.
    #[serde(default = "default_idle")]
    pub idle_timeout_minutes: u64,
    /// A session ends this long after sign-in, however active.
    #[serde(default = "default_absolute")]
    pub absolute_timeout_minutes: u64,
    /// The key that encrypts what a session keeps (the provider's tokens among it): 32 bytes
    /// in base64, e.g. from `openssl rand -base64 32`. Required (the demo makes its own).
    #[serde(default)]
    pub encryption_key: Option<SecretString>,
    /// Earlier keys, still accepted for reading while sessions written with them live.
    /// Rotation: put the new key in `encryption_key`, the old one here; remove it after
    /// `absolute_timeout_minutes`.
    #[serde(default)]
    pub encryption_keys_old: Vec<SecretString>,
    /// How long an instance trusts its in-memory copy of a session before reading the
    /// database again (a session ended on another instance ends here within this time).
    #[serde(default = "default_recheck")]
    pub cache_recheck_seconds: u64,
    /// How many sessions an instance keeps in memory.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
    /// How often expired sessions are removed (their refresh tokens revoked first).
    #[serde(default = "default_sweep")]
    pub sweep_interval_seconds: u64,
    /// Requests one agent may make per minute, all sessions and instances together (0: no
    /// limit); a burst of a quarter of it is allowed at once.
    #[serde(default = "default_agent_rpm")]
    pub agent_requests_per_minute: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: default_idle(),
            absolute_timeout_minutes: default_absolute(),
            encryption_key: None,
            encryption_keys_old: Vec::new(),
            cache_recheck_seconds: default_recheck(),
            cache_capacity: default_cache_capacity(),
            sweep_interval_seconds: default_sweep(),
            agent_requests_per_minute: default_agent_rpm(),
        }
    }
}

fn default_idle() -> u64 {
    30
}
fn default_absolute() -> u64 {
    8 * 60
}
fn default_recheck() -> u64 {
    5
}
fn default_cache_capacity() -> u64 {
    10_000
}
fn default_sweep() -> u64 {
    60
}
fn default_agent_rpm() -> u32 {
    600
}

/// The hint `check-config` gives for a missing or malformed key.
const KEY_HINT: &str = "32 random bytes in base64, e.g. from `openssl rand -base64 32`";

impl SessionConfig {
    /// What is wrong with this section, in words for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.idle_timeout_minutes == 0 {
            problems.push("session.idle_timeout_minutes must be at least 1".to_string());
        }
        if self.absolute_timeout_minutes < self.idle_timeout_minutes {
            problems.push(
                "session.absolute_timeout_minutes must not be shorter than session.idle_timeout_minutes"
                    .to_string(),
            );
        }
        match &self.encryption_key {
            None => problems.push(format!(
                "session.encryption_key is not set: it encrypts the tokens kept in sessions; set it to {KEY_HINT} (or ADMIN_PORTAL__SESSION__ENCRYPTION_KEY)"
            )),
            Some(key) => {
                if let Err(e) = crate::session_store::SessionKey::parse(key) {
                    problems.push(format!("session.encryption_key {e}; use {KEY_HINT}"));
                }
            }
        }
        for (i, key) in self.encryption_keys_old.iter().enumerate() {
            if let Err(e) = crate::session_store::SessionKey::parse(key) {
                problems.push(format!("session.encryption_keys_old[{i}] {e}"));
            }
        }
        if self.cache_capacity == 0 {
            problems.push("session.cache_capacity must be at least 1".to_string());
        }
        if self.sweep_interval_seconds == 0 {
            problems.push("session.sweep_interval_seconds must be at least 1".to_string());
        }
        problems
    }

    /// The idle timeout.
    pub fn idle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_timeout_minutes * 60)
    }

    /// How far the stored idle expiry may lag behind before a request writes it again:
    /// What the session store takes from this section.
    pub fn store_settings(&self) -> crate::session_store::StoreSettings<'_> {
        crate::session_store::StoreSettings {
            encryption_key: self.encryption_key.as_ref(),
            old_keys: &self.encryption_keys_old,
            cache_capacity: self.cache_capacity,
            idle: self.idle(),
            recheck: std::time::Duration::from_secs(self.cache_recheck_seconds),
            write_threshold: self.expiry_write_threshold(),
        }
    }

    /// max(60 s, 5 % of the idle timeout).
    pub fn expiry_write_threshold(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.idle_timeout_minutes * 60 / 20).max(60))
    }
}
