//! `[oidc]`: the OpenID Provider agents sign in with.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL of the OpenID Provider, e.g. `https://example.okta.com/oauth2/default`.
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    #[serde(default = "default_redirect_path")]
    pub redirect_path: String,
    /// Path the provider sends people back to after sign-out.
    #[serde(default = "default_post_logout_path")]
    pub post_logout_path: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim (in the ID token, else in the access token) that lists the agent's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Claim in the access token that lists the granted scopes (array or space-separated).
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// Expected `aud` of the access token.
    #[serde(default = "default_audience")]
    pub access_token_audience: String,
    /// Clock-skew leeway for `exp`/`iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// How often the discovery document and JWKS are refreshed, in seconds.
    #[serde(default = "default_discovery_ttl")]
    pub discovery_ttl_seconds: u64,
}

fn default_redirect_path() -> String {
    "/auth/callback".into()
}
fn default_post_logout_path() -> String {
    "/signed-out".into()
}
/// The scopes requested at sign-in when `oidc.scopes` is not set.
pub fn default_scopes() -> Vec<String> {
    [
        "openid",
        "profile",
        "email",
        "groups",
        "offline_access",
        "admin.users.read",
        "admin.users.create",
        "admin.users.lifecycle",
        "admin.users.delete",
        "admin.users.profile",
        "admin.users.sessions",
        "admin.users.groups",
        "admin.factors.read",
        "admin.factors.manage",
        "admin.audit.read",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_scopes_claim() -> String {
    "scp".into()
}
fn default_audience() -> String {
    "api://admin-portal".into()
}
fn default_leeway() -> u64 {
    60
}
fn default_discovery_ttl() -> u64 {
    3600
}

impl OidcConfig {
    /// What is wrong with this section, in words for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.client_id.trim().is_empty() {
            problems.push("oidc.client_id is empty".to_string());
        }
        if self.client_secret.expose_secret().trim().is_empty() {
            problems.push("oidc.client_secret is empty".to_string());
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            problems.push("oidc.scopes must include \"openid\"".to_string());
        }
        for (name, path) in [
            ("oidc.redirect_path", &self.redirect_path),
            ("oidc.post_logout_path", &self.post_logout_path),
        ] {
            if !path.starts_with('/') || path.starts_with("//") {
                problems.push(format!(
                    "{name} must be an absolute path such as /auth/callback"
                ));
            }
        }
        problems
    }
}
