//! Typed configuration: a TOML file with every key overridable from the environment.
//!
//! Environment overrides use the prefix `ADMIN_PORTAL` and `__` between every level, for
//! example `ADMIN_PORTAL__OIDC__CLIENT_SECRET` or `ADMIN_PORTAL__DATABASE__URL`.
//! Secrets are wrapped in [`SecretString`] so that they never reach `Debug` output or logs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::auth::policy::{Policy, PolicyFile, RuleSpec};
pub use crate::ops::config::{ENROLL_TYPES, MfaConfig, UsersConfig};

pub const ENV_PREFIX: &str = "ADMIN_PORTAL";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub oidc: OidcConfig,
    pub okta: OktaConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub users: UsersConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub mfa: MfaConfig,
    #[serde(default)]
    pub api: crate::api::ApiConfig,
}

/// The audit trail's retention. Nothing is deleted automatically: `audit prune` without
/// `--before` removes what is older than `retention_days`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default)]
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Port 0 picks a free port (tests).
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// The URL people use to reach the portal, e.g. `https://admin.example.com`.
    /// When absent, `http://{bind}` is used (only sensible on loopback).
    #[serde(default)]
    pub public_base_url: Option<Url>,
    /// Set when TLS is terminated in front of the portal even though `public_base_url`
    /// says `http` (cookies are marked Secure whenever this is true or the URL is https).
    #[serde(default)]
    pub tls_terminated: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            public_base_url: None,
            tls_terminated: false,
        }
    }
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (default) or `postgres://user@host/db`.
    #[serde(default = "default_db_url")]
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_db_url(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_db_url() -> String {
    "sqlite://admin-portal.db".into()
}
fn default_max_connections() -> u32 {
    10
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
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: default_idle(),
            absolute_timeout_minutes: default_absolute(),
        }
    }
}

fn default_idle() -> u64 {
    30
}
fn default_absolute() -> u64 {
    8 * 60
}

/// The authorization policy: either a separate TOML file or inline rules; the built-in
/// default policy applies when neither is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub permissions: Option<BTreeMap<String, RuleSpec>>,
    /// Every scope a rule needs must match this (default `^admin\.[a-z]+\.[a-z_]+$`).
    #[serde(default)]
    pub scope_pattern: Option<String>,
}

/// A configuration that has been loaded and validated: the policy is compiled.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub config: Config,
    pub policy: Policy,
    /// `users.ticket_pattern`, compiled (None when empty).
    pub ticket_pattern: Option<regex::Regex>,
}

