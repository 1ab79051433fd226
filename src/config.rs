//! Typed configuration: a TOML file with every key overridable from the environment.
//!
//! Environment overrides use the prefix `ADMIN_PORTAL` and `__` between every level, for
//! example `ADMIN_PORTAL__OIDC__CLIENT_SECRET` or `ADMIN_PORTAL__DATABASE__URL`.
//! Secrets are wrapped in [`SecretString`] so that they never reach `Debug` output or logs.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

pub use crate::auth::oidc::{OidcConfig, default_scopes};
use crate::auth::policy::Policy;
pub use crate::auth::policy::PolicyConfig;
pub use crate::auth::session::SessionConfig;
pub use crate::db::DatabaseConfig;
pub use crate::okta::{OktaConfig, OktaOAuthConfig};
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
    pub http: crate::web::security::HttpConfig,
    #[serde(default)]
    pub api: crate::api::config::ApiConfig,
    #[serde(default)]
    pub cluster: crate::cluster::ClusterConfig,
    #[serde(default)]
    pub limits: crate::ops::velocity::LimitsConfig,
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
}

/// `[log]`: how the log is written (`--log-format` on the command line wins).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
}

/// One line per event: plain text (default) or one JSON object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The audit trail's retention. Nothing is deleted automatically: `audit prune` without
/// `--before` removes what is older than `retention_days`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub throttle: crate::audit::throttle::ThrottleConfig,
    /// A change announced to the trail and not recorded this long after is taken to belong
    /// to a portal that stopped during its Okta call, and recorded with outcome `unknown`.
    #[serde(default = "default_unfinished_after")]
    pub unfinished_after_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: None,
            throttle: Default::default(),
            unfinished_after_seconds: default_unfinished_after(),
        }
    }
}

fn default_unfinished_after() -> u64 {
    crate::audit::unfinished::DEFAULT_AFTER_SECONDS
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
                .with_list_parse_key("session.encryption_keys_old")
                .try_parsing(true),
        );
        let raw = builder.build().map_err(|e| vec![e.to_string()])?;
        raw.try_deserialize::<Config>()
            .map_err(|e| vec![format!("configuration: {e}")])
    }

    /// Every problem with this configuration, in plain words. Empty means valid.
    pub fn validate(self) -> Result<ValidConfig, Vec<String>> {
        let mut problems = Vec::new();
        problems.extend(self.oidc.problems());
        problems.extend(self.okta.problems());
        problems.extend(self.server_problems());
        problems.extend(self.database.problems());
        problems.extend(self.session.problems());
        problems.extend(self.mfa.problems());
        problems.extend(self.users.problems());
        problems.extend(self.cluster.problems());
        if self.audit.retention_days == Some(0) {
            problems.push(
                "audit.retention_days must be at least 1 (or left out to keep everything)"
                    .to_string(),
            );
        }
        if self.audit.unfinished_after_seconds <= self.okta.timeout_seconds {
            problems.push(format!(
                "audit.unfinished_after_seconds must be longer than an Okta call may take \
                 (okta.timeout_seconds = {})",
                self.okta.timeout_seconds
            ));
        }
        let policy = self
            .policy
            .compile(&self.oidc.scopes)
            .map_err(|errs| problems.extend(errs))
            .ok();
        if let Some(policy) = &policy {
            problems.extend(
                self.api
                    .problems(policy, self.policy.scope_pattern.as_deref()),
            );
        }
        let ticket_pattern = self
            .users
            .compiled_ticket_pattern()
            .map_err(|e| problems.push(e))
            .ok()
            .flatten();
        match policy {
            Some(policy) if problems.is_empty() => Ok(ValidConfig {
                config: self,
                policy,
                ticket_pattern,
            }),
            _ => Err(problems),
        }
    }

    /// The URLs of every section (http only on loopback) and the server section.
    fn server_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        check_http_url("oidc.issuer", &self.oidc.issuer, &mut problems);
        check_http_url("okta.org_url", &self.okta.org_url, &mut problems);
        if let Some(url) = &self.server.public_base_url {
            check_http_url("server.public_base_url", url, &mut problems);
            if url.path() != "/" {
                problems.push("server.public_base_url must not have a path".to_string());
            }
        }
        problems
    }

    /// The base URL people use to reach the portal, without a trailing slash.
    #[allow(clippy::expect_used, reason = "a literal URL always parses")]
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
        let secret = hidden;
        let mut summary = vec![
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
                            "client {} key {} scopes {} dpop {}",
                            o.client_id,
                            o.key_id,
                            o.scopes.join(" "),
                            o.dpop
                        )
                    })
                    .unwrap_or_else(|| "(not set)".into()),
            ),
            ("database.url".into(), redact_db_url(&self.database.url)),
        ];
        summary.extend(session_summary(&self.session));
        let allow: Vec<String> = self.metrics.allow.iter().map(|n| n.to_string()).collect();
        summary.extend([
            ("metrics.enabled".into(), self.metrics.enabled.to_string()),
            ("metrics.allow".into(), allow.join(" ")),
            (
                "log.format".into(),
                format!("{:?}", self.log.format).to_lowercase(),
            ),
        ]);
        summary
    }
}

/// A secret's presence, never its value.
fn hidden(s: &SecretString) -> String {
    if s.expose_secret().is_empty() {
        "(empty)".to_string()
    } else {
        "(set, hidden)".to_string()
    }
}

fn session_summary(session: &crate::auth::session::SessionConfig) -> Vec<(String, String)> {
    vec![
        (
            "session.idle_timeout_minutes".into(),
            session.idle_timeout_minutes.to_string(),
        ),
        (
            "session.absolute_timeout_minutes".into(),
            session.absolute_timeout_minutes.to_string(),
        ),
        (
            "session.encryption_key".into(),
            session
                .encryption_key
                .as_ref()
                .map(hidden)
                .unwrap_or_else(|| "(not set)".into()),
        ),
        (
            "session.encryption_keys_old".into(),
            format!("{} key(s), hidden", session.encryption_keys_old.len()),
        ),
        (
            "session.cache_recheck_seconds".into(),
            session.cache_recheck_seconds.to_string(),
        ),
    ]
}

pub(crate) fn check_http_url(name: &str, url: &Url, problems: &mut Vec<String>) {
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
[session]
encryption_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
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
        assert!(!dbg.contains("MDEyMzQ1Njc4"), "{dbg}");
        let summary = format!("{:?}", v.config.redacted_summary());
        assert!(!summary.contains("s3cret-value"));
        assert!(!summary.contains("MDEyMzQ1Njc4"), "{summary}");
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
            "session.encryption_key is not set: it encrypts the tokens kept in sessions",
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
    fn a_malformed_session_key_is_refused_without_repeating_it() {
        let text = base_toml().replace(
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "c2hvcnQta2V5",
        ) + "encryption_keys_old = [\"%%%\"]\n";
        let problems = parse(&text).expect_err("invalid").join("\n");
        assert!(
            problems.contains("session.encryption_key must decode to 32 bytes, not 9"),
            "{problems}"
        );
        assert!(
            problems.contains("session.encryption_keys_old[0] is not valid base64"),
            "{problems}"
        );
        assert!(!problems.contains("c2hvcnQta2V5"), "{problems}");
    }

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(
            redact_db_url("postgres://app:pw@db.internal/portal"),
            "postgres://app:hidden@db.internal/portal"
        );
    }
}
