//! `[okta]`: the org and how the portal authenticates to its Management API.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// Base URL of the Okta org, e.g. `https://example.okta.com`.
    pub org_url: Url,
    /// SSWS API token for the Management API (give this or `oauth`).
    #[serde(default)]
    pub api_token: Option<SecretString>,
    /// OAuth 2.0 for Okta: a service app with `private_key_jwt` (give this or `api_token`).
    #[serde(default)]
    pub oauth: Option<OktaOAuthConfig>,
    /// Timeout of one Management API call.
    #[serde(default = "default_okta_timeout")]
    pub timeout_seconds: u64,
    /// Longest wait for a rate-limit window to reset before retrying a read.
    #[serde(default = "default_retry_wait")]
    pub max_retry_wait_seconds: u64,
    /// How much of Okta's rate limits the portal may use, and how it rations them.
    #[serde(default)]
    pub budget: super::budget::BudgetConfig,
}

fn default_okta_timeout() -> u64 {
    10
}
fn default_retry_wait() -> u64 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaOAuthConfig {
    pub client_id: String,
    /// PEM (PKCS#8) private key of the service app, or
    #[serde(default)]
    pub private_key: Option<SecretString>,
    /// a file holding it.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `kid` of the key registered with the app.
    pub key_id: String,
    #[serde(default = "default_okta_scopes")]
    pub scopes: Vec<String>,
    /// DPoP proofs (OKTA-FACTS.md §10.9): `true`, `false` or `"auto"` (switch on when Okta
    /// first asks for them).
    #[serde(default)]
    pub dpop: super::dpop::DpopMode,
}

fn default_okta_scopes() -> Vec<String> {
    [
        "okta.users.read",
        "okta.users.manage",
        "okta.groups.read",
        "okta.logs.read",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl OktaConfig {
    /// What is wrong with this section, in words for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (&self.api_token, &self.oauth) {
            (Some(_), Some(_)) => problems
                .push("okta: give either okta.api_token or okta.oauth, not both".to_string()),
            (None, None) => problems.push(
                "okta: give okta.api_token (SSWS) or an okta.oauth section (service app)"
                    .to_string(),
            ),
            (None, Some(oauth)) => problems.extend(oauth.problems()),
            (Some(token), None) if token.expose_secret().trim().is_empty() => {
                problems.push("okta.api_token is empty".to_string())
            }
            _ => {}
        }
        if self.timeout_seconds == 0 {
            problems.push("okta.timeout_seconds must be at least 1".to_string());
        }
        problems.extend(self.budget.problems());
        problems
    }
}

impl OktaOAuthConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.private_key.is_some() == self.private_key_file.is_some() {
            problems.push(
                "okta.oauth: give exactly one of private_key and private_key_file".to_string(),
            );
        }
        if self.scopes.iter().any(|s| !s.starts_with("okta.")) {
            problems.push("okta.oauth.scopes must all be okta.* scopes".to_string());
        }
        problems
    }
}