impl Config {
    /// Reads the file (if any) and applies `ADMIN_PORTAL__…` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, Vec<String>> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            if !path.exists() {
                return Err(vec![format!(
                    "configuration file {} does not exist",
                    path.display()
                )]);
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("oidc.scopes")
                .try_parsing(true),
        );
        let raw = builder.build().map_err(|e| vec![e.to_string()])?;
        raw.try_deserialize::<Config>()
            .map_err(|e| vec![format!("configuration: {e}")])
    }

    /// Every problem with this configuration, in plain words. Empty means valid.
    pub fn validate(self) -> Result<ValidConfig, Vec<String>> {
        let mut problems = Vec::new();
        if self.oidc.client_id.trim().is_empty() {
            problems.push("oidc.client_id is empty".to_string());
        }
        if self.oidc.client_secret.expose_secret().trim().is_empty() {
            problems.push("oidc.client_secret is empty".to_string());
        }
        if !self.oidc.scopes.iter().any(|s| s == "openid") {
            problems.push("oidc.scopes must include \"openid\"".to_string());
        }
        for (name, path) in [
            ("oidc.redirect_path", &self.oidc.redirect_path),
            ("oidc.post_logout_path", &self.oidc.post_logout_path),
        ] {
            if !path.starts_with('/') || path.starts_with("//") {
                problems.push(format!(
                    "{name} must be an absolute path such as /auth/callback"
                ));
            }
        }
        check_http_url("oidc.issuer", &self.oidc.issuer, &mut problems);
        check_http_url("okta.org_url", &self.okta.org_url, &mut problems);
        if let Some(url) = &self.server.public_base_url {
            check_http_url("server.public_base_url", url, &mut problems);
            if url.path() != "/" {
                problems.push("server.public_base_url must not have a path".to_string());
            }
        }
        match (&self.okta.api_token, &self.okta.oauth) {
            (Some(_), Some(_)) => problems
                .push("okta: give either okta.api_token or okta.oauth, not both".to_string()),
            (None, None) => problems.push(
                "okta: give okta.api_token (SSWS) or an okta.oauth section (service app)"
                    .to_string(),
            ),
            (None, Some(oauth)) => {
                if oauth.private_key.is_some() == oauth.private_key_file.is_some() {
                    problems.push(
                        "okta.oauth: give exactly one of private_key and private_key_file"
                            .to_string(),
                    );
                }
                if oauth.scopes.iter().any(|s| !s.starts_with("okta.")) {
                    problems.push("okta.oauth.scopes must all be okta.* scopes".to_string());
                }
            }
            (Some(token), None) if token.expose_secret().trim().is_empty() => {
                problems.push("okta.api_token is empty".to_string())
            }
            _ => {}
        }
        if self.okta.timeout_seconds == 0 {
            problems.push("okta.timeout_seconds must be at least 1".to_string());
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            problems.push("database.url must start with sqlite:// or postgres://".to_string());
        }
        if self.session.idle_timeout_minutes == 0 {
            problems.push("session.idle_timeout_minutes must be at least 1".to_string());
        }
        if self.session.absolute_timeout_minutes < self.session.idle_timeout_minutes {
            problems.push(
                "session.absolute_timeout_minutes must not be shorter than session.idle_timeout_minutes"
                    .to_string(),
            );
        }
        let policy = match self.policy_source() {
            Ok(source) => match Policy::compile(source, &self.oidc.scopes) {
                Ok(p) => Some(p),
                Err(errs) => {
                    problems.extend(errs.into_iter().map(|e| format!("policy: {e}")));
                    None
                }
            },
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let ticket_pattern = if self.users.ticket_pattern.is_empty() {
            None
        } else {
            match regex::Regex::new(&self.users.ticket_pattern) {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(format!("users.ticket_pattern is not a valid pattern: {e}"));
                    None
                }
            }
        };
        for t in &self.mfa.enroll_types {
            if !ENROLL_TYPES.contains(&t.as_str()) {
                problems.push(format!(
                    "mfa.enroll_types: unknown factor type \"{t}\" (known: {})",
                    ENROLL_TYPES.join(", ")
                ));
            }
        }
        if self.audit.retention_days == Some(0) {
            problems.push(
                "audit.retention_days must be at least 1 (or left out to keep everything)"
                    .to_string(),
            );
        }
        problems.extend(self.users.problems());
        if let Some(policy) = &policy {
            problems.extend(
                self.api
                    .problems(policy, self.policy.scope_pattern.as_deref()),
            );
        }
        match policy {
            Some(policy) if problems.is_empty() => Ok(ValidConfig {
                config: self,
                policy,
                ticket_pattern,
            }),
            _ => Err(problems),
        }
    }

    fn policy_source(&self) -> Result<Option<BTreeMap<String, RuleSpec>>, String> {
        match (&self.policy.file, &self.policy.permissions) {
            (Some(_), Some(_)) => {
                Err("policy: give either policy.file or policy.permissions, not both".into())
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("policy: cannot read policy file {}: {e}", path.display())
                })?;
                let file: PolicyFile = toml_from_str(&text).map_err(|e| {
                    format!("policy: policy file {} is not valid: {e}", path.display())
                })?;
                Ok(Some(file.permissions))
            }
            (None, Some(inline)) => Ok(Some(inline.clone())),
            (None, None) => Ok(None),
        }
    }

    /// The base URL people use to reach the portal, without a trailing slash.
    pub fn public_base(&self, bound: SocketAddr) -> Url {
        self.server.public_base_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{bound}"))
                .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL is valid"))
        })
    }

    pub fn secure_cookies(&self) -> bool {
        self.server.tls_terminated
            || self
                .server
                .public_base_url
                .as_ref()
                .is_some_and(|u| u.scheme() == "https")
    }

    /// A description safe to print: every secret is replaced by a marker.
    pub fn redacted_summary(&self) -> Vec<(String, String)> {
        let secret = |s: &SecretString| {
            if s.expose_secret().is_empty() {
                "(empty)".to_string()
            } else {
                "(set, hidden)".to_string()
            }
        };
        vec![
            ("server.bind".into(), self.server.bind.to_string()),
            (
                "server.public_base_url".into(),
                self.server
                    .public_base_url
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "(derived from server.bind)".into()),
            ),
            (
                "server.tls_terminated".into(),
                self.server.tls_terminated.to_string(),
            ),
            ("oidc.issuer".into(), self.oidc.issuer.to_string()),
            ("oidc.client_id".into(), self.oidc.client_id.clone()),
            (
                "oidc.client_secret".into(),
                secret(&self.oidc.client_secret),
            ),
            ("oidc.scopes".into(), self.oidc.scopes.join(" ")),
            ("oidc.groups_claim".into(), self.oidc.groups_claim.clone()),
            (
                "oidc.access_token_audience".into(),
                self.oidc.access_token_audience.clone(),
            ),
            ("okta.org_url".into(), self.okta.org_url.to_string()),
            (
                "okta.api_token".into(),
                self.okta
                    .api_token
                    .as_ref()
                    .map(secret)
                    .unwrap_or_else(|| "(not set)".into()),
            ),
            (
                "okta.oauth".into(),
                self.okta
                    .oauth
                    .as_ref()
                    .map(|o| {
                        format!(
                            "client {} key {} scopes {}",
                            o.client_id,
                            o.key_id,
                            o.scopes.join(" ")
                        )
                    })
                    .unwrap_or_else(|| "(not set)".into()),
            ),
            ("database.url".into(), redact_db_url(&self.database.url)),
            (
                "session.idle_timeout_minutes".into(),
                self.session.idle_timeout_minutes.to_string(),
            ),
            (
                "session.absolute_timeout_minutes".into(),
                self.session.absolute_timeout_minutes.to_string(),
            ),
        ]
    }
}

fn toml_from_str(text: &str) -> Result<PolicyFile, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<PolicyFile>())
        .map_err(|e| e.to_string())
}

fn check_http_url(name: &str, url: &Url, problems: &mut Vec<String>) {
    if url.scheme() != "https" && url.scheme() != "http" {
        problems.push(format!("{name} must be an http(s) URL"));
    }
    if url.scheme() == "http" && !is_loopback_host(url) {
        problems.push(format!(
            "{name} uses plain http on a non-loopback host; use https"
        ));
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Hides the password part of a database URL.
pub fn redact_db_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("hidden"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_toml() -> String {
        r#"
[oidc]
issuer = "https://example.okta.com/oauth2/default"
client_id = "0oaportal"
client_secret = "s3cret-value"
[okta]
org_url = "https://example.okta.com"
api_token = "ssws-token-value"
"#
        .to_string()
    }

    fn parse(text: &str) -> Result<ValidConfig, Vec<String>> {
        let c: Config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| vec![e.to_string()])?
            .try_deserialize()
            .map_err(|e| vec![e.to_string()])?;
        c.validate()
    }

    #[test]
    fn minimal_config_is_valid_with_default_policy() {
        let v = parse(&base_toml()).expect("valid");
        assert_eq!(v.config.database.url, "sqlite://admin-portal.db");
        assert!(!v.config.secure_cookies());
    }

    #[test]
    fn secrets_never_appear_in_debug_or_summary() {
        let v = parse(&base_toml()).expect("valid");
        let dbg = format!("{:?}", v.config);
        assert!(!dbg.contains("s3cret-value"), "{dbg}");
        assert!(!dbg.contains("ssws-token-value"), "{dbg}");
        let summary = format!("{:?}", v.config.redacted_summary());
        assert!(!summary.contains("s3cret-value"));
        assert!(summary.contains("(set, hidden)"));
    }

    #[test]
    fn reports_every_problem() {
        let text = r#"
[oidc]
issuer = "http://idp.example.com/oauth2/default"
client_id = ""
client_secret = ""
scopes = ["profile"]
redirect_path = "callback"
[okta]
org_url = "ftp://example.okta.com"
[database]
url = "mysql://x"
[session]
idle_timeout_minutes = 60
absolute_timeout_minutes = 10
"#;
        let problems = parse(text).expect_err("invalid");
        let all = problems.join("\n");
        for needle in [
            "oidc.client_id is empty",
            "oidc.client_secret is empty",
            "must include \"openid\"",
            "oidc.redirect_path must be an absolute path",
            "oidc.issuer uses plain http on a non-loopback host",
            "okta.org_url must be an http(s) URL",
            "database.url must start with",
            "absolute_timeout_minutes must not be shorter",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn unknown_permission_or_scope_in_policy_is_an_error() {
        let text = format!(
            "{}\n[policy.permissions.\"users.fly\"]\nscopes=[\"admin.users.read\"]\ngroups=[\"A\"]\n[policy.permissions.\"users.read\"]\nscopes=[\"admin.users.teleport\"]\ngroups=[\"A\"]\n",
            base_toml()
        );
        let problems = parse(&text).expect_err("invalid").join("\n");
        assert!(
            problems.contains("unknown permission \"users.fly\""),
            "{problems}"
        );
        assert!(problems.contains("\"admin.users.teleport\""), "{problems}");
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let text = format!(
            "[server]\npublic_base_url = \"https://admin.example.com\"\n{}",
            base_toml()
        );
        assert!(parse(&text).expect("valid").config.secure_cookies());
    }

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(
            redact_db_url("postgres://app:pw@db.internal/portal"),
            "postgres://app:hidden@db.internal/portal"
        );
    }
}
